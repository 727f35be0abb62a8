"""Report of a simulation: learning curves, summary table, paired tests.

:func:`make_report` reads ``config.json`` and the records of a results
folder written by :func:`skal_cxr.simulation.simulate` and writes

* ``learning_curves.png``: metrics against the percentage of the pool
  labeled, the mean over seeds with a band of one standard deviation, and
  the full-data baseline as a dashed line;
* ``summary.csv`` and ``report.md``: per strategy, the area under the
  learning curve (AULC), the labels needed to reach a fraction of the
  full-data score, the final metrics, the mean training and acquisition time
  per round, and a paired comparison against random sampling over seeds.

The maths are small public functions (:func:`area_under_learning_curve`,
:func:`labels_to_reach`, :func:`paired_comparison`, :func:`summarize`) so
that every number of the report can be recomputed from the records.
Only *complete* runs (every planned round recorded) enter the summary.
"""

import csv
import json
import math
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

__all__ = [
    "make_report", "summarize", "learning_curves", "area_under_learning_curve",
    "labels_to_reach", "paired_comparison", "plot_learning_curves", "verdict_vs_random",
    "FINAL_METRICS",
]

#: Metrics whose last-round value the summary reports (those present are used).
FINAL_METRICS = (
    "auroc", "auprc", "accuracy", "accuracy_op", "balanced_accuracy", "balanced_accuracy_op",
    "mae_macro", "mae_macro_op", "ece",
)
_PLOTTED = ("auroc", "auprc", "balanced_accuracy", "balanced_accuracy_op", "ece", "mae_macro_op")
_LABELS = {
    "auroc": "macro AUROC", "auprc": "macro AUPRC", "accuracy": "accuracy",
    "accuracy_op": "accuracy (val. operating point)", "balanced_accuracy": "balanced accuracy",
    "balanced_accuracy_op": "balanced accuracy (val. operating point)",
    "mae_macro": "macro MAE (ordinal)", "mae_macro_op": "macro MAE (val. operating point)",
    "ece": "expected calibration error",
}


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

    Parameters
    ----------
    values, reference : array-like of shape (n_seeds,)
        Paired by seed (for example the AULC of a strategy and of random).

    Returns
    -------
    result : dict
        ``mean_diff``, ``n``, ``p_wilcoxon`` (two-sided Wilcoxon signed-rank
        test, exact for small ``n``) and ``p_ttest`` (two-sided paired
        t-test); a p-value is NaN when it cannot be computed (fewer than two
        pairs, all differences zero).

    Notes
    -----
    With ``n`` seeds the exact two-sided Wilcoxon p-value cannot fall below
    ``2 / 2**n``: 0.25 for 3 seeds, 0.0625 for 5, so at least 6 seeds are
    needed for ``p < 0.05``. The t-test assumes normal differences.
    """
    values = np.asarray(values, dtype=float)
    reference = np.asarray(reference, dtype=float)
    diff = values - reference
    out = {"mean_diff": float(diff.mean()) if len(diff) else float("nan"),
           "n": int(len(diff)), "p_wilcoxon": float("nan"), "p_ttest": float("nan")}
    if len(diff) < 2 or np.allclose(diff, 0):
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out["p_wilcoxon"] = float(stats.wilcoxon(values, reference).pvalue)
        except ValueError:
            pass
        out["p_ttest"] = float(stats.ttest_rel(values, reference).pvalue)
    return out


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

    Returns
    -------
    sentence : str

    Examples
    --------
    >>> from skal_cxr.report import verdict_vs_random
    >>> verdict_vs_random({"strategy": "bald", "aulc_diff_vs_random": 0.012,
    ...                    "p_ttest": 0.01, "p_wilcoxon": 0.25, "n_seeds": 3})
    'bald beat random: AULC +0.0120 (paired t-test p = 0.01, Wilcoxon p = 0.25, 3 seeds).'
    """
    diff, p_t = row["aulc_diff_vs_random"], row["p_ttest"]
    tests = (f"(paired t-test p = {_fmt_p(p_t)}, Wilcoxon p = {_fmt_p(row['p_wilcoxon'])}, "
             f"{row['n_seeds']} seeds)")
    if diff is None or math.isnan(diff):
        return f"{row['strategy']}: no paired random runs to compare with."
    if diff > 0 and not math.isnan(p_t) and p_t < alpha:
        return f"{row['strategy']} beat random: AULC {diff:+.4f} {tests}."
    if diff > 0:
        return (f"{row['strategy']} did not beat random significantly: AULC {diff:+.4f} "
                f"{tests}.")
    return f"{row['strategy']} did not beat random: AULC {diff:+.4f} {tests}."


def _fmt_p(p):
    return "–" if p is None or math.isnan(p) else f"{p:.2g}"


def _load(results_dir):
    from .simulation import CONFIG_FILE, read_records

    results_dir = Path(results_dir)
    path = results_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{results_dir} is not a results folder: no {CONFIG_FILE}.")
    try:
        meta = json.loads(path.read_text())
        meta["config"], meta["resolved"]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a skal-cxr configuration ({exc}).") from exc
    return meta, read_records(results_dir)


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
        For each strategy: ``strategy``, ``n_seeds``, ``aulc_mean``,
        ``aulc_std`` (AULC of ``metric`` against the labeled *fraction*, per
        seed), ``labels_to_<pct>_mean`` (mean over the seeds that reached the
        target, empty if none) and ``labels_to_<pct>_reached`` (how many did),
        ``final_<m>_mean`` / ``_std`` for the :data:`FINAL_METRICS` present,
        ``fit_time_mean`` / ``query_time_mean`` (seconds per round, queries
        averaged over the rounds that queried), and against random
        ``aulc_diff_vs_random``, ``p_wilcoxon``, ``p_ttest``. The baseline
        row (``strategy="full_data"``) has its final metrics and fit time.
    """
    curves, baselines, _ = learning_curves(records, schedule)
    order = list(strategy_order or sorted(curves, key=lambda s: (s != "random", s)))
    order = [s for s in order if s in curves]
    rows, aulc = [], {}
    metric_names = [m for m in FINAL_METRICS
                    if any(m in r["metrics"] for r in records)]
    for strategy in order:
        by_seed = curves[strategy]
        seeds = sorted(by_seed)
        aulc[strategy] = {
            s: area_under_learning_curve(
                [r["frac_labeled"] for r in by_seed[s]], [r["metrics"][metric] for r in by_seed[s]]
            ) for s in seeds
        }
        row = {"strategy": strategy, "n_seeds": len(seeds)}
        row["aulc_mean"], row["aulc_std"] = _mean_std(list(aulc[strategy].values()))
        for t in targets:
            key = f"labels_to_{round(100 * t):d}"
            reached = []
            for s in seeds:
                if s not in baselines:
                    continue
                goal = t * baselines[s]["metrics"][metric]
                n = labels_to_reach([r["n_labeled"] for r in by_seed[s]],
                                    [r["metrics"][metric] for r in by_seed[s]], goal)
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
        row.update({"aulc_diff_vs_random": float("nan"), "p_wilcoxon": float("nan"),
                    "p_ttest": float("nan")})
        if "random" in aulc and row["strategy"] != "random":
            common = sorted(set(aulc["random"]) & set(aulc[row["strategy"]]))
            test = paired_comparison([aulc[row["strategy"]][s] for s in common],
                                     [aulc["random"][s] for s in common])
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


def plot_learning_curves(curves, baselines, metrics, path, *, n_pool=None):
    """Write a PNG of learning curves (no pyplot: no global figure state).

    Parameters
    ----------
    curves, baselines : dict
        From :func:`learning_curves`.
    metrics : sequence of str
        One panel per metric.
    path : path-like
    n_pool : int, default=None
        Pool size, shown in the x-axis label.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_cols = min(3, len(metrics))
    n_rows = -(-len(metrics) // n_cols)
    fig = Figure(figsize=(5.2 * n_cols, 3.8 * n_rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    colors = {s: f"C{i}" for i, s in enumerate(curves)}
    for ax, metric in zip(axes, metrics):
        for strategy, by_seed in curves.items():
            seeds = sorted(by_seed)
            x = 100 * np.asarray([r["frac_labeled"] for r in by_seed[seeds[0]]])
            y = np.asarray([[r["metrics"][metric] for r in by_seed[s]] for s in seeds])
            mean = y.mean(axis=0)
            sd = y.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros_like(mean)
            ax.plot(x, mean, marker="o", ms=3, color=colors[strategy],
                    label=f"{strategy} (n={len(seeds)})")
            ax.fill_between(x, mean - sd, mean + sd, color=colors[strategy], alpha=0.15, lw=0)
        values = [b["metrics"][metric] for b in baselines.values() if metric in b["metrics"]]
        if values:
            ax.axhline(np.mean(values), color="k", ls="--", lw=1,
                       label=f"full data (n={len(values)})")
        ax.set_title(_LABELS.get(metric, metric))
        ax.set_xlabel("% of the pool labeled" + (f" (pool: {n_pool})" if n_pool else ""))
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    fig.suptitle("Learning curves: mean over seeds, band = ±1 SD")
    fig.savefig(path, dpi=110)


def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _markdown(meta, rows, metric, targets, n_incomplete):
    config, resolved = meta["config"], meta["resolved"]
    data = config["data"]
    lines = [
        "# Active-learning simulation report", "",
        f"- data: `{data['source']}`, classes {resolved['classes']}; pool {resolved['n_pool']}"
        f" (class counts {resolved['pool_class_counts']}), validation {resolved['n_val']},"
        f" test {resolved['n_test']} (class counts {resolved['test_class_counts']}),"
        f" split: {resolved['split']}",
        *([f"- raters: {resolved['agreement']['n_raters']} per image, Fleiss' kappa "
             f"{resolved['agreement']['fleiss_kappa']:.3f}, percent agreement "
             f"{resolved['agreement']['percent_agreement']:.3f}; labels are their consensus"]
          if resolved.get("agreement") else []),
        f"- strategies: {', '.join(config['strategies'])}; seeds: {config['seeds']}",
        f"- labeled per round: {resolved['schedule']} (budget {config['budget']});"
        f" {config['n_mc_samples']} MC dropout samples per query;"
        f" class weight: {config['class_weight']}; sampler: {config.get('sampler')};"
        f" warm start: {config['warm_start']}",
        f"- training rule: epochs per fit = max({config['training']['max_epochs']}, "
        f"ceil({config['training']['min_train_steps']} / batches per epoch)), batch size "
        f"{config['estimator']['batch_size']}, learning rate "
        f"{config['estimator'].get('lr', '')} ({config['training'].get('lr_schedule', '')})",
        f"- skal_cxr {meta.get('skal_cxr_version', '?')}", "",
        "![learning curves](learning_curves.png)", "",
        f"## Summary (learning-curve metric: {_LABELS.get(metric, metric)})", "",
    ]
    tgt = [f"labels_to_{round(100 * t):d}" for t in targets]
    header = (["strategy", "seeds", "AULC mean ± SD"]
              + [f"labels to {round(100 * t)}% of full data" for t in targets]
              + [f"final {metric}", "final bal. acc. (argmax / val. op.)", "final ECE",
                 "fit s/round", "query s/round"])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        full = row["strategy"] == "full_data"
        cells = [row["strategy"], str(row["n_seeds"]),
                 "" if full else f"{_fmt(row['aulc_mean'])} ± {_fmt(row['aulc_std'])}"]
        for key in tgt:
            if full:
                cells.append("")
            else:
                n = row[key + "_reached"]
                cells.append(f"{_fmt(row[key + '_mean'], 0)} ({n}/{row['n_seeds']} seeds)")
        cells.append(f"{_fmt(row.get(f'final_{metric}_mean'))} ± "
                     f"{_fmt(row.get(f'final_{metric}_std'))}")
        cells.append(f"{_fmt(row.get('final_balanced_accuracy_mean'))} / "
                     f"{_fmt(row.get('final_balanced_accuracy_op_mean'))}")
        cells.append(_fmt(row.get("final_ece_mean")))
        cells.append(_fmt(row.get("fit_time_mean"), 2))
        cells.append("" if full else _fmt(row.get("query_time_mean"), 2))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "", "Labels to a target: the labeled count of the first round whose score reaches the "
        "fraction of the full-data baseline of the same seed, averaged over the seeds that "
        "reached it. Final metrics are at the last round; \"val. op.\" decisions use class "
        "weights chosen on the validation split (never on the test split).",
    ]
    compared = [r for r in rows if r["strategy"] not in ("random", "full_data")]
    if compared and any(r["strategy"] == "random" for r in rows):
        lines += ["", f"## Paired comparison with random sampling (AULC of {metric}, by seed)", "",
                  "| strategy | mean AULC difference | Wilcoxon p | paired t p |",
                  "|---|---|---|---|"]
        for r in compared:
            lines.append(f"| {r['strategy']} | {r['aulc_diff_vs_random']:+.4f} | "
                         f"{_fmt(r['p_wilcoxon'])} | {_fmt(r['p_ttest'])} |")
        lines += ["", "**Did active learning beat random sampling?**", ""]
        lines += [f"- {verdict_vs_random(r)}" for r in compared]
        n = min(r["n_seeds"] for r in rows if r["strategy"] != "full_data")
        if n < 2:
            lines += ["", "Paired tests need at least 2 seeds."]
        else:
            lines += ["", f"Two-sided tests over {n} paired seeds. The exact Wilcoxon "
                      f"signed-rank p-value cannot fall below {2 / 2 ** n:.3g} with {n} seeds"
                      + (" (6 seeds are needed for p < 0.05)" if n < 6 else "")
                      + "; the paired t-test assumes normally distributed differences. "
                      "\"Beat random\" means a positive mean AULC difference with paired "
                      "t-test p < 0.05."]
    if n_incomplete:
        lines += ["", f"**{n_incomplete} incomplete run(s) left out**: rerun the simulate "
                  "command to resume them."]
    return "\n".join(lines) + "\n"


def make_report(results_dir, *, metric="auroc", targets=(0.95, 1.0)):
    """Write ``learning_curves.png``, ``summary.csv`` and ``report.md``.

    Parameters
    ----------
    results_dir : path-like
        A folder written by :func:`skal_cxr.simulation.simulate`.
    metric : str, default="auroc"
        Learning-curve metric of the AULC, targets and paired tests.
    targets : sequence of float, default=(0.95, 1.0)
        Fractions of the full-data score to reach.

    Returns
    -------
    paths : dict
        ``{"report": ..., "summary": ..., "figure": ...}`` (Path objects)
        and ``rows``, the summary of :func:`summarize`.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``config.json``.
    ValueError
        If the folder holds no complete run or ``metric`` is unknown.
    """
    results_dir = Path(results_dir)
    meta, records = _load(results_dir)
    schedule = meta["resolved"]["schedule"]
    curves, baselines, n_incomplete = learning_curves(records, schedule)
    if not curves:
        raise ValueError(f"{results_dir} holds no complete run yet.")
    known = next(iter(next(iter(curves.values())).values()))[0]["metrics"]
    if metric not in known:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(sorted(known))}.")
    order = [s for s in meta["config"]["strategies"] if s in curves]
    order = sorted(order, key=lambda s: s != "random")
    rows = summarize(records, schedule, metric=metric, targets=targets, strategy_order=order)

    summary = results_dir / "summary.csv"
    fields = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(summary, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})

    plotted = [m for m in _PLOTTED if m in known]
    if not meta["resolved"].get("ordinal", True):
        plotted = [m for m in plotted if not m.startswith("mae")]
    if metric not in plotted:
        plotted.insert(0, metric)
    figure = results_dir / "learning_curves.png"
    plot_learning_curves({s: curves[s] for s in order}, baselines, plotted, figure,
                         n_pool=meta["resolved"]["n_pool"])
    report = results_dir / "report.md"
    report.write_text(_markdown(meta, rows, metric, targets, n_incomplete))
    return {"report": report, "summary": summary, "figure": figure, "rows": rows}
