"""Input validation shared by the estimators and transformers.

The package works on single-channel images stored as ``(N, 1, H, W)``
``float32`` arrays. Every public entry point funnels user input through
:func:`check_images` (defined in :mod:`skal_cxr._image_checks`, with the
other image checks, and re-exported here) and :func:`encode_labels` so that
bad input fails early with one clear message instead of deep inside PyTorch.

Parameters are declared once per estimator in scikit-learn's form, a
``_parameter_constraints`` dict, and checked by :func:`check_params` at
``fit``; scalar arguments go through :func:`check_int` (scikit-learn's
``check_scalar``). This module is the one place that imports scikit-learn's
private parameter-validation tools: estimators take the constraint classes
from here (only :func:`check_image_size`, in :mod:`skal_cxr._image_checks`,
imports scikit-learn's error class itself, and only to raise it, so that
reading image sizes imports no scikit-learn). Modules that a labeling
server reads at start-up import this one inside the functions that check.
"""

import inspect
import numbers

import numpy as np
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

from ._image_checks import (  # the image checks, importable from here as before
    check_image_size,
    check_images,
    checked_images,
    dataset_image,
    image_size_error,
    mark_checked,
)

__all__ = [
    "check_images",
    "encode_labels",
    "accepts_keyword",
    "CheckedDataset",  # noqa: F822 (loaded by __getattr__)
    "dataset_image",
    "image_size_error",
    "check_params",
    "check_int",
    "check_image_size",
    "labels_1d",
    "Integers",
    "Fractions",
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


class Fractions(Interval):
    """``Interval(Real, 0, 1, closed="right")``, refusing bools (``True`` is no fraction)."""

    def __init__(self):
        super().__init__(numbers.Real, 0, 1, closed="right")

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


def __getattr__(name):
    """:class:`CheckedDataset`, imported (with torch) on first use (:pep:`562`)."""
    if name == "CheckedDataset":
        from ._checked_dataset import CheckedDataset

        return CheckedDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
