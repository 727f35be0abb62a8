"""The pre-declared low-budget study (docs/benchmarks.rst, "Low-budget study").

Every arm starts from zero labels. Label-free arms (random, typicality and
schedules starting with it) pick the first 10 labels themselves; the
uncertainty arms (max entropy, mean STD, BALD, BADGE) start from 10
label-free random labels; ``stratified`` draws its first 10 by class (an
oracle, reference only). Each checkpoint retrains the simulation's default
estimator from scratch and records test AUROC, minority AUPRC, balanced
accuracy at the validation operating point, and ECE raw and after
:class:`~skal_cxr.calibration.PriorCorrection` fitted on the val split.

Usage::

    python benchmarks/bench_low_budget.py --arms primary --seeds 10 --out DIR
    python benchmarks/bench_low_budget.py --analyze DIR      # tables and tests only

``--arms primary`` is the primary comparison (default strategy and
label-free random); ``--arms all`` every declared arm, each also with the
self-supervised start (suffix ``+ssl``: a :class:`ContrastiveEncoder`
trained on the pool is typicality's view and the classifier's initial
trunk, ``MCDropoutCNN(encoder_weights=...)``). ``--data`` picks
``pneumoniamnist`` (as shipped), ``imbalanced`` (normal cut to 5 % of the
pool) or ``phantoms``. Records go to ``DIR/records.jsonl`` one checkpoint
per line; rerunning the command skips the (arm, seed) pairs already there,
and a folder holding another run's records (data set, checkpoints,
``--quick``; kept in ``DIR/run.json``) is refused. Without ``--out`` each
data set and ``--max-labels`` gets its own folder under
``benchmarks/results/``.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _low_budget import ALL_ARMS, PRIMARY, checkpoints, load_data, run_full, run_one  # noqa: E402
from _low_budget_analysis import analyze  # noqa: E402
from _records import append_records, check_run_config, load_records  # noqa: E402


def default_out(data, max_labels):
    """The records folder of a configuration when ``--out`` is not given."""
    name = f"low_budget_{data}" + (f"_to{max_labels}" if max_labels else "")
    return Path("benchmarks/results") / name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        help="records folder (default: benchmarks/results/low_budget_<data>[_to<max-labels>])",
    )
    parser.add_argument(
        "--data", default="pneumoniamnist", choices=["pneumoniamnist", "imbalanced", "phantoms"]
    )
    parser.add_argument(
        "--arms", default="primary", help="'primary', 'all' or comma-separated arm names"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument(
        "--max-labels",
        type=int,
        default=0,
        help="continue with queries of 50 up to this many labels",
    )
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny training (smoke test)")
    parser.add_argument("--analyze", metavar="DIR", help="only analyse the records in DIR")
    args = parser.parse_args(argv)
    if args.analyze:
        return analyze(args.analyze, args.budget)
    groups = {"primary": PRIMARY, "all": ALL_ARMS}
    arms = list(dict.fromkeys(a for name in args.arms.split(",") for a in groups.get(name, [name])))
    out = Path(args.out) if args.out else default_out(args.data, args.max_labels)
    out.mkdir(parents=True, exist_ok=True)
    points = checkpoints(args.budget, max_labels=args.max_labels)
    check_run_config(out, {"data": args.data, "checkpoints": points, "quick": args.quick})
    data = load_data(args.data)
    done = {(r["arm"], r["seed"]) for r in load_records(out)}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [("full", s) for s in seeds if ("full", s) not in done]
    jobs += [(a, s) for s in seeds for a in arms if (a, s) not in done]

    def work(job):
        arm, seed = job
        if arm == "full":
            return [run_full(seed, data, args.quick)]
        return run_one(arm, seed, data, points, args.quick)

    from joblib import Parallel, delayed

    with open(out / "records.jsonl", "a") as fh:
        for recs in Parallel(n_jobs=args.n_jobs, return_as="generator")(
            delayed(work)(job) for job in jobs
        ):
            append_records(
                fh,
                recs,
                f"{recs[0]['arm']} seed {recs[0]['seed']}: {recs[-1]['elapsed_s']:.1f} s, "
                f"AUROC {recs[-1]['auroc']:.3f}",
            )
    return analyze(out, args.budget)


if __name__ == "__main__":
    main()
