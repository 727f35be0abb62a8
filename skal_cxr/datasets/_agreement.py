"""Consensus of several raters' labels, and inter-rater agreement."""

import numpy as np

__all__ = [
    "CONSENSUS",
    "consensus_codes",
    "fleiss_kappa",
    "percent_agreement",
    "agreement",
    "disagrees",
    "specific_agreement",
    "pairwise_agreement",
]

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


def disagrees(codes, min_spread=1):
    """Whether an item's ordinal codes are at least ``min_spread`` steps apart.

    Parameters
    ----------
    codes : array-like of int
        One item's class codes, one per rater.
    min_spread : int, default=1
        ``1``: any disagreement; ``N``: the most and least severe labels are
        ``N`` or more classes apart.

    Returns
    -------
    disagrees : bool
        False with fewer than two codes.
    """
    codes = np.asarray(codes, dtype=np.int64).ravel()
    if codes.size < 2:
        return False
    return bool(codes.max() - codes.min() >= int(min_spread))


def specific_agreement(codes, n_categories):
    """Per-category specific agreement of items rated by any number of raters.

    For category ``c``, the fraction of the rater pairs in which one rater
    says ``c`` where the other says ``c`` too:
    ``sum_i n_ic (n_ic - 1) / sum_i n_ic (m_i - 1)``, with ``n_ic`` the raters
    of item ``i`` choosing ``c`` and ``m_i`` its raters (items with one rater
    are left out). With two raters it is the positive (specific) agreement
    ``2 a / (2 a + b + c)`` of the category's 2x2 table.

    Parameters
    ----------
    codes : list of array-like of int
        Per item, its raters' category codes (lengths may differ).
    n_categories : int

    Returns
    -------
    agreement : ndarray of shape (n_categories,)
        NaN for a category no rater used.

    References
    ----------
    D. V. Cicchetti and A. R. Feinstein, "High agreement but low kappa: II.
    Resolving the paradoxes", Journal of Clinical Epidemiology 43(6), 1990.
    """
    agree = np.zeros(n_categories)
    possible = np.zeros(n_categories)
    for item in codes:
        item = np.asarray(item, dtype=np.int64).ravel()
        if item.size < 2:
            continue
        n = np.bincount(item, minlength=n_categories)[:n_categories]
        agree += n * (n - 1)
        possible += n * (item.size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(possible > 0, agree / np.where(possible > 0, possible, 1), np.nan)


def pairwise_agreement(ratings, n_categories):
    """Cohen's kappa and the confusion matrix of every pair of raters.

    Parameters
    ----------
    ratings : dict
        ``{item: {rater: code}}``: each item's category codes by rater.
    n_categories : int

    Returns
    -------
    pairs : list of dict
        One per pair of raters who rated at least one item in common, in
        rater order: ``raters`` (the two names), ``n_items``, ``agreement``
        (fraction of common items with the same code), ``kappa`` (Cohen's),
        ``kappa_quadratic`` (quadratic-weighted, for ordinal categories; both
        None when undefined: one category only) and ``confusion``
        (``n_categories`` x ``n_categories`` counts, rows the first rater).

    See Also
    --------
    fleiss_kappa : One agreement figure over all raters.
    """
    raters = sorted({r for by_rater in ratings.values() for r in by_rater}, key=str)
    pairs = []
    for i, a in enumerate(raters):
        for b in raters[i + 1 :]:
            common = [(v[a], v[b]) for v in ratings.values() if a in v and b in v]
            if not common:
                continue
            ya, yb = (np.array(x, dtype=np.int64) for x in zip(*common))
            confusion = np.bincount(ya * n_categories + yb, minlength=n_categories**2).reshape(
                n_categories, n_categories
            )
            pairs.append(
                {
                    "raters": [a, b],
                    "n_items": len(common),
                    "agreement": float(np.mean(ya == yb)),
                    "kappa": _cohen_kappa(confusion),
                    "kappa_quadratic": _cohen_kappa(confusion, quadratic=True),
                    "confusion": confusion.tolist(),
                }
            )
    return pairs


def _cohen_kappa(confusion, quadratic=False):
    """Cohen's kappa of a confusion matrix (None when undefined).

    ``1 - sum(w * observed) / sum(w * expected)``, the expected counts from
    the two raters' marginals, as :func:`sklearn.metrics.cohen_kappa_score`
    computes it from the labels (the tests check the two agree); from the
    matrix, because the status page needs it for every pair of raters and
    the function's input checks cost milliseconds per call.
    """
    confusion = np.asarray(confusion, dtype=float)
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / confusion.sum()
    i = np.arange(len(confusion))
    w = (i[:, None] - i[None, :]) ** 2.0 if quadratic else 1.0 - np.eye(len(i))
    denominator = float(np.sum(w * expected))
    if not denominator > 0:  # one category only: kappa is undefined
        return None
    return float(1.0 - np.sum(w * confusion) / denominator)
