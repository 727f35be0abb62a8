"""Input validation shared by the estimators and transformers.

The package works on single-channel images stored as ``(N, 1, H, W)``
``float32`` arrays. Every public entry point funnels user input through
:func:`check_images` and :func:`encode_labels` so that bad input fails early
with one clear message instead of deep inside PyTorch.

Parameters are declared once per estimator in scikit-learn's form, a
``_parameter_constraints`` dict, and checked by :func:`check_params` at
``fit``; scalar arguments go through :func:`check_int` (scikit-learn's
``check_scalar``). This module is the one place that imports scikit-learn's
private parameter-validation tools: estimators take the constraint classes
from here.
"""

import inspect
import numbers
import weakref
from collections import Counter
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_scalar
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils.validation import column_or_1d
from torch.utils.data import Dataset

__all__ = [
    "check_images",
    "encode_labels",
    "accepts_keyword",
    "CheckedDataset",
    "dataset_image",
    "image_size_error",
    "check_params",
    "check_int",
    "check_image_size",
    "labels_1d",
    "Integers",
    "BATCH_SIZE",
    "HasMethods",
    "mark_checked",
    "checked_images",
    "check_values",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "validate_params",
]


class Integers(Interval):
    """scikit-learn's ``Interval(Integral, left, right)``, refusing bools.

    ``True`` is an ``Integral`` to Python, but a count of ``True`` is a
    mistake, not 1.
    """

    def __init__(self, left, right=None, *, closed="left"):
        super().__init__(numbers.Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


#: ``batch_size``: a positive int, or -1 for one batch of everything.
BATCH_SIZE = [Integers(1), Options(numbers.Integral, {-1})]


def check_params(estimator):
    """Check an estimator's parameters against its ``_parameter_constraints``.

    Parameters missing from the constraints are not checked.

    Parameters
    ----------
    estimator : estimator
        Has ``_parameter_constraints`` and ``get_params``.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        A ``ValueError`` and ``TypeError`` naming the first bad parameter.
    """
    validate_parameter_constraints(
        estimator._parameter_constraints,
        estimator.get_params(deep=False),
        caller_name=type(estimator).__name__,
    )


def check_values(values, constraints, caller_name, *, error=InvalidParameterError):
    """Check named values against scikit-learn constraints; return them with ints as int.

    The one way skal_cxr checks settings outside an estimator (a simulation's
    configuration, a labeling project's settings), with the constraint
    objects estimators declare in ``_parameter_constraints``.

    Parameters
    ----------
    values : dict
        ``{name: value}``; names without a constraint are not checked.
    constraints : dict
        ``{name: list of constraints}``, as in ``_parameter_constraints``.
    caller_name : str
        Named in the error message ("The 'x' parameter of CALLER must be ...").
    error : exception class, default=InvalidParameterError
        Raised with scikit-learn's one-line message.

    Returns
    -------
    values : dict
        The same values, integers (numpy's too) as Python ints.
    """
    try:
        validate_parameter_constraints(constraints, values, caller_name=caller_name)
    except InvalidParameterError as exc:
        raise error(str(exc)) from None
    return {
        k: int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v
        for k, v in values.items()
    }


def check_int(value, name, min_val=1, *, error=InvalidParameterError):
    """``value`` as an int ``>= min_val``, checked by scikit-learn's ``check_scalar``.

    Parameters
    ----------
    value : object
        The value to check; a bool is refused.
    name : str
        Name used in the error message.
    min_val : int, default=1
        Smallest allowed value.
    error : exception class, default=InvalidParameterError
        Raised with ``check_scalar``'s message. The default is both a
        ``ValueError`` and a ``TypeError``.

    Returns
    -------
    value : int
        The checked value.
    """
    try:
        if isinstance(value, bool):
            raise TypeError(f"{name} must be an instance of int, not bool.")
        return int(check_scalar(value, name, numbers.Integral, min_val=min_val))
    except (TypeError, ValueError) as exc:
        raise error(str(exc)) from None


def check_image_size(image_size, name="image_size"):
    """``None``, or ``image_size`` as a ``(height, width)`` pair of positive ints.

    Parameters
    ----------
    image_size : int, pair of int or None
        One int is a square size.
    name : str, default="image_size"
        Name used in the error message.

    Returns
    -------
    image_size : tuple of (int, int) or None
        The pair.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        A ``ValueError`` for anything else.
    """
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(Integers(1).is_satisfied_by(s) for s in pair):
        raise InvalidParameterError(
            f"{name} must be a positive int or a (height, width) pair; got {image_size!r}."
        )
    return tuple(int(s) for s in pair)


def labels_1d(y, name="y", error=ValueError):
    """Labels as a 1-D array: ``column_or_1d``, which also takes an ``(n, 1)`` column.

    Parameters
    ----------
    y : array-like of shape (n_images,) or (n_images, 1)
        The labels.
    name : str, default="y"
        Name used in the error message.
    error : exception class, default=ValueError
        Raised for any other shape.

    Returns
    -------
    y : ndarray of shape (n_images,)
        The labels, dtype kept.
    """
    try:
        return column_or_1d(y, warn=False)
    except ValueError:
        raise error(f"{name} must be one-dimensional; got shape {np.shape(y)}.") from None


_FINITE_CHECK_BLOCK = 4096  # images per block of the NaN / infinity check
_INTEGER_SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


#: Arrays that :func:`check_images` returned and whose owner keeps them unchanged,
#: by id (weakly: an array that is gone leaves no entry, so an id is never reused).
_CHECKED = weakref.WeakValueDictionary()


def mark_checked(X):
    """Remember that the array ``X``, returned by :func:`check_images`, is checked.

    :func:`check_images` then returns ``X`` itself at once (no second scan
    for NaN): for arrays their owner never changes, such as a simulation's
    validation and test images, checked once when loaded.

    Parameters
    ----------
    X : ndarray of shape (N, 1, H, W), dtype float32
        An array returned by :func:`check_images`.

    Returns
    -------
    X : ndarray
        The same array.
    """
    if isinstance(X, np.ndarray) and X.dtype == np.float32 and X.ndim == 4:
        _CHECKED[id(X)] = X
    return X


def _is_checked(X):
    return isinstance(X, np.ndarray) and _CHECKED.get(id(X)) is X


@contextmanager
def checked_images(X):
    """Treat ``X`` (returned by :func:`check_images`) as checked while the block runs.

    Parameters
    ----------
    X : object
        The images a ``fit`` has just checked; anything but a float32
        ``(N, 1, H, W)`` array is left alone.

    Yields
    ------
    None
    """
    known = _is_checked(X)
    mark_checked(X)
    try:
        yield
    finally:
        if not known:
            _CHECKED.pop(id(X), None)


def check_images(X, *, allow_dataset=True, name="X"):
    """Validate images and return them as a ``(N, 1, H, W)`` float32 array.

    Parameters
    ----------
    X : array-like or torch.Tensor or torch.utils.data.Dataset
        Images of shape ``(N, H, W)`` or ``(N, 1, H, W)``. ``uint8`` and
        ``uint16`` images are scaled to ``[0, 1]``; floating-point images are
        taken as they are.
    allow_dataset : bool, default=True
        Whether a torch ``Dataset`` is passed through unchanged.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    X : ndarray of shape (N, 1, H, W), dtype float32, or Dataset

    Raises
    ------
    ValueError
        For empty input, a wrong number of dimensions or channels, an
        unsupported dtype, or NaN / infinite values.
    """
    if _is_checked(X):
        return X
    if isinstance(X, Dataset):
        if not allow_dataset:
            raise TypeError(f"{name} must be an array of images, got a torch Dataset.")
        if len(X) == 0:
            raise ValueError(f"{name} is empty: the Dataset has 0 images.")
        return X
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    _check_same_sizes(X, name)
    X = np.asarray(X)
    if X.dtype == object:
        raise ValueError(f"{name} must be a numeric array of images, got dtype=object.")
    if X.ndim not in (3, 4):
        raise ValueError(
            f"{name} must have shape (n_images, height, width) or "
            f"(n_images, 1, height, width); got an array with shape {X.shape}."
        )
    if X.ndim == 4 and X.shape[1] != 1:
        raise ValueError(
            f"{name} must hold single-channel images of shape (n_images, 1, height, "
            f"width); got shape {X.shape}. Convert colour images to grayscale first."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it holds 0 images (shape {X.shape}).")
    if 0 in X.shape[-2:]:
        raise ValueError(f"{name} has images of size 0 (shape {X.shape}).")
    if X.dtype in _INTEGER_SCALES:
        X = X.astype(np.float32) / np.float32(_INTEGER_SCALES[X.dtype])
    elif np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float32, copy=False)
        # in blocks, so that a large pool needs no full-size boolean copy
        for start in range(0, len(X), _FINITE_CHECK_BLOCK):
            if not np.isfinite(X[start : start + _FINITE_CHECK_BLOCK]).all():
                raise ValueError(f"{name} contains NaN or infinity.")
    else:
        raise ValueError(
            f"{name} has dtype {X.dtype}; expected uint8, uint16 or a floating-point "
            "dtype (scaled as you want the network to see it)."
        )
    if X.ndim == 3:
        X = X[:, np.newaxis]
    return X


def _size(shape):
    return "x".join(str(int(s)) for s in shape)


def _check_same_sizes(X, name):
    """A list of images of different sizes is an error, not a ragged object array."""
    if not isinstance(X, (list, tuple)) or not X:
        return
    shapes = Counter(tuple(np.shape(x)) for x in X)
    if len(shapes) > 1:
        sizes = ", ".join(f"{n} of {_size(shape)}" for shape, n in shapes.most_common())
        raise ValueError(
            f"{name} is a list of images of different sizes ({sizes}); resize them to one "
            "size, for example with CXRPreprocessor(size=...) or "
            "load_image_folder(image_size=...)."
        )


def image_size_error(shape, trained, name="X"):
    """The message for images of another size than the network was trained on."""
    return (
        f"{name} has images of size {_size(shape)}, but the network was trained on "
        f"{_size(trained)}: resize them the same way, for example with "
        f"CXRPreprocessor(size={tuple(int(s) for s in trained)}) in a Pipeline before "
        "the network."
    )


def dataset_image(item):
    """The image of a Dataset item: the item itself, or its first element."""
    return item[0] if isinstance(item, (tuple, list)) else item


class CheckedDataset(Dataset):
    """A Dataset whose items get the checks that arrays get.

    Each image goes through :func:`check_images` (NaN or infinity, shape,
    dtype; ``uint8`` / ``uint16`` scaled to ``[0, 1]``) and must have the
    size ``image_shape``; when training (``classes`` given) each label must
    be an integer code of one of the classes. Items may be an image alone,
    a 1-tuple or an ``(image, label, ...)`` tuple; they are returned as
    ``(image of shape (1, H, W), label code)``, the code 0 when predicting.
    Errors name the item, since a Dataset is checked as it is read.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
    classes : array-like or None, default=None
        The classes when training; ``None`` when predicting (labels ignored).
    image_shape : tuple of (int, int) or None, default=None
        The expected ``(height, width)``.
    trained : bool, default=True
        Whether ``image_shape`` is the network's (a prediction-time message)
        or the training set's first image (a mixed-sizes message).
    name : str, default="X"
    """

    def __init__(self, dataset, *, classes=None, image_shape=None, trained=True, name="X"):
        self.dataset = dataset
        self.classes = classes
        self.image_shape = image_shape
        self.trained = trained
        self.name = name

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = self.dataset[i]
        image = self.image(i, dataset_image(item))
        if self.classes is None:
            return image, 0
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(
                f"Training on a Dataset needs (image, label code) items; item {i} yields no label."
            )
        return image, self.label_code(i, item[1])

    def image(self, i, image):
        """Item ``i``'s image checked, as a float32 tensor of shape (1, H, W)."""
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        try:
            x = check_images(np.asarray(image)[np.newaxis], allow_dataset=False, name=self.name)
        except ValueError as exc:
            raise ValueError(f"{str(exc).rstrip('.')} (Dataset item {i}).") from None
        shape = x.shape[-2:]
        if self.image_shape is not None and tuple(shape) != tuple(self.image_shape):
            if self.trained:
                message = image_size_error(shape, self.image_shape, self.name).rstrip(".")
            else:
                message = (
                    f"{self.name}: Dataset item {i} is an image of size {_size(shape)}, "
                    f"but the others are {_size(self.image_shape)}; resize them to one "
                    "size"
                )
            raise ValueError(f"{message} (Dataset item {i}).")
        return torch.from_numpy(x[0])

    def label_code(self, i, label):
        """Item ``i``'s label as an int code of ``classes``."""
        value = label.item() if isinstance(label, (torch.Tensor, np.generic)) else label
        n = len(self.classes)
        integral = (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and float(value).is_integer()
        )
        if not integral or not 0 <= value < n:
            raise ValueError(
                f"Dataset item {i} has label code {value!r}; the codes of classes "
                f"{np.asarray(self.classes).tolist()} are 0 to {n - 1}."
            )
        return int(value)


def encode_labels(y, classes, *, name="y"):
    """Map labels to integer codes ``0 .. n_classes - 1`` in the order of ``classes``.

    Parameters
    ----------
    y : array-like of shape (n_images,)
        Labels (integers or strings).
    classes : array-like of shape (n_classes,)
        The label set, in the order that defines the codes.
    name : str, default="y"
        Name used in error messages.

    Returns
    -------
    codes : ndarray of shape (n_images,), dtype int64

    Raises
    ------
    ValueError
        If ``y`` is not one-dimensional or holds labels missing from ``classes``.
    """
    y = labels_1d(y, name)
    classes = np.asarray(classes)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    try:
        pos = np.searchsorted(sorted_classes, y)
    except TypeError as exc:  # e.g. str labels against int classes
        raise ValueError(
            f"{name} holds labels of a different type than the classes {classes.tolist()}."
        ) from exc
    pos = np.clip(pos, 0, len(classes) - 1)
    known = sorted_classes[pos] == y
    if not np.all(known):
        unseen = np.unique(y[~known])
        raise ValueError(
            f"{name} contains labels not among the classes {classes.tolist()}: {unseen.tolist()}."
        )
    return order[pos].astype(np.int64)


def accepts_keyword(func, name):
    """Whether ``func`` can be called with the keyword argument ``name``.

    True if it has a parameter of that name or takes ``**kwargs``; False when
    its signature cannot be read.
    """
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind == p.VAR_KEYWORD for p in params)
