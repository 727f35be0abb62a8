"""Consensus of several raters' labels, and inter-rater agreement."""

import numpy as np

__all__ = ["CONSENSUS", "consensus_codes", "fleiss_kappa", "percent_agreement", "agreement"]

CONSENSUS = ("majority", "mean", "max")


def _category_counts(codes, n_categories):
    """``(n_items, n_categories)`` counts of each category among an item's raters."""
    codes = np.asarray(codes, dtype=np.int64)
    counts = np.zeros((codes.shape[0], n_categories), dtype=np.int64)
    rows = np.repeat(np.arange(codes.shape[0]), codes.shape[1])
    np.add.at(counts, (rows, codes.ravel()), 1)
    return counts


def consensus_codes(codes, n_categories, method="majority"):
    """One class code per item from its raters' ordinal class codes.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_raters)
        Class codes ``0 .. n_categories - 1``, ordered from least to most
        severe.
    n_categories : int
    method : {"majority", "mean", "max"}, default="majority"
        ``"majority"``: the most frequent code; a tie goes to the more
        severe (higher) code. ``"mean"``: the mean code rounded half up
        (1.5 becomes 2). ``"max"``: the most severe code.

    Returns
    -------
    consensus : ndarray of shape (n_items,), dtype int64
    """
    codes = np.asarray(codes, dtype=np.int64)
    if method == "majority":
        counts = _category_counts(codes, n_categories)
        return (n_categories - 1 - np.argmax(counts[:, ::-1], axis=1)).astype(np.int64)
    if method == "mean":
        return np.floor(codes.mean(axis=1) + 0.5).astype(np.int64)
    if method == "max":
        return codes.max(axis=1)
    raise ValueError(f"consensus must be one of {CONSENSUS}; got {method!r}.")


def fleiss_kappa(codes, n_categories):
    """Fleiss' kappa of ``n_raters`` ratings per item.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_raters)
        Category codes ``0 .. n_categories - 1``; every item has the same
        number of ratings (the raters need not be the same people).
    n_categories : int

    Returns
    -------
    kappa : float
        ``(P - Pe) / (1 - Pe)`` with ``P`` the mean pairwise agreement and
        ``Pe`` the agreement expected by chance from the overall category
        proportions; NaN when ``Pe == 1`` (every rating in one category).

    References
    ----------
    J. L. Fleiss, "Measuring nominal scale agreement among many raters",
    Psychological Bulletin 76(5), 1971.
    """
    counts = _category_counts(codes, n_categories)
    p_bar = percent_agreement(codes, n_categories)
    p_cat = counts.sum(axis=0) / counts.sum()
    p_e = float(np.sum(p_cat**2))
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def percent_agreement(codes, n_categories):
    """Mean over items of the fraction of rater pairs that agree."""
    counts = _category_counts(codes, n_categories)
    n = counts.sum(axis=1)
    per_item = (np.sum(counts * (counts - 1), axis=1)) / (n * (n - 1))
    return float(per_item.mean())


def agreement(codes, n_categories):
    """Agreement summary, or ``None`` with fewer than two raters.

    Returns
    -------
    agreement : dict or None
        ``{"fleiss_kappa": float, "percent_agreement": float,
        "n_raters": int, "n_items": int}``.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] < 2 or codes.shape[0] == 0:
        return None
    return {
        "fleiss_kappa": fleiss_kappa(codes, n_categories),
        "percent_agreement": percent_agreement(codes, n_categories),
        "n_raters": int(codes.shape[1]),
        "n_items": int(codes.shape[0]),
    }
