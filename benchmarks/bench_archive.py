"""Archive scale: an on-disk image cache, MC scoring from it, and memory vs pool size.

Writes ``--n`` synthetic CXR-like PNG files (phantoms, ``--png-size`` px) to
``--work`` (outside the repository), then measures:

1. cache build throughput (:func:`skal_cxr.datasets.build_image_cache`,
   decode + resize to 64 px) on the first ``--build-n`` files with 1 and
   2 worker threads (the default) and with 2 worker processes, and the
   build of the whole folder;
2. MC scoring throughput (BALD, T samples, default CNN at 64 px) of the same
   ``--score-n`` images read from the cache (memory map) and from RAM
   (float32 array), alternated, best of ``--repeats``;
3. the same from a 224 px cache of ``--n-224`` files with a ResNet-18 trunk;
4. peak RSS of a fresh process scoring the first 10k / 50k / 100k images of
   the cache (``--rss-sizes``);
5. a 1M-image pool costed from the measured per-image costs;
6. the command line end to end on the written folder (off with ``--no-cli``):
   ``skal-cxr simulate --csv --image-dir --cache-dir`` (one strategy, one
   seed, two queries, no baseline), ``skal-cxr label init`` and one training
   and query round of the labeling loop, each in a fresh process whose peak
   RSS (``ru_maxrss`` from ``wait4``) and wall time are recorded.

Results go to ``--out`` as ``archive_scale.md`` and ``archive_scale.json``.
``--tiny`` runs everything at toy size in seconds (the CI smoke test).
"""

import argparse
import os
import platform
from pathlib import Path

import _common as C
from _archive import bench_build, bench_rss, bench_scoring, cost_1m, rss_worker, train, write_pngs
from _archive_cli import bench_cli, label_round_worker
from _archive_tables import write_report
from _timing import timed

from skal_cxr.datasets import build_image_cache

SCRIPT = Path(__file__).resolve()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="PNG files to write")
    p.add_argument("--png-size", type=int, default=256)
    p.add_argument(
        "--build-n",
        type=int,
        default=4000,
        help="files for the 1-vs-2-worker cache build comparison",
    )
    p.add_argument(
        "--score-n", type=int, default=10_000, help="images scored from the cache and from RAM"
    )
    p.add_argument("--n-224", type=int, default=500, help="files cached at 224 px (ResNet-18)")
    p.add_argument("--rss-sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    p.add_argument("--T", type=int, default=20, help="Monte Carlo samples")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=C.available_threads())
    p.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/skal_cxr_archive"),
        help="folder for the PNG files and caches (not the repository)",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--tiny", action="store_true", help="toy sizes (smoke test)")
    p.add_argument(
        "--no-cli",
        dest="cli",
        action="store_false",
        help="skip the command-line stage (simulate, label init, a labeling round)",
    )
    p.add_argument(
        "--cli-pool-size",
        type=int,
        default=10_000,
        help="simulate --pool-size of the command-line stage",
    )
    p.add_argument("--_rss_worker", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--_label_round", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tiny:
        args.n, args.png_size, args.build_n, args.score_n = 120, 64, 60, 100
        args.n_224, args.rss_sizes, args.T, args.repeats = 8, [50, 100], 4, 1
        args.cli_pool_size = 20
    args.rss_sizes = [s for s in args.rss_sizes if s <= args.n]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args._rss_worker:
        return rss_worker(*args._rss_worker)
    if args._label_round:
        return label_round_worker(*args._label_round)
    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    t_write, (paths, labels) = timed(
        lambda: write_pngs(args.work / f"png{args.png_size}", args.n, args.png_size, n_jobs=2)
    )
    build, cache = bench_build(paths, args)
    net = train(cache)
    net.set_params(batch_size=args.batch_size)
    scoring = [bench_scoring(net, cache.images, args.score_n, args, "CXRNet (small), 64 px")]
    cache224 = build_image_cache(paths[: args.n_224], args.work / "cache-224", 224, n_jobs=2)
    resnet = train(cache224, backbone="resnet18", n_train=min(64, args.n_224))
    resnet.set_params(batch_size=32)
    scoring.append(bench_scoring(resnet, cache224.images, args.n_224, args, "ResNet-18, 224 px"))
    rss = bench_rss(net, cache, args, SCRIPT)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} torch "
        f"thread(s), {os.cpu_count()} CPU(s) visible",
        "args": {k: str(v) for k, v in vars(args).items()},
        "n_images": len(paths),
        "write_pngs_s": t_write,
        "build": build,
        "scoring": scoring,
        "rss": rss,
        "cli": bench_cli(paths, labels, cache, args, SCRIPT) if args.cli else None,
    }
    result["cost_1m"] = cost_1m(build, scoring, args)
    print(write_report(result, args.out))
    return result


if __name__ == "__main__":
    main()
