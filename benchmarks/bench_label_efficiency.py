"""Label efficiency on real chest X-rays: PneumoniaMNIST, every strategy, 5 seeds.

Runs three simulations with :func:`skal_cxr.simulation.simulate` and writes
their reports plus a combined summary:

``main/``
    Every strategy except BatchBALD, class-weighted loss, whole pool scored.
``batch_bald/``
    BatchBALD, same protocol, scoring a random subset of ``--batch-bald-pool``
    unlabeled images per query (its greedy joint entropy costs
    ``pool x T x configurations`` per pick). Its summary pairs it with the
    random runs and baselines of ``main/`` (same seeds, same initial sets).
``unweighted/``
    Max entropy and its full-data baseline without class weights, for the
    weighted-loss comparison at the same budget.

Pool = the train split (4,708 images), validation = the val split (operating
points only), test = the test split. Every run and the full-data baseline
follow the same training rule: ``max(5, ceil(150 / batches per epoch))``
epochs per fit, cosine-annealed learning rate, retrained from scratch each
round.

Usage::

    python benchmarks/bench_label_efficiency.py [--out benchmarks/results/label_efficiency]
        [--seeds 5] [--n-jobs 2] [--quick | --tiny]

Rerunning the same command resumes an interrupted run.
"""

import argparse
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _simulation import REPO, TINY, pneumoniamnist, use_shared_data  # noqa: E402

from skal_cxr.report import format_value, summarize  # noqa: E402
from skal_cxr.simulation import read_records, simulate  # noqa: E402

STRATEGIES = [
    "random",
    "max_entropy",
    "margin",
    "mean_std",
    "variation_ratios",
    "bald",
    "power_bald",
    "coreset",
]


def protocol(args):
    """Simulation keyword arguments shared by the three runs."""
    return dict(
        data=pneumoniamnist(120 if args.tiny else 600 if args.quick else None),
        seeds=list(range(args.seeds)),
        n_initial=30,
        model="cnn",  # the MC Dropout CNN from pixels, as published
        query_size=50,
        budget=0.2,
        n_mc_samples=20,
        class_weight="balanced",
        n_jobs=args.n_jobs,
        progress=not args.quiet,
    )


def run(args):
    use_shared_data()
    out = Path(args.out)
    common = protocol(args)
    runs = {
        "main": dict(strategies=STRATEGIES),
        "batch_bald": dict(
            strategies=["batch_bald"], pool_size=args.batch_bald_pool, baseline=False
        ),
        "unweighted": dict(strategies=["max_entropy"], class_weight=None),
    }
    if args.quick:
        common.update(budget=130, query_size=50, seeds=[0, 1])
        runs["batch_bald"]["pool_size"] = 100
    if args.tiny:  # the smoke test: every code path, seconds not minutes
        common.update(TINY, seeds=[0])
        runs["batch_bald"]["pool_size"] = 40
    summaries = {}
    for name, extra in runs.items():
        params = {**common, **extra}
        resolved = simulate(out / name, **params).resolved
        records = read_records(out / name)
        order = params["strategies"]
        if name == "batch_bald":  # paired with main's random runs and baselines
            records += [
                r
                for r in read_records(out / "main")
                if r.get("strategy") in ("random", "full_data", "baseline")
            ]
            order = ["random", *order]
        for metric in ("auroc", "balanced_accuracy_op"):
            summaries[(name, metric)] = summarize(
                records,
                resolved["schedule"],
                metric=metric,
                strategy_order=order,
            )
    return summaries, resolved["n_pool"]


#: a table cell (decimals as the second argument), "-" when missing
_fmt = partial(format_value, missing="-")


def write_tables(summaries, out, n_pool):
    """``label_efficiency.md``: one table per run and metric, from the summaries."""
    lines = [
        "# Label efficiency on PneumoniaMNIST",
        "",
        f"Pool: {n_pool} images. Mean (std) over seeds; labels needed = the mean over",
        "the seeds that reached the target (k/n reached); p = paired tests of the",
        "per-seed AULC against random (two-sided Wilcoxon signed-rank, paired t).",
        "",
    ]
    for (name, metric), rows in summaries.items():
        lines += [
            f"## {name}: {metric}",
            "",
            "| strategy | AULC | labels to 95% | labels to 100% | % pool at 100% "
            f"| final {metric} | fit s/round | query s/round | p Wilcoxon | p t |",
            "|---" * 10 + "|",
        ]
        for r in rows:
            if r["strategy"] == "full_data":
                lines.append(
                    f"| full data (baseline) | - | - | - | 100 | "
                    f"{_fmt(r.get(f'final_{metric}_mean'))} "
                    f"({_fmt(r.get(f'final_{metric}_std'))}) | "
                    f"{_fmt(r.get('fit_time_mean'), 1)} | - | - | - |"
                )
                continue
            n = r["n_seeds"]
            to100 = r.get("labels_to_100_mean")
            share = _fmt(100 * to100 / n_pool, 1) if to100 == to100 and to100 else "-"
            lines.append(
                f"| {r['strategy']} | {_fmt(r['aulc_mean'])} ({_fmt(r['aulc_std'])}) "
                f"| {_fmt(r.get('labels_to_95_mean'), 0)} ({r.get('labels_to_95_reached')}/{n}) "
                f"| {_fmt(to100, 0)} ({r.get('labels_to_100_reached')}/{n}) | {share} "
                f"| {_fmt(r.get(f'final_{metric}_mean'))} ({_fmt(r.get(f'final_{metric}_std'))}) "
                f"| {_fmt(r.get('fit_time_mean'), 2)} | {_fmt(r.get('query_time_mean'), 2)} "
                f"| {_fmt(r.get('p_wilcoxon'))} | {_fmt(r.get('p_ttest'))} |"
            )
        lines.append("")
    path = Path(out) / "label_efficiency.md"
    path.write_text("\n".join(lines))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "label_efficiency"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--batch-bald-pool", type=int, default=1000)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="600-image pool, 2 seeds, 2 rounds: checks the pipeline only",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="120-image pool, 1 seed, a tiny network: the CI smoke test",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    summaries, n_pool = run(args)
    path = write_tables(summaries, args.out, n_pool)
    print(path.read_text())


if __name__ == "__main__":
    main()
