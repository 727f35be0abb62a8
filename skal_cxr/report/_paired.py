"""Paired comparisons over seeds: paired t, exact Wilcoxon, bootstrap CI, Holm.

The one implementation of the paired statistics that the simulation report
(:func:`~skal_cxr.report.summarize`) and the studies under ``benchmarks/``
use, so that the same per-seed values give the same p-values everywhere.

Every difference zero (the two arms gave the same value on every seed) has
one answer: nothing distinguishes them, so both p-values are 1.0, the mean
difference is 0 and the bootstrap interval is ``[0, 0]``.
"""

import warnings

import numpy as np
from scipy import stats

__all__ = ["paired_tests", "paired_by_seed", "bootstrap_ci", "holm", "with_holm"]


def bootstrap_ci(values, *, n_boot=10_000, random_state=0):
    """95 % percentile bootstrap interval of the mean of ``values``.

    ``n_boot`` resamples of ``values`` with replacement; the interval is the
    2.5th and 97.5th percentiles of their means.

    Parameters
    ----------
    values : array-like of shape (n,)
        For example one value per seed; ``n >= 1``.
    n_boot : int, default=10_000
        Bootstrap resamples.
    random_state : int, default=0
        Seed of the resampling, so that a rerun gives the same interval.

    Returns
    -------
    ci : tuple of (float, float)
        ``(low, high)``.

    Examples
    --------
    >>> from skal_cxr.report import bootstrap_ci
    >>> bootstrap_ci([3.0, 3.0, 3.0])
    (3.0, 3.0)
    """
    values = np.asarray(values, dtype=float)
    boot = np.random.default_rng(random_state).choice(values, (n_boot, len(values)))
    means = boot.mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_tests(a, b, *, n_boot=10_000, random_state=0):
    """Paired t, exact Wilcoxon and a percentile bootstrap CI of ``mean(a - b)``.

    Parameters
    ----------
    a, b : array-like of shape (n_pairs,)
        Paired values (for example one per seed).
    n_boot : int, default=10_000
        Bootstrap resamples of the differences.
    random_state : int, default=0
        Seed of the bootstrap, so that a rerun gives the same interval.

    Returns
    -------
    result : dict
        ``mean_a``, ``mean_b``, ``diff`` (the mean of ``a - b``), ``ci``
        (its 95 % percentile bootstrap interval, ``[low, high]``), ``p_t``
        (two-sided paired t-test), ``p_wilcoxon`` (two-sided Wilcoxon
        signed-rank test, exact, on the nonzero differences) and ``n``.

    Notes
    -----
    * Every difference zero: ``p_t = p_wilcoxon = 1.0``, ``diff = 0`` and
      ``ci = [0, 0]``: the two arms cannot be told apart.
    * ``p_t`` is NaN for fewer than two pairs, and for differences that are
      all the same nonzero value (the t statistic is undefined).
    * With ``n`` nonzero differences the exact two-sided Wilcoxon p-value
      cannot fall below ``2 / 2**n``: 0.25 for 3 pairs, 0.0625 for 5, so at
      least 6 are needed for ``p < 0.05``. The t-test assumes normal
      differences.
    * No pairs: every number is NaN.

    Examples
    --------
    >>> from skal_cxr.report import paired_tests
    >>> out = paired_tests([0.8, 0.9, 0.7], [0.8, 0.9, 0.7])
    >>> out["p_t"], out["p_wilcoxon"], out["diff"], out["ci"]
    (1.0, 1.0, 0.0, [0.0, 0.0])
    >>> round(paired_tests([1.0, 2.0, 3.5], [0.0, 0.0, 0.0])["p_wilcoxon"], 4)
    0.25
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    d = a - b
    nan = float("nan")
    out = {
        "mean_a": float(a.mean()) if len(a) else nan,
        "mean_b": float(b.mean()) if len(b) else nan,
        "diff": float(d.mean()) if len(d) else nan,
        "ci": [nan, nan],
        "p_t": nan,
        "p_wilcoxon": nan,
        "n": int(len(d)),
    }
    if len(d) == 0:
        return out
    if np.all(d == 0):
        return {**out, "diff": 0.0, "ci": [0.0, 0.0], "p_t": 1.0, "p_wilcoxon": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(d) > 1 and np.ptp(d) > 0:
            out["p_t"] = float(stats.ttest_rel(a, b).pvalue)
        out["p_wilcoxon"] = float(stats.wilcoxon(d[d != 0], method="exact").pvalue)
    out["ci"] = list(bootstrap_ci(d, n_boot=n_boot, random_state=random_state))
    return out


def paired_by_seed(a, b, **kwargs):
    """:func:`paired_tests` of two ``{seed: value}`` maps, on the seeds both have.

    Parameters
    ----------
    a, b : dict
        ``{seed: value}``; seeds present in only one are left out.
    **kwargs
        Passed to :func:`paired_tests` (``n_boot``, ``random_state``).

    Returns
    -------
    result : dict
        As :func:`paired_tests`, paired in increasing seed order.

    Examples
    --------
    >>> from skal_cxr.report import paired_by_seed
    >>> paired_by_seed({0: 0.9, 1: 0.8, 2: 0.7}, {1: 0.8, 2: 0.7})["n"]
    2
    """
    seeds = sorted(set(a) & set(b))
    return paired_tests([a[s] for s in seeds], [b[s] for s in seeds], **kwargs)


def holm(pvalues):
    """Holm-adjusted p-values (step-down, family-wise error), in the input order.

    The ``k``-th smallest of ``m`` p-values is multiplied by ``m - k + 1``,
    made non-decreasing in that order and capped at 1. NaN p-values stay
    NaN and count in ``m``.

    Parameters
    ----------
    pvalues : array-like of shape (m,)

    Returns
    -------
    adjusted : list of float

    Examples
    --------
    >>> from skal_cxr.report import holm
    >>> [round(p, 6) for p in holm([0.04, 0.01, 0.02])]
    [0.04, 0.03, 0.04]
    """
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)  # NaN sort last
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def with_holm(results, key="p_t"):
    """Add ``<key>_holm`` to each of ``results``: Holm over their ``key`` p-values.

    Parameters
    ----------
    results : dict
        ``{name: result}`` of :func:`paired_tests` (one family of tests).
    key : str, default="p_t"
        The p-value adjusted.

    Returns
    -------
    results : dict
        The same dict, each result with ``<key>_holm`` added.
    """
    adjusted = holm([r[key] for r in results.values()])
    for result, p in zip(results.values(), adjusted):
        result[f"{key}_holm"] = p
    return results
