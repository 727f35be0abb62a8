"""Label efficiency of scoring a random subset of the pool per round, on PneumoniaMNIST.

A labeling project can score a random subset of the unlabeled pool each
round instead of all of it (``score_subset``, the simulator's
``pool_size``), as BatchBALD practice does; scoring then costs the same
whatever the pool size. This benchmark measures what that costs in labels:
paired simulations (same seeds, so the same initial labels, network
initialisations and dropout masks) with the whole pool scored and with
random subsets of each size in ``--subsets``, under the labeling project's
defaults (``mean_std``, no class weights, a random cold start, 20 MC
Dropout samples).

Pool = PneumoniaMNIST's train split (4,708 images), test = its test split.
Per seed: the area under the test-AUROC learning curve (AULC) and the final
AUROC; per subset size, their paired differences against the whole pool
(two-sided Wilcoxon signed-rank and paired t tests over seeds).

Usage (from the repository root; rerunning resumes)::

    python benchmarks/bench_score_subset.py [--seeds 3] [--subsets 2000,1000]
        [--n-jobs 1] [--out benchmarks/results/score_subset] [--tiny]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _simulation import REPO, TINY, pneumoniamnist, use_shared_data  # noqa: E402

from skal_cxr.report import (  # noqa: E402
    area_under_learning_curve,
    format_value,
    learning_curves,
    paired_comparison,
)
from skal_cxr.simulation import read_records, simulate  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--subsets",
        default="2000,1000",
        help="comma-separated subset sizes, each compared with the whole pool",
    )
    p.add_argument("--strategy", default="mean_std")
    p.add_argument("--n-initial", type=int, default=30)
    p.add_argument("--query-size", type=int, default=50)
    p.add_argument("--budget", type=int, default=330)
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "score_subset")
    p.add_argument(
        "--tiny",
        action="store_true",
        help="a 300-image pool, 2 seeds and a tiny network: the smoke test",
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    args.subsets = [int(s) for s in args.subsets.split(",") if s.strip()]
    return args


def protocol(args):
    """Simulation keyword arguments shared by every arm."""
    common = dict(
        data=pneumoniamnist(300 if args.tiny else None),
        strategies=[args.strategy],
        seeds=list(range(args.seeds)),
        n_initial=args.n_initial,
        initial="random",
        model="cnn",  # the MC Dropout CNN's scoring is what is measured
        query_size=args.query_size,
        budget=args.budget,
        n_mc_samples=20,
        class_weight=None,
        baseline=False,
        n_jobs=args.n_jobs,
        progress=not args.quiet,
        report=False,
    )
    if args.tiny:
        common.update(TINY, seeds=[0, 1])
    return common


def per_seed(records, schedule):
    """``{seed: (aulc, final_auroc, mean query seconds)}`` of the complete runs."""
    curves, _, _ = learning_curves(records, schedule)
    out = {}
    for runs in curves.values():
        for seed, recs in runs.items():
            x = [r["n_labeled"] for r in recs]
            y = [r["metrics"]["auroc"] for r in recs]
            queries = [r["query_time"] for r in recs if r["queried"]]
            out[seed] = (area_under_learning_curve(x, y), y[-1], float(np.mean(queries)))
    return out


def run(args):
    use_shared_data()
    common = protocol(args)
    arms = {"whole pool": None, **{f"subset of {s:,}": s for s in args.subsets}}
    results, n_pool = {}, None
    for name, size in arms.items():
        folder = args.out / ("whole" if size is None else f"subset-{size}")
        resolved = simulate(folder, pool_size=size, **common).resolved
        n_pool = resolved["n_pool"]
        results[name] = per_seed(read_records(folder), resolved["schedule"])
    return results, n_pool, common


def markdown(results, n_pool, common):
    """A table of mean AULC, final AUROC and query time per arm, paired with the whole pool."""
    whole = results["whole pool"]
    seeds = sorted(whole)
    lines = [
        f"PneumoniaMNIST, pool {n_pool:,} images, {common['strategies'][0]}, "
        f"{common['n_initial']} random initial labels + {common['query_size']} per round to "
        f"{common['budget']}, {len(seeds)} seeds (paired). Mean (min, max) over seeds; "
        "differences are paired with the whole pool.",
        "",
        "| pool scored | AULC (test AUROC) | final AUROC | AULC diff | final diff "
        "| p Wilcoxon | p t | query s/round |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def spread(values):
        return f"{np.mean(values):.4f} ({np.min(values):.4f}, {np.max(values):.4f})"

    for name, by_seed in results.items():
        common_seeds = [s for s in seeds if s in by_seed]
        aulc = [by_seed[s][0] for s in common_seeds]
        final = [by_seed[s][1] for s in common_seeds]
        query = np.mean([by_seed[s][2] for s in common_seeds])
        if name == "whole pool":
            lines.append(
                f"| {name} | {spread(aulc)} | {spread(final)} | - | - | - | - | {query:.2f} |"
            )
            continue
        test = paired_comparison(aulc, [whole[s][0] for s in common_seeds])
        diff_final = np.mean(final) - np.mean([whole[s][1] for s in common_seeds])
        lines.append(
            f"| {name} | {spread(aulc)} | {spread(final)} | {test['mean_diff']:+.4f} "
            f"| {diff_final:+.4f} | {format_value(test['p_wilcoxon'], spec='.3f')} "
            f"| {format_value(test['p_ttest'], spec='.3f')} "
            f"| {query:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    results, n_pool, common = run(args)
    text = markdown(results, n_pool, common)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "score_subset.md").write_text(text)
    (args.out / "score_subset.json").write_text(
        json.dumps(
            {name: {str(s): v for s, v in r.items()} for name, r in results.items()}, indent=1
        )
    )
    print(text)
    return results


if __name__ == "__main__":
    main()
