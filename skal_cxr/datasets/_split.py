"""Train / test splits that keep all images of a patient on one side."""

import numbers

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold
from sklearn.utils import _safe_indexing, check_consistent_length, indexable

__all__ = ["patient_train_test_split"]


def patient_train_test_split(*arrays, groups, test_size=0.25, stratify=None, random_state=None):
    """Split arrays into train and test parts with no group (patient) in both.

    A grouped version of :func:`sklearn.model_selection.train_test_split`:
    images of one patient (one value of ``groups``) all land in the same
    part, so a test score never rewards recognising a patient seen in
    training.

    Parameters
    ----------
    *arrays : sequence of indexables with the same length
        Lists, NumPy arrays, scipy-sparse matrices or pandas dataframes.
        With no array, the train and test indices are returned.
    groups : array-like of shape (n_samples,)
        Group (patient) id of each sample.
    test_size : float, default=0.25
        Fraction in ``(0, 1)``. Without ``stratify`` it is the fraction of
        *groups* put in the test part (:class:`~sklearn.model_selection.GroupShuffleSplit`),
        so the fraction of samples is close to it only when groups have
        similar sizes. With ``stratify``, the data is cut into
        ``k = round(1 / test_size)`` folds by
        :class:`~sklearn.model_selection.StratifiedGroupKFold` (shuffled) and
        one fold is the test part: about ``1 / k`` of the samples, with class
        proportions kept as well as the groups allow.
    stratify : array-like of shape (n_samples,), default=None
        Class labels to stratify on.
    random_state : int, RandomState instance or None, default=None
        Controls the shuffling; an int gives the same split each call.

    Returns
    -------
    splitting : list
        ``[a_train, a_test, b_train, b_test, ...]`` for the arrays given, in
        the form of each input; with no array, ``[train_indices, test_indices]``
        (sorted ndarrays of int).

    Raises
    ------
    ValueError
        For fewer than two groups, a ``test_size`` outside ``(0, 1)``,
        inconsistent lengths, or more folds than groups.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.datasets import patient_train_test_split
    >>> X = np.arange(8).reshape(8, 1)
    >>> patients = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> X_train, X_test = patient_train_test_split(X, groups=patients, random_state=0)
    >>> len(X_train), len(X_test)
    (6, 2)
    """
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, numbers.Real)
        or not 0 < test_size < 1
    ):
        raise ValueError(f"test_size must be a float in (0, 1); got {test_size!r}.")
    arrays = indexable(*arrays)
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ValueError(f"groups must be one-dimensional; got shape {groups.shape}.")
    check_consistent_length(*arrays, groups, *([] if stratify is None else [stratify]))
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"Need at least 2 groups to split; got {n_groups}.")
    dummy = np.zeros((len(groups), 1))

    if stratify is None:
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
        train, test = next(splitter.split(dummy, groups=groups))
    else:
        stratify = np.asarray(stratify)
        n_splits = max(2, int(round(1 / test_size)))
        if n_splits > n_groups:
            raise ValueError(
                f"test_size={test_size} needs {n_splits} folds but there are only "
                f"{n_groups} groups; use a larger test_size or more groups."
            )
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        train, test = next(splitter.split(dummy, stratify, groups=groups))
    train, test = np.sort(train), np.sort(test)
    if np.intersect1d(groups[train], groups[test]).size:  # guaranteed by the splitters
        raise RuntimeError("A group ended up in both parts; please report this bug.")
    if not arrays:
        return [train, test]
    return [part for a in arrays for part in (_safe_indexing(a, train), _safe_indexing(a, test))]
