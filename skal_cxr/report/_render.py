"""Writing the report of a results folder: figure, summary table, markdown."""

import csv
import io
import warnings
from pathlib import Path

import numpy as np

from .._atomic import atomic_write, replacing
from .._results import REPORT_FILES, RecordsWarning, own_files, read_config, read_records
from ._format import format_value as _fmt
from ._headline import headline, model_headline
from ._statistics import learning_curves, summarize, verdict_vs_random

__all__ = ["make_report", "plot_learning_curves"]

_PLOTTED = ("auroc", "auprc", "balanced_accuracy", "balanced_accuracy_op", "ece", "mae_macro_op")
_LABELS = {
    "auroc": "macro AUROC",
    "auprc": "macro AUPRC",
    "accuracy": "accuracy",
    "accuracy_op": "accuracy (val. operating point)",
    "balanced_accuracy": "balanced accuracy",
    "balanced_accuracy_op": "balanced accuracy (val. operating point)",
    "mae_macro": "macro MAE (ordinal)",
    "mae_macro_op": "macro MAE (val. operating point)",
    "ece": "expected calibration error",
}


def plot_learning_curves(curves, baselines, metrics, path, *, n_pool=None):
    """Write a PNG of learning curves (no pyplot: no global figure state).

    Parameters
    ----------
    curves, baselines : dict
        From :func:`~skal_cxr.report.learning_curves`.
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
            ax.plot(
                x,
                mean,
                marker="o",
                ms=3,
                color=colors[strategy],
                label=f"{strategy} (n={len(seeds)})",
            )
            ax.fill_between(x, mean - sd, mean + sd, color=colors[strategy], alpha=0.15, lw=0)
        values = [b["metrics"][metric] for b in baselines.values() if metric in b["metrics"]]
        if values:
            ax.axhline(
                np.mean(values), color="k", ls="--", lw=1, label=f"full data (n={len(values)})"
            )
        ax.set_title(_LABELS.get(metric, metric))
        ax.set_xlabel("% of the pool labeled" + (f" (pool: {n_pool})" if n_pool else ""))
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    fig.suptitle("Learning curves: mean over seeds, band = ±1 SD")
    fig.savefig(path, dpi=110)


def _initial_text(config):
    """How the initial labeled set was chosen, marking the label-using oracle."""
    initial = config.get("initial", "stratified")  # results of skal_cxr < 0.2 were stratified
    if initial == "stratified":
        return (
            "**stratified by class: an oracle that uses the pool's labels, which a real "
            "project does not have (reference only)**"
        )
    if initial == "random":
        return "drawn at random without labels"
    if initial == "strategy":
        return "chosen without labels by each label-free strategy itself, at random otherwise"
    return f"chosen without labels by {initial}"


def _model_text(config):
    """The model line of the report (a folder without ``model`` trained the CNN)."""
    model = config.get("model", "cnn")
    text = (
        "an MC Dropout head on the pool's contrastive view (encoder trained once on the "
        "whole pool without labels)"
        if model == "view"
        else "the MC Dropout CNN from pixels"
    )
    extra = sorted({a for a in config["strategies"] if "@" in a})
    if extra:
        text += f"; arms with their own model: {', '.join(extra)}"
    return f"- model: {text}"


def _view_time(results_dir, records):
    """A line on the pool's encoder: its training time and share of the simulation's time."""
    import json

    metas = []
    for path in sorted(Path(results_dir).glob("view-*.json")):
        try:
            metas.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    metas = [m for m in metas if isinstance(m.get("fit_time"), (int, float))]
    if not metas:
        return []
    encoder = sum(m["fit_time"] for m in metas)
    cpu = sum(m.get("fit_cpu_time") or 0.0 for m in metas)
    rounds = sum(
        (r.get("fit_time") or 0.0) + (r.get("query_time") or 0.0) + (r.get("eval_time") or 0.0)
        for r in records
    )
    share = 100 * encoder / (encoder + rounds) if encoder + rounds > 0 else float("nan")
    return [
        f"- the pool's encoder: trained once in {encoder:.0f} s ({cpu:.0f} CPU-s), "
        f"{share:.0f} % of the simulation's {encoder + rounds:.0f} s of training, "
        "querying and evaluation (summed over runs)"
    ]


def _calibration_lines(records, order):
    """The calibration table of the last round: raw ECE and after the two corrections."""
    by_arm = {}
    for rec in records:
        cal = rec.get("calibration")
        if rec.get("kind") == "active" and isinstance(cal, dict):
            by_arm.setdefault(rec["strategy"], []).append(cal)
    arms = [a for a in order if a in by_arm]
    if not arms:
        return []

    def mean(cals, key):
        values = [c[key] for c in cals if isinstance(c.get(key), (int, float))]
        return float(np.mean(values)) if values else float("nan")

    lines = [
        "",
        "## Calibration at the last round (test ECE, mean over seeds)",
        "",
        "| strategy | seeds | raw | temperature + prior fitted on validation | "
        "class prior of the unlabeled pool by EM | EM prior estimate |",
        "|---|---|---|---|---|---|",
    ]
    for arm in arms:
        cals = by_arm[arm]
        priors = [c["em_prior"] for c in cals if isinstance(c.get("em_prior"), list)]
        prior = np.mean(priors, axis=0) if priors else []
        lines.append(
            f"| {arm} | {len(cals)} | {_fmt(mean(cals, 'ece'))} | "
            f"{_fmt(mean(cals, 'ece_val_corrected'))} | {_fmt(mean(cals, 'ece_em_prior'))} | "
            f"{', '.join(f'{p:.2f}' for p in prior) or '–'} |"
        )
    lines += [
        "",
        "Validation: `PriorCorrection` (a temperature and a class-prior shift fitted on the "
        "validation labels). EM: `EMPriorCorrection` (Saerens et al. 2002), the class prior "
        "of the pool's unlabeled images re-estimated without labels. Neither sees the test "
        "split.",
    ]
    return lines


def _markdown(
    meta, rows, metric, targets, n_incomplete, problems=(), lead=(), extra=(), calibration=()
):
    config, resolved = meta["config"], meta["resolved"]
    data = config["data"]
    lines = [
        "# Active-learning simulation report",
        "",
        *[f"**{sentence}**" for sentence in lead],
        *([""] if lead else []),
        f"- data: `{data['source']}`, classes {resolved['classes']}; pool {resolved['n_pool']}"
        f" (class counts {resolved['pool_class_counts']}), validation {resolved['n_val']},"
        f" test {resolved['n_test']} (class counts {resolved['test_class_counts']}),"
        f" split: {resolved['split']}",
        *(
            [
                f"- raters: {resolved['agreement']['n_raters']} per image, Fleiss' kappa "
                f"{resolved['agreement']['fleiss_kappa']:.3f}, percent agreement "
                f"{resolved['agreement']['percent_agreement']:.3f}; labels are their consensus"
            ]
            if resolved.get("agreement")
            else []
        ),
        f"- strategies: {', '.join(config['strategies'])}; seeds: {config['seeds']}",
        _model_text(config),
        *extra,
        f"- initial labels: {config.get('n_initial', '?')}, {_initial_text(config)}",
        f"- labeled per round: {resolved['schedule']} (budget {config['budget']});"
        f" {config['n_mc_samples']} MC dropout samples per query;"
        f" class weight: {config['class_weight']}; sampler: {config.get('sampler')};"
        f" warm start: {config['warm_start']}",
        f"- training rule: epochs per fit = max({config['training']['max_epochs']}, "
        f"ceil({config['training']['min_train_steps']} / batches per epoch)), batch size "
        f"{config['estimator']['batch_size']}, learning rate "
        f"{config['estimator'].get('lr', '')} ({config['training'].get('lr_schedule', '')})",
        f"- skal_cxr {meta.get('skal_cxr_version', '?')}",
        "",
        "![learning curves](learning_curves.png)",
        "",
        f"## Summary (learning-curve metric: {_LABELS.get(metric, metric)})",
        "",
    ]
    tgt = [f"labels_to_{round(100 * t):d}" for t in targets]
    header = (
        ["strategy", "seeds", "AULC mean ± SD"]
        + [f"labels to {round(100 * t)}% of full data" for t in targets]
        + [
            f"final {metric}",
            "final bal. acc. (argmax / val. op.)",
            "final ECE",
            "fit s/round",
            "query s/round",
        ]
    )
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        full = row["strategy"] == "full_data"
        aulc = "" if full else f"{_fmt(row['aulc_mean'])} ± {_fmt(row['aulc_std'])}"
        if not full and row["aulc_n_seeds"] < row["n_seeds"]:
            aulc += (
                f" (over {row['aulc_n_seeds']} of {row['n_seeds']} seeds; the others have "
                f"a NaN {metric})"
            )
        cells = [row["strategy"], str(row["n_seeds"]), aulc]
        for key in tgt:
            if full:
                cells.append("")
            else:
                n = row[key + "_reached"]
                cells.append(f"{_fmt(row[key + '_mean'], 0)} ({n}/{row['n_seeds']} seeds)")
        cells.append(
            f"{_fmt(row.get(f'final_{metric}_mean'))} ± {_fmt(row.get(f'final_{metric}_std'))}"
        )
        cells.append(
            f"{_fmt(row.get('final_balanced_accuracy_mean'))} / "
            f"{_fmt(row.get('final_balanced_accuracy_op_mean'))}"
        )
        cells.append(_fmt(row.get("final_ece_mean")))
        cells.append(_fmt(row.get("fit_time_mean"), 2))
        cells.append("" if full else _fmt(row.get("query_time_mean"), 2))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Labels to a target: the labeled count of the first round whose score reaches the "
        "fraction of the full-data baseline of the same seed, averaged over the seeds that "
        'reached it. Final metrics are at the last round; "val. op." decisions use class '
        "weights chosen on the validation split (never on the test split).",
    ]
    compared = [r for r in rows if r["strategy"] not in ("random", "full_data")]
    if compared and any(r["strategy"] == "random" for r in rows):
        lines += [
            "",
            f"## Paired comparison with random sampling (AULC of {metric}, by seed)",
            "",
            "| strategy | mean AULC difference | Wilcoxon p | paired t p |",
            "|---|---|---|---|",
        ]
        for r in compared:
            lines.append(
                f"| {r['strategy']} | {r['aulc_diff_vs_random']:+.4f} | "
                f"{_fmt(r['p_wilcoxon'])} | {_fmt(r['p_ttest'])} |"
            )
        lines += ["", "**Did active learning beat random sampling?**", ""]
        lines += [f"- {verdict_vs_random(r)}" for r in compared]
        n = min(r["aulc_n_seeds"] for r in rows if r["strategy"] != "full_data")
        if n < 2:
            lines += ["", "Paired tests need at least 2 seeds."]
        else:
            lines += [
                "",
                f"Two-sided tests over {n} paired seeds. The exact Wilcoxon "
                f"signed-rank p-value cannot fall below {2 / 2**n:.3g} with {n} seeds"
                + (" (6 seeds are needed for p < 0.05)" if n < 6 else "")
                + "; the paired t-test assumes normally distributed differences. "
                '"Beat random" means a positive mean AULC difference with paired '
                "t-test p < 0.05.",
            ]
    lines += list(calibration)
    if n_incomplete:
        lines += [
            "",
            f"**{n_incomplete} incomplete run(s) left out**: rerun the simulate "
            "command to resume them.",
        ]
    if problems:
        lines += [
            "",
            f"## Problems found in the records ({len(problems)})",
            "",
            "These lines were left out of every number above:",
            "",
        ]
        lines += [f"- {p}" for p in problems]
    return "\n".join(lines) + "\n"


def make_report(results_dir, *, metric="auroc", targets=(0.95, 1.0), lead_fraction=0.98):
    """Write ``learning_curves.png``, ``summary.csv`` and ``report.md``.

    Parameters
    ----------
    results_dir : path-like
        A folder written by :func:`skal_cxr.simulation.simulate`.
    metric : str, default="auroc"
        Learning-curve metric of the AULC, targets and paired tests.
    targets : sequence of float, default=(0.95, 1.0)
        Fractions of the full-data score to reach.
    lead_fraction : float, default=0.98
        The report opens with the labels each strategy needed to reach this
        fraction of the full-data score, with a bootstrap 95 % CI over
        seeds, against random (:func:`~skal_cxr.report.headline`).

    Returns
    -------
    paths : dict
        ``{"report": ..., "summary": ..., "figure": ...}`` (Path objects)
        and ``rows``, the summary of :func:`~skal_cxr.report.summarize`.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``config.json``.
    ValueError
        If the folder holds no complete run or ``metric`` is unknown.
    """
    results_dir = Path(results_dir)
    meta = read_config(results_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecordsWarning)
        records = read_records(results_dir)
    problems = [str(w.message) for w in caught if issubclass(w.category, RecordsWarning)]
    for w in caught:  # pass them on to the caller
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
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

    own_files(results_dir, REPORT_FILES)  # listed before written: --overwrite may delete them
    summary = results_dir / "summary.csv"
    fields = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=fields, restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    atomic_write(summary, table.getvalue().encode())

    plotted = [m for m in _PLOTTED if m in known]
    if not meta["resolved"].get("ordinal", True):
        plotted = [m for m in plotted if not m.startswith("mae")]
    if metric not in plotted:
        plotted.insert(0, metric)
    figure = results_dir / "learning_curves.png"
    with replacing(figure, suffix=".png") as tmp:
        plot_learning_curves(
            {s: curves[s] for s in order},
            baselines,
            plotted,
            tmp,
            n_pool=meta["resolved"]["n_pool"],
        )
    report = results_dir / "report.md"
    label = _LABELS.get(metric, metric)
    # a comparison across models (the main job) leads with the default against random
    # on its model and random without it
    lead = model_headline(
        curves,
        baselines,
        meta["config"]["strategies"],
        meta["config"].get("model", "cnn"),
        fraction=lead_fraction,
        metric=metric,
        label=label,
    ) or headline(
        {s: curves[s] for s in order}, baselines, fraction=lead_fraction, metric=metric, label=label
    )
    text = _markdown(
        meta,
        rows,
        metric,
        targets,
        n_incomplete,
        problems,
        lead,
        extra=_view_time(results_dir, records),
        calibration=_calibration_lines(records, order),
    )
    atomic_write(report, text)
    return {"report": report, "summary": summary, "figure": figure, "rows": rows}
