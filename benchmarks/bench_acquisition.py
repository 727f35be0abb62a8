"""Acquisition speed and scale: skal_cxr's MC Dropout scoring against its peers.

The same trained :class:`~skal_cxr.MCDropoutCNN` scores the same pool with
BALD and with mean STD from ``T`` Monte Carlo samples, by

* ``ours``: ``predict_proba_samples`` (trunk once, dropout head sampled in
  one vectorised call) + ``skal_cxr.strategies.bald_scores`` /
  ``mean_std_scores``; ``ours_chunked``: the same over chunks of the pool;
* ``naive``: ``T`` full forward passes with dropout on;
* ``modal``: ``modAL.dropout.mc_dropout_bald`` / ``mc_dropout_mean_st``;
* ``baal``: baal's ``MCDropoutModule`` + ``ModelWrapper.predict_on_dataset``
  + its ``BALD`` heuristic, and ``baal_cache`` with ``MCCachingModule``;
* ``floor``: one deterministic pass (no scorer looks at every image in less).

Each (image size, pool size, method, score) is timed in a fresh Python
process (best of ``--repeats`` after a warm-up) that also reports its peak
memory; see ``benchmarks/README.md``. Then BatchBALD and PowerBALD are timed
at acquisition sizes 10 and 50, and the growth of time and memory with the
pool size is fitted and extrapolated.

Usage::

    python benchmarks/bench_acquisition.py [--sizes 1000 5000 20000]
        [--image-sizes 28 64] [--T 20] [--repeats 3] [--out benchmarks/results]
    python benchmarks/bench_acquisition.py --tiny     # seconds; the smoke test
"""

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
from _acquisition import run_grid, worker  # noqa: E402
from _acquisition_stats import add_ratios, check_targets, scale_analysis  # noqa: E402
from _acquisition_tables import render_markdown  # noqa: E402
from _peers import METHODS, select_methods  # noqa: E402

from skal_cxr import __version__ as SKAL_VERSION  # noqa: E402

TINY = dict(
    sizes=[64],
    image_sizes=[16],
    T=4,
    agreement_T=4,
    agreement_n=64,
    repeats=1,
    batch_size=64,
    chunk_size=40,
    acq_sizes=[2, 5],
    n_train=64,
    subprocess=False,
    extrapolate=1000,
    scale_n=160,
    threads=1,
    collect=False,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--sizes", type=int, nargs="+", default=[1000, 5000, 20000], help="pool sizes (images)"
    )
    p.add_argument(
        "--image-sizes", type=int, nargs="+", default=[28, 64], help="image side lengths in pixels"
    )
    p.add_argument("--T", type=int, default=20, help="Monte Carlo samples")
    p.add_argument(
        "--repeats", type=int, default=3, help="timed calls per measurement (best is reported)"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="stop repeating a measurement once its calls took this many "
        "seconds (at least one call is always made)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="prediction batch size, the same for every method",
    )
    p.add_argument("--chunk-size", type=int, default=4096, help="images per chunk of ours_chunked")
    p.add_argument(
        "--acq-sizes",
        type=int,
        nargs="+",
        default=[10, 50],
        help="acquisition sizes of BatchBALD and PowerBALD",
    )
    p.add_argument(
        "--batch-max-pool",
        type=int,
        default=5000,
        help="time BatchBALD / PowerBALD on the pool sizes up to this",
    )
    p.add_argument(
        "--max-configurations",
        type=int,
        default=10_000,
        help="BatchBALD's cap on joint label configurations",
    )
    p.add_argument(
        "--agreement-T",
        type=int,
        default=100,
        help="MC samples of the agreement check (more samples, less noise)",
    )
    p.add_argument(
        "--agreement-n", type=int, default=500, help="pool images of the agreement check"
    )
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument(
        "--peer-max-pool",
        type=int,
        default=None,
        help="time the peers (naive, modAL, baal) only on pools up to this many "
        "images; ours and the floor run on every size (default: all)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=C.available_threads(),
        help="torch CPU threads (default: every core available)",
    )
    p.add_argument("--n-train", type=int, default=500, help="training images (1 epoch)")
    p.add_argument(
        "--extrapolate",
        type=int,
        default=200_000,
        help="pool size to extrapolate time and memory to",
    )
    p.add_argument(
        "--scale-n",
        type=int,
        default=200_000,
        help="also measure ours and ours_chunked (BALD) on a pool this large, "
        "at the first image size (0: skip)",
    )
    p.add_argument(
        "--no-subprocess",
        dest="subprocess",
        action="store_false",
        help="time in this process; peak memory is then not reported",
    )
    p.add_argument(
        "--malloc-mmap-threshold",
        type=int,
        default=0,
        help="set glibc's MALLOC_MMAP_THRESHOLD_ (bytes) in the measuring "
        "processes, so that freed large blocks go back to the system and "
        "peaks show live data rather than heap retention (0: glibc default)",
    )
    p.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds allowed to one measuring subprocess"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results"),
        help="folder of acquisition_speed.md and .json",
    )
    p.add_argument(
        "--tiny", action="store_true", help="pool 64, 16 px, T=4, 1 repeat, in-process: a smoke run"
    )
    p.add_argument("--_worker", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(collect=True)  # gc.collect() before every timed call
    args = p.parse_args(argv)
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
    return args


def run_meta(args, skipped):
    """The run's settings and machine, as the report and the JSON give them."""
    return dict(
        date=time.strftime("%Y-%m-%d %H:%M"),
        command=" ".join(["python"] + sys.argv),
        skal_cxr=SKAL_VERSION,
        torch=torch.__version__,
        python=platform.python_version(),
        machine=f"{platform.machine()} {platform.processor() or platform.system()}",
        threads=args.threads,
        T=args.T,
        batch_size=args.batch_size,
        repeats=args.repeats,
        chunk_size=args.chunk_size,
        max_configurations=args.max_configurations,
        sizes=sorted(set(args.sizes)),
        image_sizes=args.image_sizes,
        skipped=skipped,
        memory_method=(
            "peak RSS (VmHWM, reset first) of a fresh process per measurement "
            "minus its RSS with model, pool and inputs loaded"
            + (
                f", MALLOC_MMAP_THRESHOLD_={args.malloc_mmap_threshold}"
                if args.malloc_mmap_threshold
                else ", glibc's default allocator"
            )
            if args.subprocess
            else "not measured (in-process run)"
        ),
    )


def run(args):
    """Measure everything, write ``acquisition_speed.md`` and ``.json``, print the tables."""
    torch.set_num_threads(args.threads)
    methods, skipped = select_methods(args.methods)
    grid = run_grid(args, methods, Path(__file__).resolve())
    records = grid["records"]
    add_ratios(records)
    targets = check_targets(records)
    scale = scale_analysis(records + grid["scale_records"], args, grid["n_classes"])
    meta = run_meta(args, skipped)
    result = dict(
        meta=meta,
        results=records,
        scale_results=grid["scale_records"],
        targets=targets,
        agreement=grid["agreement"],
        batch_acquisition=grid["batch_rows"],
        scale=scale,
    )
    text = render_markdown(meta, records, targets, grid["agreement"], grid["batch_rows"], scale)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "acquisition_speed.md").write_text(text)
    (args.out / "acquisition_speed.json").write_text(json.dumps(result, indent=2))
    print(text)
    return result


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module="baal")
    if args._worker is not None:
        torch.set_num_threads(1)  # replaced by the spec's value
        worker(args._worker)
        return None
    return run(args)


if __name__ == "__main__":
    main()
