"""The statistics of a simulation report: learning curves, AULC, paired tests.

Small pure functions of the records (no files, no plotting), so that every
number of a report can be recomputed from ``records/*.jsonl``. Only
*complete* runs (every planned round recorded) enter the summary.
"""

import math

import numpy as np

from ._format import format_value
from ._paired import paired_tests

__all__ = [
    "summarize",
    "learning_curves",
    "area_under_learning_curve",
    "labels_to_reach",
    "paired_comparison",
    "FINAL_METRICS",
]

#: Metrics whose last-round value the summary reports (those present are used).
FINAL_METRICS = (
    "auroc",
    "auprc",
    "accuracy",
    "accuracy_op",
    "balanced_accuracy",
    "balanced_accuracy_op",
    "mae_macro",
    "mae_macro_op",
    "ece",
)


def area_under_learning_curve(x, y):
    """Normalised area under a learning curve (trapezoidal rule).

    ``trapezoid(y, x) / (x[-1] - x[0])``: the mean metric over the labeling
    range, on the metric's own scale, so curves over the same range compare
    directly. A single point gives its value.

    Parameters
    ----------
    x : array-like of shape (n_rounds,)
        Increasing labeled fractions (or counts).
    y : array-like of shape (n_rounds,)
        Metric of each round.

    Returns
    -------
    aulc : float

    Examples
    --------
    >>> from skal_cxr.report import area_under_learning_curve
    >>> round(area_under_learning_curve([0.1, 0.2, 0.3], [0.5, 0.7, 0.7]), 6)
    0.65
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) == 1:
        return float(y[0])
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def labels_to_reach(n_labeled, values, target):
    """Fewest labeled images at which a learning curve reaches ``target``.

    Parameters
    ----------
    n_labeled : array-like of shape (n_rounds,)
    values : array-like of shape (n_rounds,)
    target : float

    Returns
    -------
    n : int or None
        The labeled count of the first round with ``value >= target``;
        ``None`` when no round reaches it.

    Examples
    --------
    >>> from skal_cxr.report import labels_to_reach
    >>> labels_to_reach([40, 80, 120], [0.7, 0.91, 0.95], 0.9)
    80
    """
    for n, v in zip(n_labeled, values):
        if v >= target:
            return int(n)
    return None


def paired_comparison(values, reference):
    """Paired tests of per-seed values against a reference strategy.

    The report's view of :func:`~skal_cxr.report.paired_tests`.

    Parameters
    ----------
    values, reference : array-like of shape (n_seeds,)
        Paired by seed (for example the AULC of a strategy and of random).

    Returns
    -------
    result : dict
        ``mean_diff``, ``n``, ``p_wilcoxon`` (two-sided Wilcoxon signed-rank
        test, exact, on the nonzero differences) and ``p_ttest`` (two-sided
        paired t-test). Every difference zero gives both p-values 1.0; a
        p-value is NaN when it cannot be computed (no pairs; the t-test also
        for one pair or a constant nonzero difference).

    Notes
    -----
    With ``n`` seeds the exact two-sided Wilcoxon p-value cannot fall below
    ``2 / 2**n``: 0.25 for 3 seeds, 0.0625 for 5, so at least 6 seeds are
    needed for ``p < 0.05``. The t-test assumes normal differences.
    """
    test = paired_tests(values, reference)
    return {
        "mean_diff": test["diff"],
        "n": test["n"],
        "p_wilcoxon": test["p_wilcoxon"],
        "p_ttest": test["p_t"],
    }


def learning_curves(records, schedule):
    """Complete learning curves, grouped by strategy then seed.

    Parameters
    ----------
    records : list of dict
        Records of a results folder.
    schedule : list of int
        The planned labeled-set size of every round; runs missing a round
        are left out.

    Returns
    -------
    curves : dict
        ``{strategy: {seed: [record, ...]}}`` with records in round order.
    baselines : dict
        ``{seed: record}`` of the full-data baselines.
    n_incomplete : int
        Runs left out for missing rounds.
    """
    runs, baselines = {}, {}
    for rec in records:
        if rec["kind"] == "baseline":
            baselines[rec["seed"]] = rec
        else:
            runs.setdefault(rec["strategy"], {}).setdefault(rec["seed"], []).append(rec)
    curves, n_incomplete = {}, 0
    for strategy, by_seed in runs.items():
        for seed, recs in sorted(by_seed.items()):
            recs = sorted(recs, key=lambda r: r["round"])
            if [r["n_labeled"] for r in recs] == list(schedule):
                curves.setdefault(strategy, {})[seed] = recs
            else:
                n_incomplete += 1
    return curves, baselines, n_incomplete


def _mean_std(values):
    values = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarize(records, schedule, *, metric="auroc", targets=(0.95, 1.0), strategy_order=None):
    """Summary rows of a simulation, one per strategy plus the baseline.

    Parameters
    ----------
    records : list of dict
    schedule : list of int
        Planned labeled-set sizes (``resolved["schedule"]`` of config.json).
    metric : str, default="auroc"
        Metric of the learning-curve area, the targets and the paired tests.
    targets : sequence of float, default=(0.95, 1.0)
        Fractions of the full-data baseline's ``metric`` (same seed) to reach.
    strategy_order : sequence of str, default=None
        Row order; by default random first, then alphabetical.

    Returns
    -------
    rows : list of dict
        For each strategy: ``strategy``, ``n_seeds`` (complete runs),
        ``aulc_mean``, ``aulc_std`` (AULC of ``metric`` against the labeled
        *fraction*, per seed, over the ``aulc_n_seeds`` seeds whose curve
        has no NaN), ``labels_to_<pct>_mean`` (mean over the seeds that reached the
        target, empty if none) and ``labels_to_<pct>_reached`` (how many did),
        ``final_<m>_mean`` / ``_std`` for the :data:`FINAL_METRICS` present,
        ``fit_time_mean`` / ``query_time_mean`` (seconds per round, queries
        averaged over the rounds that queried), and against random
        ``aulc_diff_vs_random``, ``p_wilcoxon``, ``p_ttest`` (over the seeds
        with a finite AULC in both). The baseline
        row (``strategy="full_data"``) has its final metrics and fit time.
    """
    curves, baselines, _ = learning_curves(records, schedule)
    order = list(strategy_order or sorted(curves, key=lambda s: (s != "random", s)))
    order = [s for s in order if s in curves]
    rows, aulc = [], {}
    metric_names = [m for m in FINAL_METRICS if any(m in r["metrics"] for r in records)]
    for strategy in order:
        by_seed = curves[strategy]
        seeds = sorted(by_seed)
        aulc[strategy] = {
            s: area_under_learning_curve(
                [r["frac_labeled"] for r in by_seed[s]], [r["metrics"][metric] for r in by_seed[s]]
            )
            for s in seeds
        }
        row = {"strategy": strategy, "n_seeds": len(seeds)}
        row["aulc_mean"], row["aulc_std"] = _mean_std(list(aulc[strategy].values()))
        # a seed whose curve has a NaN metric has no AULC: say how many do
        row["aulc_n_seeds"] = sum(math.isfinite(v) for v in aulc[strategy].values())
        for t in targets:
            key = f"labels_to_{round(100 * t):d}"
            reached = []
            for s in seeds:
                if s not in baselines:
                    continue
                goal = t * baselines[s]["metrics"][metric]
                n = labels_to_reach(
                    [r["n_labeled"] for r in by_seed[s]],
                    [r["metrics"][metric] for r in by_seed[s]],
                    goal,
                )
                if n is not None:
                    reached.append(n)
            row[key + "_mean"] = float(np.mean(reached)) if reached else float("nan")
            row[key + "_reached"] = len(reached)
        for m in metric_names:
            row[f"final_{m}_mean"], row[f"final_{m}_std"] = _mean_std(
                [by_seed[s][-1]["metrics"].get(m) for s in seeds]
            )
        row["fit_time_mean"] = float(np.mean([r["fit_time"] for s in seeds for r in by_seed[s]]))
        queries = [r["query_time"] for s in seeds for r in by_seed[s] if r["queried"]]
        row["query_time_mean"] = float(np.mean(queries)) if queries else 0.0
        rows.append(row)
    for row in rows:
        row.update(
            {
                "aulc_diff_vs_random": float("nan"),
                "p_wilcoxon": float("nan"),
                "p_ttest": float("nan"),
            }
        )
        if "random" in aulc and row["strategy"] != "random":
            common = sorted(
                s
                for s in set(aulc["random"]) & set(aulc[row["strategy"]])
                if math.isfinite(aulc["random"][s]) and math.isfinite(aulc[row["strategy"]][s])
            )
            test = paired_comparison(
                [aulc[row["strategy"]][s] for s in common], [aulc["random"][s] for s in common]
            )
            row["aulc_diff_vs_random"] = test["mean_diff"]
            row["p_wilcoxon"], row["p_ttest"] = test["p_wilcoxon"], test["p_ttest"]
    if baselines:
        recs = [baselines[s] for s in sorted(baselines)]
        row = {"strategy": "full_data", "n_seeds": len(recs)}
        for m in metric_names:
            row[f"final_{m}_mean"], row[f"final_{m}_std"] = _mean_std(
                [r["metrics"].get(m) for r in recs]
            )
        row["fit_time_mean"] = float(np.mean([r["fit_time"] for r in recs]))
        rows.append(row)
    return rows


def verdict_vs_random(row, alpha=0.05):
    """One plain sentence: did this strategy beat random sampling?

    A strategy *beat random* when its mean paired AULC difference is
    positive and the two-sided paired t-test over seeds gives ``p < alpha``
    (the exact Wilcoxon test cannot reach 0.05 with fewer than 6 seeds, so
    it is quoted, not used to decide).

    Parameters
    ----------
    row : dict
        A row of :func:`summarize` (``aulc_diff_vs_random``, ``p_ttest``,
        ``p_wilcoxon``, ``n_seeds``).
    alpha : float, default=0.05
        Significance level of the paired t-test.

    Returns
    -------
    sentence : str
        The verdict, with the difference, both p-values and the seed count.

    Examples
    --------
    >>> from skal_cxr.report import verdict_vs_random
    >>> verdict_vs_random({"strategy": "bald", "aulc_diff_vs_random": 0.012,
    ...                    "p_ttest": 0.01, "p_wilcoxon": 0.25, "n_seeds": 3})
    'bald beat random: AULC +0.0120 (paired t-test p = 0.01, Wilcoxon p = 0.25, 3 seeds).'
    """
    diff, p_t = row["aulc_diff_vs_random"], row["p_ttest"]
    tests = (
        f"(paired t-test p = {format_value(p_t, spec='.2g')}, "
        f"Wilcoxon p = {format_value(row['p_wilcoxon'], spec='.2g')}, "
        f"{row['n_seeds']} seeds)"
    )
    if diff is None or math.isnan(diff):
        return f"{row['strategy']}: no paired random runs to compare with."
    if diff > 0 and not math.isnan(p_t) and p_t < alpha:
        return f"{row['strategy']} beat random: AULC {diff:+.4f} {tests}."
    if diff > 0:
        return f"{row['strategy']} did not beat random significantly: AULC {diff:+.4f} {tests}."
    return f"{row['strategy']} did not beat random: AULC {diff:+.4f} {tests}."
