"""Class imbalance on PneumoniaMNIST: no weighting vs weighted loss vs random oversampling.

For each imbalance setting and seed, the same labeled training set (drawn
from the train split) trains three ``MCDropoutCNN`` that differ only in how
they treat the imbalance:

* ``none``: plain cross-entropy;
* ``weighted``: ``class_weight="balanced"``;
* ``oversample``: ``sampler="random_over"`` (imbalanced-learn's
  ``RandomOverSampler`` applied at the fit).

Settings: ``reference`` keeps the file's imbalance (normal : pneumonia about
1 : 2.9); ``hard`` subsamples the minority (normal) to about 10 % of the
training set. Metrics on the test split: balanced accuracy at the operating
point chosen on the val split, and macro AUROC. Paired tests over seeds
(Wilcoxon signed-rank and paired t) of each arm against ``none``.

    python benchmarks/bench_samplers.py                  # 5 seeds, 1000 training images
    python benchmarks/bench_samplers.py --seeds 8 --n-train 2000

Writes ``benchmarks/results/samplers.json``, ``samplers.md`` and
``samplers.png`` (or under ``--out``).
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from skal_cxr import MCDropoutCNN
from skal_cxr.datasets import load_pneumoniamnist
from skal_cxr.metrics import classification_metrics, fit_operating_point
from skal_cxr.report import format_value, paired_comparison

ARMS = {
    "none": {},
    "weighted": {"class_weight": "balanced"},
    "oversample": {"sampler": "random_over"},
}
SETTINGS = {"reference": None, "hard": 0.10}


def training_set(y, n_train, minority_share, seed):
    """Indices of a training set of ``n_train`` images; the minority at ``minority_share``."""
    rng = np.random.default_rng(seed)
    minority = int(np.argmin(np.bincount(y)))
    if minority_share is None:
        minority_share = np.mean(y == minority)
    n_min = int(round(minority_share * n_train))
    idx_min = rng.choice(np.flatnonzero(y == minority), n_min, replace=False)
    idx_maj = rng.choice(np.flatnonzero(y != minority), n_train - n_min, replace=False)
    return np.sort(np.concatenate([idx_min, idx_maj]))


def run(n_train, seeds, max_epochs, min_train_steps):
    X, y = load_pneumoniamnist("train")
    X_val, y_val = load_pneumoniamnist("val")
    X_test, y_test = load_pneumoniamnist("test")
    rows = []
    for setting, share in SETTINGS.items():
        for seed in seeds:
            idx = training_set(y, n_train, share, seed)
            for arm, params in ARMS.items():
                net = MCDropoutCNN(
                    max_epochs=max_epochs,
                    min_train_steps=min_train_steps,
                    random_state=seed,
                    device="cpu",
                    **params,
                )
                t0 = time.perf_counter()
                net.fit(X[idx], y[idx])
                fit_s = time.perf_counter() - t0
                op = fit_operating_point(y_val, net.predict_proba(X_val))
                m = classification_metrics(y_test, net.predict_proba(X_test), operating_point=op)
                rows.append(
                    {
                        "setting": setting,
                        "seed": seed,
                        "arm": arm,
                        "n_train": int(len(idx)),
                        "minority_share": float(np.mean(y[idx] == 0)),
                        "balanced_accuracy_op": m["balanced_accuracy_op"],
                        "auroc": m["auroc"],
                        "fit_s": fit_s,
                    }
                )
                print(
                    f"{setting:9s} seed {seed} {arm:10s} bal.acc(op) "
                    f"{m['balanced_accuracy_op']:.3f} AUROC {m['auroc']:.3f} ({fit_s:.1f} s)",
                    flush=True,
                )
    return rows


def summarise(rows, seeds):
    summary = []
    for setting in SETTINGS:
        for metric in ("balanced_accuracy_op", "auroc"):
            by_arm = {
                a: [
                    r[metric]
                    for s in seeds
                    for r in rows
                    if r["setting"] == setting and r["arm"] == a and r["seed"] == s
                ]
                for a in ARMS
            }
            for arm, values in by_arm.items():
                test = paired_comparison(values, by_arm["none"]) if arm != "none" else None
                summary.append(
                    {
                        "setting": setting,
                        "metric": metric,
                        "arm": arm,
                        "mean": float(np.mean(values)),
                        "sd": float(np.std(values, ddof=1)),
                        "diff_vs_none": None if test is None else test["mean_diff"],
                        "p_wilcoxon": None if test is None else test["p_wilcoxon"],
                        "p_ttest": None if test is None else test["p_ttest"],
                    }
                )
    return summary


def markdown(summary, meta):
    lines = [
        f"Samplers on PneumoniaMNIST: {meta['n_train']} training images, "
        f"{len(meta['seeds'])} seeds, {meta['max_epochs']} epochs (>= "
        f"{meta['min_train_steps']} steps); {meta['machine']}",
        "",
        "| setting | metric | arm | mean (SD) | diff vs none | p Wilcoxon | p t |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        diff = format_value(s["diff_vs_none"], spec="+.3f")
        lines.append(
            f"| {s['setting']} | {s['metric']} | {s['arm']} | {s['mean']:.3f} "
            f"({s['sd']:.3f}) | {diff} | {format_value(s['p_wilcoxon'], spec='.3g')} | "
            f"{format_value(s['p_ttest'], spec='.3g')} |"
        )
    return "\n".join(lines) + "\n"


def figure(rows, seeds, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, metric, label in zip(
        axes,
        ("balanced_accuracy_op", "auroc"),
        ("balanced accuracy (val. operating point)", "macro AUROC"),
    ):
        for k, setting in enumerate(SETTINGS):
            for j, arm in enumerate(ARMS):
                values = [r[metric] for r in rows if r["setting"] == setting and r["arm"] == arm]
                x = k * (len(ARMS) + 1) + j
                ax.scatter(
                    [x] * len(values), values, color=f"C{j}", s=14, label=arm if k == 0 else None
                )
                ax.plot([x - 0.3, x + 0.3], [np.mean(values)] * 2, color=f"C{j}")
        ax.set_xticks(
            [k * (len(ARMS) + 1) + 1 for k in range(len(SETTINGS))],
            [f"{s} imbalance" for s in SETTINGS],
        )
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Imbalance handling on PneumoniaMNIST ({len(seeds)} seeds; dots = seeds)")
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--min-train-steps", type=int, default=150)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    rows = run(args.n_train, seeds, args.max_epochs, args.min_train_steps)
    meta = {
        "n_train": args.n_train,
        "seeds": seeds,
        "max_epochs": args.max_epochs,
        "min_train_steps": args.min_train_steps,
        "wall_s": time.perf_counter() - t0,
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}",
    }
    summary = summarise(rows, seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "samplers.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1)
    )
    (out / "samplers.md").write_text(markdown(summary, meta))
    figure(rows, seeds, out / "samplers.png")
    print(markdown(summary, meta))


if __name__ == "__main__":
    main()
