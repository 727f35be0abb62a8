"""The reference study's design, reproduced: binary CXRs and 3-class severity.

:func:`run_reference_study` runs two simulations with the study's design
(max entropy, mean STD, BALD, variation ratios and random sampling; a
class-weighted loss; retraining each round) and writes ``study.md``, a table
of our figures next to the published ones:

* ``binary``: normal vs pneumonia on PneumoniaMNIST (shipped with skal_cxr);
* ``severity``: normal / moderate / severe on the phantoms, labels from the
  consensus of simulated raters.

Each task is an ordinary results folder (``<output>/binary``,
``<output>/severity``) with its own report; the study table only gathers
them. ``skal-cxr study`` is the command-line form.
"""

import math
from pathlib import Path

from .report._format import format_value as _f

__all__ = ["run_reference_study", "study_table", "PUBLISHED", "STUDY_STRATEGIES", "SCALES"]

#: Acquisition functions of the reference study, random first.
STUDY_STRATEGIES = ["random", "max_entropy", "mean_std", "bald", "variation_ratios"]

#: The reference study's published figures: test accuracy and AUROC reached
#: by its best strategy with the given fraction of the labels.
PUBLISHED = {
    "binary": {
        "strategy": "max_entropy",
        "accuracy": 0.937,
        "auroc": 0.91,
        "labels_fraction": 0.154,
    },
    "severity": {
        "strategy": "mean_std",
        "accuracy": 0.703,
        "auroc": 0.86,
        "labels_fraction": 0.231,
    },
}

#: Sizes of the two tasks. ``"small"`` suits two CPU cores (minutes);
#: ``"tiny"`` only checks that everything runs (tests, the docs gallery).
SCALES = {
    "small": {
        "binary": dict(
            data={"source": "medmnist", "name": "pneumoniamnist", "max_pool": 2000},
            n_initial=40,
            query_size=50,
            budget=0.16,
        ),
        "severity": dict(
            data={"source": "phantoms", "n_samples": 3000, "image_size": 32, "n_raters": 5},
            n_initial=40,
            query_size=60,
            budget=0.24,
        ),
        "seeds": 3,
    },
    "tiny": {
        "binary": dict(
            data={"source": "medmnist", "name": "pneumoniamnist", "max_pool": 200},
            n_initial=10,
            query_size=10,
            budget=30,
            n_mc_samples=4,
            estimator={"module__width": 4, "module__n_blocks": 2},
            training={"max_epochs": 1, "min_train_steps": 3},
        ),
        "severity": dict(
            data={"source": "phantoms", "n_samples": 300, "image_size": 16, "n_raters": 3},
            n_initial=15,
            query_size=10,
            budget=35,
            n_mc_samples=4,
            estimator={"module__width": 4, "module__n_blocks": 2},
            training={"max_epochs": 1, "min_train_steps": 3},
        ),
        "seeds": 2,
    },
}


def run_reference_study(
    output_dir,
    *,
    scale="small",
    seeds=None,
    strategies=None,
    initial="random",
    n_jobs=None,
    overwrite=False,
    progress=False,
):
    """Run the reference study's two tasks and write ``study.md``.

    Parameters
    ----------
    output_dir : path-like
        Gets ``binary/`` and ``severity/`` (ordinary, resumable results
        folders) and ``study.md``.
    scale : {"small", "tiny"}, default="small"
        See :data:`SCALES`.
    seeds : int or list of int, default=None
        ``None`` takes the scale's (3 for ``"small"``).
    strategies : list of str, default=None
        ``None`` is :data:`STUDY_STRATEGIES`.
    initial : str, default="random"
        How each run's initial labeled set is chosen (see
        :func:`skal_cxr.engine.initial_set`): at random without labels by
        default; ``"stratified"`` is the label-using oracle the published
        study's protocol resembles.
    n_jobs : int, default=None
        Runs in parallel (``-1``: every core).
    overwrite : bool, default=False
    progress : bool, default=False

    Returns
    -------
    paths : dict
        ``{"binary": Path, "severity": Path, "study": Path}`` and ``rows``
        (see :func:`study_table`).
    """
    from .simulation import ConfigError, simulate

    if scale not in SCALES:
        raise ConfigError(f"scale must be one of {sorted(SCALES)}; got {scale!r}.")
    output_dir = Path(output_dir)
    settings = SCALES[scale]
    out = {}
    for task in ("binary", "severity"):
        simulate(
            output_dir / task,
            **settings[task],
            strategies=strategies or STUDY_STRATEGIES,
            initial=initial,
            seeds=settings["seeds"] if seeds is None else seeds,
            class_weight="balanced",
            model="cnn",  # the reference study's network, from pixels
            n_jobs=n_jobs,
            overwrite=overwrite,
            progress=progress,
        )
        out[task] = output_dir / task
    rows = study_table(out["binary"], out["severity"])
    study = output_dir / "study.md"
    study.write_text(_markdown(rows, scale))
    return {**out, "study": study, "rows": rows}


def study_table(binary_dir, severity_dir):
    """Per task and strategy: our final metrics, times and labels needed.

    Parameters
    ----------
    binary_dir, severity_dir : path-like
        Results folders of the two tasks.

    Returns
    -------
    rows : list of dict
        ``task``, ``strategy``, ``n_seeds``, ``n_pool``, ``labeled_fraction``
        (at the last round), ``accuracy`` (at the validation operating
        point), ``auroc``, ``auprc``, ``fit_s`` and ``query_s`` (per round),
        ``labels_to_full`` (mean labels to reach the full-data AUROC of the
        same seed, over the seeds that did), ``reached`` (how many seeds
        did), and for ``full_data`` the baseline's metrics.
    """
    import json

    from .report import summarize
    from .simulation import read_records

    rows = []
    for task, folder in (("binary", Path(binary_dir)), ("severity", Path(severity_dir))):
        meta = json.loads((folder / "config.json").read_text())
        resolved = meta["resolved"]
        schedule = resolved["schedule"]
        summary = summarize(read_records(folder), schedule, metric="auroc", targets=(1.0,))
        for s in summary:
            full = s["strategy"] == "full_data"
            rows.append(
                {
                    "task": task,
                    "strategy": s["strategy"],
                    "n_seeds": s["n_seeds"],
                    "n_pool": resolved["n_pool"],
                    "labeled_fraction": 1.0 if full else schedule[-1] / resolved["n_pool"],
                    "accuracy": s.get("final_accuracy_op_mean", s.get("final_accuracy_mean")),
                    "auroc": s.get("final_auroc_mean"),
                    "auprc": s.get("final_auprc_mean"),
                    "fit_s": s.get("fit_time_mean"),
                    "query_s": None if full else s.get("query_time_mean"),
                    "labels_to_full": None if full else s.get("labels_to_100_mean"),
                    "reached": None if full else s.get("labels_to_100_reached"),
                    "agreement": resolved.get("agreement"),
                }
            )
    return rows


def _markdown(rows, scale):
    lines = [
        "# Reference study, reproduced",
        "",
        f"Scale: `{scale}`. Final metrics at the last round (mean over seeds); accuracy "
        "at the operating point chosen on the validation split; times per round on this "
        "machine; labels to full data: labeled images (and % of the pool) at the first "
        "round whose test AUROC reached the full-data AUROC of the same seed.",
        "",
    ]
    for task, title in (
        ("binary", "Binary: normal vs pneumonia (PneumoniaMNIST)"),
        ("severity", "3-class severity (phantoms, rater consensus)"),
    ):
        pub = PUBLISHED[task]
        task_rows = [r for r in rows if r["task"] == task]
        if not task_rows:
            continue
        n_pool = task_rows[0]["n_pool"]
        lines += [
            f"## {title}",
            "",
            f"Published: {100 * pub['accuracy']:.1f} % accuracy, AUROC "
            f"{pub['auroc']:.2f} with {100 * pub['labels_fraction']:.1f} % of the "
            f"labels by {pub['strategy']}.",
            "",
        ]
        agreement = task_rows[0]["agreement"]
        if agreement:
            lines += [
                f"Raters: {agreement['n_raters']} per image, Fleiss' kappa "
                f"{agreement['fleiss_kappa']:.3f}.",
                "",
            ]
        lines += [
            "| strategy | seeds | % labeled | accuracy | AUROC | AUPRC | fit s/round | "
            "query s/round | labels to full-data AUROC |",
            "|---|" * 1 + "---|" * 8,
        ]
        for r in task_rows:
            if r["labels_to_full"] is None or math.isnan(r["labels_to_full"]):
                to_full = f"– (0/{r['n_seeds']})" if r["reached"] is not None else ""
            else:
                to_full = (
                    f"{r['labels_to_full']:.0f} ({100 * r['labels_to_full'] / n_pool:.1f} "
                    f"%, {r['reached']}/{r['n_seeds']} seeds)"
                )
            lines.append(
                f"| {r['strategy']} | {r['n_seeds']} | {100 * r['labeled_fraction']:.1f} | "
                f"{_f(r['accuracy'])} | {_f(r['auroc'])} | {_f(r['auprc'])} | "
                f"{_f(r['fit_s'], 2)} | {_f(r['query_s'], 2)} | {to_full} |"
            )
        lines.append("")
    return "\n".join(lines)
