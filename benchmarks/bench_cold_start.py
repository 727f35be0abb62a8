"""The labeling cold start, pre-declared (docs/benchmarks.rst, "Labeling cold start").

A labeling project's first batch is chosen before any label exists
(``init_project(cold_start=...)``). This benchmark draws that batch with
each cold start exactly as a project does
(:func:`skal_cxr.engine.cold_start_batch`, the project's PCA-50 view for
typicality and ProbCover), has it labeled by the ground truth, trains the
low-budget study's estimator on it and measures the model on the test
split: random, k-center on the untrained network, typicality and ProbCover,
for first batches of 10, 20 and 40 images, 10 paired seeds.

Usage::

    python benchmarks/bench_cold_start.py --out DIR [--data imbalanced]
    python benchmarks/bench_cold_start.py --analyze DIR

Records go to ``DIR/records.jsonl``, one per (method, size, seed); a rerun
skips those already there, and refuses a folder of another data set.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _low_budget import evaluate, load_data, make_estimator  # noqa: E402
from _records import append_records, check_run_config, load_records  # noqa: E402

from skal_cxr.report import paired_by_seed, with_holm  # noqa: E402

METHODS = ["random", "k_center", "typicality", "probcover"]
SIZES = [10, 20, 40]
PRIMARY_SIZE = 20  # a labeling project's default first batch (query_size)
PRIMARY = [("typicality", "random"), ("typicality", "k_center")]


def first_batch(method, data, n, seed, features):
    """The cold start's first ``n`` images of the pool, as a labeling project picks them."""
    from skal_cxr.engine import RoundConfig, cold_start_batch

    batch, _ = cold_start_batch(
        method,
        len(data.y_pool),
        n,
        0,
        config=RoundConfig.from_params(seed=seed),
        n_classes=int(data.y_pool.max()) + 1,
        X=data.X_pool if method == "k_center" else None,
        features=features if method in ("typicality", "probcover") else None,
    )
    return np.asarray(batch)


def pca_view(data, seed):
    """The labeling project's label-free view of the pool (``_loop.pool_embedding``)."""
    from skal_cxr.embeddings import PixelPCA

    model = PixelPCA(n_components=50, random_state=seed).fit(data.X_pool)
    return np.asarray(model.transform(data.X_pool), dtype=np.float32)


def run_one(method, n, seed, data, features, quick=False):
    start, cpu = time.perf_counter(), time.process_time()
    batch = first_batch(method, data, n, seed, features)
    n_classes = int(data.y_pool.max()) + 1
    model = make_estimator(seed, n_classes, quick).fit(data.X_pool[batch], data.y_pool[batch])
    return {
        "method": method,
        "n_labeled": int(n),
        "seed": seed,
        "data": data.name,
        "class_counts": np.bincount(data.y_pool[batch], minlength=n_classes).tolist(),
        "minority": data.minority,
        **evaluate(model, data),
        "elapsed_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
    }


def by_seed(records, method, n, key="auroc"):
    return {r["seed"]: r[key] for r in records if r["method"] == method and r["n_labeled"] == n}


def compare(records, a, b, n, key="auroc"):
    """Paired tests of ``a`` against ``b`` on ``key`` at ``n`` labels (common seeds)."""
    return paired_by_seed(by_seed(records, a, n, key), by_seed(records, b, n, key))


def analyze(out):
    records = load_records(out)
    lines = []
    for n in SIZES:
        for method in METHODS:
            rows = [r for r in records if r["method"] == method and r["n_labeled"] == n]
            if not rows:
                continue
            auroc = [r["auroc"] for r in rows]
            minority = [r["class_counts"][r["minority"]] for r in rows]
            lines.append(
                f"n={n:3d} {method:11s} [{len(rows)} seeds] AUROC {np.mean(auroc):.3f} "
                f"({np.std(auroc, ddof=1) if len(rows) > 1 else 0:.3f}) min "
                f"{np.min(auroc):.3f} | minority AUPRC "
                f"{np.mean([r['auprc_minority'] for r in rows]):.3f} | balanced acc "
                f"{np.mean([r['balanced_accuracy_op'] for r in rows]):.3f} | minority class "
                f"in batch {np.mean(minority):.1f} (fewest {np.min(minority)})"
            )
    print("\n".join(lines))
    primary = with_holm({f"{a} vs {b}": compare(records, a, b, PRIMARY_SIZE) for a, b in PRIMARY})
    secondary = with_holm(
        {
            f"{a} vs {b} at {n} ({key})": compare(records, a, b, n, key)
            for key in ("auroc", "auprc_minority")
            for n in SIZES
            for a in ("typicality", "probcover")
            for b in ("random", "k_center")
            if not (key == "auroc" and n == PRIMARY_SIZE and a == "typicality")
        }
    )
    result = {"primary": primary, "secondary": secondary}
    print(json.dumps(result, indent=1))
    (Path(out) / "analysis.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", help="records folder (default: benchmarks/results/cold_start_<data>)"
    )
    parser.add_argument(
        "--data", default="pneumoniamnist", choices=["pneumoniamnist", "imbalanced"]
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="tiny training (smoke test)")
    parser.add_argument("--analyze", metavar="DIR", help="only analyse the records in DIR")
    args = parser.parse_args(argv)
    if args.analyze:
        return analyze(args.analyze)
    out = Path(args.out or f"benchmarks/results/cold_start_{args.data}")
    out.mkdir(parents=True, exist_ok=True)
    check_run_config(out, {"data": args.data, "quick": args.quick})  # a rerun skips records
    data = load_data(args.data)
    done = {(r["method"], r["n_labeled"], r["seed"]) for r in load_records(out)}
    with open(out / "records.jsonl", "a") as fh:
        for seed in range(args.seeds):
            features = pca_view(data, seed)
            for n in SIZES:
                for method in METHODS:
                    if (method, n, seed) in done:
                        continue
                    r = run_one(method, n, seed, data, features, args.quick)
                    append_records(
                        fh,
                        [r],
                        f"{method} n={n} seed {seed}: AUROC {r['auroc']:.3f} "
                        f"{r['class_counts']} ({r['elapsed_s']:.1f} s)",
                    )
    return analyze(out)


if __name__ == "__main__":
    main()
