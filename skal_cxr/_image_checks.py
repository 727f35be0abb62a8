"""Image checks: images as ``(N, 1, H, W)`` float32 arrays, checked once.

:func:`check_images` validates arrays (and passes a torch ``Dataset``
through); :class:`~skal_cxr._checked_dataset.CheckedDataset` gives a
Dataset's items the same checks as they are read (apart, with torch);
:func:`mark_checked` and :func:`checked_images` spare arrays already checked
a second scan. Re-exported by :mod:`skal_cxr._validation`.
"""

import numbers
import sys
import weakref
from collections import Counter
from contextlib import contextmanager

import numpy as np

__all__ = [
    "check_images",
    "check_image_size",
    "dataset_image",
    "image_size_error",
    "is_positive_int",
    "mark_checked",
    "checked_images",
]


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
    torch = sys.modules.get("torch")  # not imported: X is no torch object
    if torch is not None and isinstance(X, torch.utils.data.Dataset):
        if not allow_dataset:
            raise TypeError(f"{name} must be an array of images, got a torch Dataset.")
        if len(X) == 0:
            raise ValueError(f"{name} is empty: the Dataset has 0 images.")
        return X
    if torch is not None and isinstance(X, torch.Tensor):
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


def is_positive_int(value):
    """Whether ``value`` is an int of at least 1 (not a bool), checked without scikit-learn."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


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
    if len(pair) != 2 or not all(is_positive_int(s) for s in pair):
        # scikit-learn's error class, imported only here: the labeling server's
        # start-up reads image sizes and must not pay for importing scikit-learn.
        from sklearn.utils._param_validation import InvalidParameterError

        raise InvalidParameterError(
            f"{name} must be a positive int or a (height, width) pair; got {image_size!r}."
        )
    return tuple(int(s) for s in pair)


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
