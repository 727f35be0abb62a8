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
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import _common as C
import numpy as np
from joblib import Parallel, delayed

from skal_cxr import MCDropoutCNN
from skal_cxr.datasets import ImageRows, build_image_cache
from skal_cxr.strategies import bald_scores


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


# -- data ------------------------------------------------------------------------
def _write_chunk(folder, start, images):
    from PIL import Image

    for i, image in enumerate(images):
        path = folder / f"cxr{start + i:07d}.png"
        if not path.exists():  # written whole or not at all: a rerun completes the folder
            tmp = path.with_suffix(".tmp")
            Image.fromarray(image).save(tmp, format="PNG", compress_level=1)
            os.replace(tmp, path)


def write_pngs(folder, n, size, n_jobs):
    """``n`` phantom PNGs (uint8, ``size`` px): 1000 phantoms with fresh noise per copy.

    Returns the paths and the phantoms' class codes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    X, y = C.make_pool(min(n, 1000), size)
    base = np.clip(X * 255, 0, 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    step = 1000

    def chunks():
        for start in range(0, n, step):
            k = min(step, n - start)
            noise = rng.integers(-3, 4, (k, size, size))
            images = np.clip(base[np.arange(start, start + k) % len(base)] + noise, 0, 255)
            yield delayed(_write_chunk)(folder, start, images.astype(np.uint8))

    Parallel(n_jobs=n_jobs)(chunks())
    return [folder / f"cxr{i:07d}.png" for i in range(n)], y[np.arange(n) % len(y)]


def timed(func):
    t0 = time.perf_counter()
    out = func()
    return time.perf_counter() - t0, out


# -- measurements -------------------------------------------------------------------
def bench_build(paths, args):
    from contextlib import nullcontext

    from joblib import parallel_config

    rows = []
    for n_jobs, backend in ((1, None), (2, None), (2, "loky")):
        folder = args.work / f"cache-build-{n_jobs}"
        _remove(folder)
        with parallel_config(backend=backend) if backend else nullcontext():
            seconds, _ = timed(
                lambda folder=folder, n_jobs=n_jobs: build_image_cache(
                    paths[: args.build_n], folder, 64, n_jobs=n_jobs
                )
            )
        kind = "processes (loky)" if backend else "thread(s)"
        rows.append(
            {
                "what": f"{args.build_n} files, {n_jobs} {kind}",
                "n_jobs": n_jobs,
                "n": args.build_n,
                "seconds": seconds,
                "images_per_s": args.build_n / seconds,
            }
        )
        _remove(folder)
    _remove(args.work / "cache-64")  # a rerun measures a build, not a no-op
    seconds, cache = timed(
        lambda: build_image_cache(
            paths, args.work / "cache-64", 64, n_jobs=2, verbose=not args.tiny
        )
    )
    rows.append(
        {
            "what": f"all {len(paths)} files, 2 threads",
            "n_jobs": 2,
            "n": len(paths),
            "seconds": seconds,
            "images_per_s": len(paths) / seconds,
        }
    )
    seconds, _ = timed(lambda: build_image_cache(paths, args.work / "cache-64", 64, n_jobs=2))
    rows.append(
        {
            "what": "again, nothing changed",
            "n_jobs": 2,
            "n": len(paths),
            "seconds": seconds,
            "images_per_s": len(paths) / seconds,
        }
    )
    return rows, cache


def _remove(folder):
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def train(cache, backbone="small", n_train=400):
    X = np.asarray(cache.images[:n_train])
    y = np.arange(len(X)) % 2  # only the speed is measured
    net = MCDropoutCNN(
        max_epochs=1,
        min_train_steps=5,
        batch_size=64,
        device="cpu",
        random_state=0,
        module__backbone=backbone,
    )
    net.fit(X, y)
    return net


def score(net, X, T):
    return net.reduce_proba_samples(X, [bald_scores], n_mc_samples=T)[0]


def bench_scoring(net, images, n, args, label):
    """Throughput of the same images from the memory map and from RAM, alternated."""
    n = min(n, len(images))
    from_cache = ImageRows(images, np.arange(n))
    in_ram = np.asarray(images[:n], dtype=np.float32) / np.float32(255)
    score(net, in_ram[: args.batch_size], args.T)  # warm-up
    best = {"cache": np.inf, "ram": np.inf}
    for _ in range(args.repeats):
        for key, X in (("cache", from_cache), ("ram", in_ram)):
            seconds, _ = timed(lambda: score(net, X, args.T))  # noqa: B023 (called here)
            best[key] = min(best[key], seconds)
    return {
        "what": label,
        "n": n,
        "T": args.T,
        "cache_images_per_s": n / best["cache"],
        "ram_images_per_s": n / best["ram"],
        "cache_over_ram": best["ram"] / best["cache"],
    }


def rss_worker(model_path, cache_dir, n, T):
    import pickle

    import torch

    from skal_cxr.datasets import ImageCache

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    with open(model_path, "rb") as f:
        net = pickle.load(f)
    images = ImageCache(cache_dir).images
    score(net, ImageRows(images, np.arange(min(256, len(images)))), int(T))  # warm-up
    base = C.current_rss()
    seconds, _ = timed(lambda: score(net, ImageRows(images, np.arange(int(n))), int(T)))
    print(
        json.dumps({"n": int(n), "peak_rss": C.peak_rss(), "rss_before": base, "seconds": seconds})
    )


def bench_rss(net, cache, args):
    import pickle

    model_path = args.work / "model.pkl"
    with open(model_path, "wb") as f:
        pickle.dump(net, f)
    rows = []
    env = {**os.environ, "BENCH_THREADS": str(args.threads)}
    for n in args.rss_sizes:
        cmd = [
            sys.executable,
            __file__,
            "--_rss_worker",
            str(model_path),
            str(cache.cache_dir),
            str(n),
            str(args.T),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


# -- the command line end to end ------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


# A bare launcher between this process and the measured one: a child's ru_maxrss
# starts from the RSS of the process that forked it (Linux keeps the high-water mark
# across exec), which is large here and small in a bare interpreter.
_LAUNCHER = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(cmd, log):
    """Run ``cmd`` in a fresh process: wall seconds and its peak RSS (bytes)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        ),
    }
    peak = Path(f"{log}.peak_rss")
    with open(log, "w") as out:
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, peak, *map(str, cmd)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        seconds = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd[2:5]))} failed ({done.returncode}); see {log}")
    return {"seconds": seconds, "peak_rss": int(peak.read_text())}


def label_round_worker(project_dir, csv_path, simulation):
    """A rater labels the cold-start batch (truth from the CSV), then one round is trained.

    ``simulation``: JSON of settings (``n_mc_samples``, ``training``) that
    ``skal-cxr label init`` does not take, set on the project here.
    """
    import csv

    from skal_cxr.labeling import open_project

    with open(csv_path, newline="") as f:
        truth = {row["filename"]: row["label"] for row in csv.DictReader(f)}
    from skal_cxr.labeling._settings import round_config

    project = open_project(project_dir)
    engine = project.config["engine"]  # the round engine's settings, for this process only
    for key, value in json.loads(simulation).items():
        engine[key] = {**engine[key], **value} if isinstance(value, dict) else value
    project.round_config = round_config(project.config)
    project.add_rater("oracle")
    relpath = {i: rel for i, rel, _, _ in project.image_table()}
    while (nxt := project.next_image("oracle"))["image_id"] is not None:
        project.submit_label("oracle", nxt["image_id"], truth[relpath[nxt["image_id"]]])
    seconds, r = timed(project.train_round)
    rnd = project.rounds()[r]
    print(
        json.dumps(
            {
                "round": r,
                "n_labeled": rnd["n_labeled"],
                "n_queried": rnd["n_queried"],
                "fit_time": rnd["fit_time"],
                "query_time": rnd["query_time"],
                "train_round_s": seconds,
            }
        )
    )


def bench_cli(paths, labels, cache, args):
    """``skal-cxr simulate``, ``label init`` and a labeling round on the whole folder."""
    import csv
    import shutil

    from skal_cxr.datasets import PHANTOM_CLASS_NAMES

    classes = list(PHANTOM_CLASS_NAMES[3])
    folder, work = paths[0].parent, args.work / "cli"
    _remove(work)
    work.mkdir(parents=True)
    csv_path = work / "labels.csv"
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows(
            [("filename", "label"), *((p.name, classes[c]) for p, c in zip(paths, labels))]
        )
    size = 10 if args.tiny else 40
    fast = ["--min-train-steps", "2", "--max-epochs", "1"] if args.tiny else []
    label_sim = {
        "n_mc_samples": args.T,
        **({"training": {"min_train_steps": 2, "max_epochs": 1}} if args.tiny else {}),
    }
    cli = [sys.executable, "-m", "skal_cxr.cli"]
    steps = [
        (
            f"skal-cxr simulate: bald, 1 seed, {size} + 2 x {size} labels, --pool-size "
            f"{args.cli_pool_size}, T = {args.T}",
            [
                *cli,
                "simulate",
                "--csv",
                csv_path,
                "--image-dir",
                folder,
                "--cache-dir",
                cache.cache_dir,
                "--image-size",
                "64",
                "--classes",
                ",".join(classes),
                "--strategies",
                "bald",
                "--seeds",
                "1",
                "--n-initial",
                size,
                "--query-size",
                size,
                "--budget",
                3 * size,
                "--pool-size",
                args.cli_pool_size,
                "--n-mc-samples",
                args.T,
                "--no-baseline",
                "--n-jobs",
                "1",
                "--torch-threads",
                args.threads,
                "--device",
                "cpu",
                *fast,
                "--output",
                work / "simulate",
                "--quiet",
            ],
        ),
        (
            "skal-cxr label init (image cache copied from the build above)",
            [
                *cli,
                "label",
                "init",
                work / "project",
                "--image-dir",
                folder,
                "--csv",
                csv_path,
                "--classes",
                ",".join(classes),
                "--image-size",
                "64",
                "--query-size",
                size,
                "--reserve-size",
                "0",
                "--seed",
                "0",
            ],
        ),
        (
            f"labeling round 1: train on {size}, score the whole pool (mean_std, T = {args.T})",
            [
                sys.executable,
                __file__,
                "--_label_round",
                work / "project",
                csv_path,
                json.dumps(label_sim),
            ],
        ),
    ]
    # the project's cache is the folder's cache (same files, same order): init checks
    # it instead of decoding the folder again (that build is measured above)
    shutil.copytree(cache.cache_dir, work / "project" / "cache" / "images-64x64")
    rows = []
    for k, (what, cmd) in enumerate(steps):
        log = work / f"step-{k}.log"
        rows.append({"what": what, **run_measured(cmd, log)})
        if "--_label_round" in map(str, cmd):
            rows[-1].update(json.loads(log.read_text().strip().splitlines()[-1]))
    return rows


def cost_1m(build, scoring, args):
    """Wall time of a 1M-image pool from the measured per-image costs (seconds)."""
    build_rate = max(r["images_per_s"] for r in build if r["n_jobs"] == 2 and "all" in r["what"])
    score_rate = scoring[0]["cache_images_per_s"]
    per_worker = score_rate / max(1, args.threads)  # one core's share
    n = 1_000_000
    return {
        "cache_build_s": n / build_rate,
        "score_one_cpu_machine_s": n / score_rate,
        "score_dask": {str(w): n / (per_worker * w) for w in (8, 32, 128)},
        "assumptions": [
            f"measured on {args.threads} core(s): build {build_rate:.0f} img/s with 2 "
            f"workers, scoring {score_rate:.0f} img/s (64 px, T={args.T})",
            "scoring and decoding are CPU-bound and scale linearly with cores and Dask "
            "workers (one single-threaded worker per core), each reading its chunks "
            "from a shared or local copy of the cache",
            "the model is scattered once (under 1 MB for the default CNN); images "
            "travel as uint8 (4 KiB at 64 px): a 1 Gbit/s link to the client moves about "
            f"30,000 img/s, so beyond about {30000 / per_worker:.0f} workers the "
            "network, not compute, bounds Dask (unless workers read a local copy)",
            "a GPU was not measured here",
        ],
    }


def write_report(result, out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "archive_scale.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Archive scale",
        "",
        f"Machine: {result['machine']}",
        "",
        "## Cache build (decode + resize to 64 px)",
        "",
        "| what | seconds | images/s |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {r['what']} | {r['seconds']:.1f} | {r['images_per_s']:.0f} |" for r in result["build"]
    ]
    lines += [
        "",
        "## MC scoring throughput (BALD): from the cache vs from RAM",
        "",
        "| model | images | T | cache img/s | RAM img/s | cache / RAM |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['what']} | {r['n']} | {r['T']} | {r['cache_images_per_s']:.0f} | "
        f"{r['ram_images_per_s']:.0f} | {r['cache_over_ram']:.2f} |"
        for r in result["scoring"]
    ]
    lines += [
        "",
        "## Peak RSS while scoring from the cache (fresh process)",
        "",
        "| pool | peak RSS (MiB) | seconds |",
        "| ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['n']} | {r['peak_rss'] / 2**20:.0f} | {r['seconds']:.1f} |" for r in result["rss"]
    ]
    if result.get("cli"):
        n, ram = result["n_images"], result["n_images"] * 64 * 64 * 4 / 2**20
        lines += [
            "",
            "## The command line end to end (fresh process each)",
            "",
            f"On the {n} files of the folder, read through the 64 px image cache; the "
            f"pool as float32 in memory would take {ram:.0f} MiB.",
            "",
            "| step | seconds | peak RSS (MiB) |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| {r['what']} | {r['seconds']:.1f} | {r['peak_rss'] / 2**20:.0f} |"
            for r in result["cli"]
        ]
    c = result["cost_1m"]
    lines += [
        "",
        "## A 1M-image pool, costed from the figures above",
        "",
        f"- cache build: {c['cache_build_s'] / 3600:.1f} h",
        f"- MC scoring on this machine: {c['score_one_cpu_machine_s'] / 3600:.1f} h",
        *[
            f"- MC scoring on {w} Dask workers: {s / 60:.0f} min"
            for w, s in c["score_dask"].items()
        ],
        "",
        "Assumptions:",
        *[f"- {a}" for a in c["assumptions"]],
        "",
    ]
    (out / "archive_scale.md").write_text("\n".join(lines))
    return "\n".join(lines)


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
    rss = bench_rss(net, cache, args)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} torch "
        f"thread(s), {os.cpu_count()} CPU(s) visible",
        "args": {k: str(v) for k, v in vars(args).items()},
        "n_images": len(paths),
        "write_pngs_s": t_write,
        "build": build,
        "scoring": scoring,
        "rss": rss,
        "cli": bench_cli(paths, labels, cache, args) if args.cli else None,
    }
    result["cost_1m"] = cost_1m(build, scoring, args)
    print(write_report(result, args.out))
    return result


if __name__ == "__main__":
    main()
