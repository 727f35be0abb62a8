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
import gc
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

from skal_cxr import __version__ as SKAL_VERSION  # noqa: E402
from skal_cxr import strategies  # noqa: E402
from skal_cxr.report import format_value  # noqa: E402

MIB = 2.0**20
TARGET_FLOOR_RATIO = 1.3  # ours <= 1.3 x one deterministic pass
TARGET_SPEEDUP = 10.0  # ours >= 10x faster than the naive loop and modAL
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


# -- command line --------------------------------------------------------------
#: What users would otherwise run (peers); --peer-max-pool limits them to small pools.
PEERS = ("naive", "modal", "baal", "baal_cache")


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
    p.add_argument("--methods", nargs="+", default=list(C.METHODS), choices=list(C.METHODS))
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


# -- one measurement -------------------------------------------------------------
def measure(net, X, method, score, args):
    """Warm up, then time ``method`` on ``X``; peak memory above the loaded state.

    Returns
    -------
    record : dict
        ``seconds`` (best), ``runs`` and ``peak_mib``: the peak resident set
        size during the timed calls minus the resident set size just before
        them (model, pool and the method's prepared inputs loaded, warm-up
        done); ``peak_reset`` tells whether the kernel's peak mark could be
        reset first (if not, the peak may be an earlier transient).
    """
    kwargs = dict(T=args.T, batch_size=args.batch_size, score=score, chunk_size=args.chunk_size)
    warm = method.prepare(net, X[: min(len(X), 2 * args.batch_size)], **kwargs)
    warm()
    run = method.prepare(net, X, **kwargs)
    del warm
    gc.collect()
    base = C.current_rss()
    reset = C.reset_peak_rss()
    seconds, runs, _ = C.time_best(run, args.repeats, args.budget, collect=args.collect)
    peak = max(C.peak_rss() - base, 0) / MIB
    return dict(seconds=seconds, runs=runs, peak_mib=peak, peak_reset=reset)


def worker(spec_path):
    """Entry point of a measuring subprocess: spec in, record out (JSON files)."""
    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec["threads"])
    with open(spec["model"], "rb") as f:
        net = pickle.load(f)
    X = C.load_pool_head(spec["pool"], spec["n"])
    args = argparse.Namespace(**spec["args"])
    record = measure(net, X, C.METHODS[spec["method"]], spec["score"], args)
    Path(spec["result"]).write_text(json.dumps(record))


def measure_in_subprocess(tmp, model_path, pool_path, n, method, score, args):
    spec_path = Path(tmp) / "spec.json"
    result_path = Path(tmp) / "result.json"
    result_path.unlink(missing_ok=True)
    spec = dict(
        model=str(model_path),
        pool=str(pool_path),
        n=n,
        method=method.key,
        score=score,
        threads=args.threads,
        result=str(result_path),
        args=dict(
            T=args.T,
            batch_size=args.batch_size,
            chunk_size=args.chunk_size,
            repeats=args.repeats,
            budget=args.budget,
            collect=args.collect,
        ),
    )
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    if args.malloc_mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--_worker", str(spec_path)],
            capture_output=True,
            text=True,
            timeout=args.timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {args.timeout:.0f} s")
    if proc.returncode != 0 or not result_path.exists():
        lines = (proc.stderr or "").strip().splitlines() or [f"exit status {proc.returncode}"]
        return dict(error=lines[-1][:200])
    return json.loads(result_path.read_text())


# -- agreement of the methods ------------------------------------------------------
def check_agreement(net, X, methods, args):
    """Pearson correlation of every method's scores with ours, per score.

    ``ours (seed 1)`` is ours with other dropout masks: the correlation two
    independent ``T``-sample estimates reach, the ceiling for every peer.
    """
    kwargs = dict(T=args.agreement_T, batch_size=args.batch_size, chunk_size=args.chunk_size)
    rows = []
    for score in C.SCORES:
        ref = C.METHODS["ours"].prepare(net, X, score=score, **kwargs)()
        random_state = net.random_state
        net.random_state = 1
        try:
            scores = {"ours (seed 1)": C.METHODS["ours"].prepare(net, X, score=score, **kwargs)()}
        finally:
            net.random_state = random_state
        torch.manual_seed(1)
        for m in methods:
            if m.scored and m.key != "ours":
                extra = {"n_instances": len(X)} if m.key == "modal" else {}
                scores[m.key] = m.prepare(net, X, score=score, **kwargs, **extra)()
        ceiling = None
        for name, values in scores.items():
            r = float(np.corrcoef(ref, values)[0, 1])
            ceiling = r if ceiling is None else ceiling
            rows.append(
                dict(
                    score=score,
                    method=name,
                    n=len(X),
                    T=args.agreement_T,
                    pearson_r=r,
                    agrees=bool(r >= min(0.95, ceiling - 0.05)),
                )
            )
    return rows


# -- BatchBALD and PowerBALD ---------------------------------------------------------
def time_batch_strategies(net, X, args):
    """Full query time (MC sampling included) of top-k BALD, BatchBALD and PowerBALD."""
    rows = []
    candidates = [
        ("bald (top-k)", getattr(strategies, "bald", None), {}),
        (
            "batch_bald",
            getattr(strategies, "batch_bald", None),
            {"max_configurations": args.max_configurations},
        ),
        ("power_bald", getattr(strategies, "power_bald", None), {}),
    ]
    for k in args.acq_sizes:
        if k > len(X):
            continue
        reference = None
        for name, strategy, params in candidates:
            if strategy is None:
                rows.append(dict(strategy=name, n=len(X), n_instances=k, error="not available"))
                continue
            seconds, runs, _ = C.time_best(
                lambda: strategy(net, X, n_instances=k, n_mc_samples=args.T, **params),  # noqa: B023 (called here)
                args.repeats,
                args.budget,
                collect=args.collect,
            )
            reference = seconds if reference is None else reference
            rows.append(
                dict(
                    strategy=name,
                    n=len(X),
                    n_instances=k,
                    seconds=seconds,
                    runs=runs,
                    vs_bald=seconds / reference,
                    params=params,
                )
            )
    return rows


# -- derived numbers ---------------------------------------------------------------
def add_ratios(records):
    """``ours / method`` and ``method / floor`` for every timed record."""

    def key(r):
        return (r["image_size"], r["n"])

    ours = {
        key(r) + (r["score"],): r["seconds"]
        for r in records
        if r["method"] == "ours" and "seconds" in r
    }
    floor = {key(r): r["seconds"] for r in records if r["method"] == "floor" and "seconds" in r}
    for r in records:
        if "seconds" not in r:
            continue
        t_ours = ours.get(key(r) + (r["score"],))
        r["ours_over_method"] = t_ours / r["seconds"] if t_ours else None
        r["method_over_floor"] = r["seconds"] / floor[key(r)] if key(r) in floor else None


def check_targets(records):
    """The speed targets, one row per (image size, pool size, score, target)."""
    by = {}
    for r in records:
        if "seconds" in r:
            by[(r["image_size"], r["n"], r["score"], r["method"])] = r
    rows = []
    for (size, n, score, method), r in sorted(by.items(), key=lambda kv: str(kv[0])):
        if method != "ours":
            continue
        ours = r["seconds"]
        checks = [
            (
                f"ours <= {TARGET_FLOOR_RATIO:.1f} x floor",
                r.get("method_over_floor"),
                lambda v: v <= TARGET_FLOOR_RATIO,
            )
        ]
        for peer, need in (
            ("naive", TARGET_SPEEDUP),
            ("modal", TARGET_SPEEDUP),
            ("baal_cache", 1.0),
        ):
            p = by.get((size, n, score, peer))
            if p is not None:
                checks.append(
                    (
                        f"{peer} / ours >= {need:g}",
                        p["seconds"] / ours,
                        lambda v, need=need: v >= need if need > 1 else v > need,
                    )
                )
        for name, value, ok in checks:
            if value is not None:
                rows.append(
                    dict(
                        image_size=size,
                        n=n,
                        score=score,
                        target=name,
                        value=value,
                        met=bool(ok(value)),
                    )
                )
    return rows


def scale_analysis(records, args, n_classes):
    """Linear fits of time and peak memory against pool size, extrapolated.

    For ``ours`` and ``ours_chunked`` (BALD): seconds and peak MiB per pool
    size, the fitted slopes, the values at ``args.extrapolate`` images, and
    the growth of peak memory per image between the smallest and the largest
    pool, compared with ``T * C * 4`` bytes per image: what holding all
    float32 samples at once costs. Below it, memory is bounded.
    """
    per_image_samples = args.T * n_classes * 4
    out = []
    for size in args.image_sizes:
        for method in ("ours", "ours_chunked"):
            pts = sorted(
                (r["n"], r["seconds"], r.get("peak_mib"))
                for r in records
                if r["image_size"] == size
                and r["method"] == method
                and r["score"] == "bald"
                and "seconds" in r
            )
            if not pts:
                continue
            n = np.array([p[0] for p in pts], dtype=float)
            t = np.array([p[1] for p in pts])
            mem = [p[2] for p in pts]
            row = dict(
                image_size=size,
                method=method,
                points=[
                    dict(n=int(a), seconds=b, peak_mib=c, samples_mib=a * per_image_samples / MIB)
                    for a, b, c in pts
                ],
            )
            if len(n) >= 2:
                t_slope, t_icpt = np.polyfit(n, t, 1)
                row.update(
                    seconds_per_1k=1000 * t_slope,
                    seconds_at_extrapolate=t_icpt + t_slope * args.extrapolate,
                )
                if all(m is not None for m in mem):
                    m_slope, m_icpt = np.polyfit(n, np.array(mem), 1)
                    growth = (mem[-1] - mem[0]) * MIB / (n[-1] - n[0])
                    row.update(
                        bytes_per_image=growth,
                        peak_mib_at_extrapolate=m_icpt + m_slope * args.extrapolate,
                        bounded=bool(growth < per_image_samples),
                    )
            row["samples_mib_at_extrapolate"] = args.extrapolate * per_image_samples / MIB
            out.append(row)
    return dict(
        extrapolate_to=args.extrapolate,
        samples_bytes_per_image=per_image_samples,
        scale_n=args.scale_n,
        chunk_size=args.chunk_size,
        rows=out,
    )


# -- report --------------------------------------------------------------------------
#: a table cell: three decimals unless ``spec`` says otherwise, "n/a" when missing
_f = partial(format_value, spec=".3f", missing="n/a")


def render_markdown(meta, records, targets, agreement, batch_rows, scale):
    L = [f"# Acquisition speed ({meta['date']})", ""]
    L.append(f"Command: `{meta['command']}`  ")
    L.append(
        f"skal_cxr {meta['skal_cxr']}, torch {meta['torch']}, Python {meta['python']}, "
        f"{meta['machine']}, {meta['threads']} torch threads, CPU.  "
    )
    L.append(
        f"T = {meta['T']} MC samples, batch size {meta['batch_size']} for every method, "
        f"best of {meta['repeats']} (after a warm-up), ours_chunked: chunks of "
        f"{meta['chunk_size']} images. Peak memory: {meta['memory_method']}.  "
    )
    if not all(r.get("peak_reset", True) for r in records):
        L.append(
            "The peak-RSS mark could not be reset here: peaks may include transients "
            "from before the measurement.  "
        )
    if meta["skipped"]:
        L.append("Skipped (package missing): " + ", ".join(meta["skipped"]) + ".")
    L += [
        "",
        "## Time to score the pool",
        "",
        "`ours/method` < 1: ours is faster. `method/floor`: cost in deterministic passes.",
        "",
        "| image | pool | score | method | seconds | runs | ours/method | method/floor "
        "| peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        score = C.SCORE_LABELS.get(r["score"], "-")
        label = C.METHODS[r["method"]].label
        if "error" in r:
            L.append(
                f"| {r['image_size']} | {r['n']} | {score} | {label} | failed: "
                f"{r['error']} | | | | |"
            )
            continue
        L.append(
            f"| {r['image_size']} | {r['n']} | {score} | {label} | {r['seconds']:.4f} | "
            f"{r['runs']} | {_f(r.get('ours_over_method'))} | "
            f"{_f(r.get('method_over_floor'), spec='.2f')} | "
            f"{_f(r.get('peak_mib'), spec='.1f')} |"
        )
    L += [
        "",
        "## Targets",
        "",
        "| image | pool | score | target | value | met |",
        "|---|---|---|---|---|---|",
    ]
    for t in targets:
        L.append(
            f"| {t['image_size']} | {t['n']} | {C.SCORE_LABELS[t['score']]} | "
            f"{t['target']} | {t['value']:.2f} | {'yes' if t['met'] else 'NO'} |"
        )
    L += [
        "",
        "## Same quantity?",
        "",
        "Pearson correlation of each method's scores with ours on the first "
        f"{agreement[0]['n'] if agreement else 0} pool images per image size, "
        f"T = {agreement[0]['T'] if agreement else 0}. `ours (seed 1)` "
        "is ours with other dropout masks: the ceiling two independent T-sample estimates "
        "reach. A method agrees when r >= min(0.95, ceiling - 0.05). With an int "
        "`random_state` every `predict_proba_samples` call draws the same masks, so "
        "ours_chunked's first chunk repeats ours exactly and its r exceeds the ceiling.",
        "",
        "| image | score | method | r | agrees |",
        "|---|---|---|---|---|",
    ]
    for a in agreement:
        L.append(
            f"| {a['image_size']} | {C.SCORE_LABELS[a['score']]} | {a['method']} | "
            f"{a['pearson_r']:.4f} | {'yes' if a['agrees'] else 'NO'} |"
        )
    L += [
        "",
        "## Batch acquisition (BatchBALD, PowerBALD)",
        "",
        "Whole query (MC sampling + selection) through the strategy; pool_size=None "
        f"(the whole pool), BatchBALD max_configurations={meta['max_configurations']}. "
        "`/ bald` is the time relative to top-k BALD on the same pool.",
        "",
        "| image | pool | n_instances | strategy | seconds | runs | / bald |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in batch_rows:
        if "error" in b:
            L.append(
                f"| {b['image_size']} | {b['n']} | {b['n_instances']} | {b['strategy']} "
                f"| {b['error']} | | |"
            )
        else:
            L.append(
                f"| {b['image_size']} | {b['n']} | {b['n_instances']} | {b['strategy']} "
                f"| {b['seconds']:.4f} | {b['runs']} | {b['vs_bald']:.2f} |"
            )
    x = scale["extrapolate_to"]
    L += [
        "",
        "## Scale",
        "",
        f"BALD with ours. `samples MiB`: the N x T x C float32 samples held at once "
        f"({scale['samples_bytes_per_image']} bytes per image); ours_chunked never holds "
        f"more than {scale['chunk_size']} images' worth. Linear fits over the pool sizes, "
        f"extrapolated to {x:,} images (the largest pool, when measured, is "
        f"{scale['scale_n'] or 'not measured'}). `bytes per image`: growth of the peak from the "
        "smallest to the largest pool; memory is bounded when it is below what the float32 "
        "samples alone would add. Peaks are RSS, which includes heap memory glibc keeps "
        "after it was freed (see benchmarks/README.md, --malloc-mmap-threshold).",
        "",
        "| image | method | pool | seconds | peak MiB | samples MiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in scale["rows"]:
        for p in row["points"]:
            L.append(
                f"| {row['image_size']} | {row['method']} | {p['n']} | {p['seconds']:.4f} "
                f"| {_f(p['peak_mib'], spec='.1f')} | {p['samples_mib']:.2f} |"
            )
    L += [
        "",
        f"| image | method | s per 1k images | s at {x:,} | bytes per image "
        f"| peak MiB at {x:,} | samples MiB at {x:,} | bounded |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in scale["rows"]:
        bounded = row.get("bounded")
        L.append(
            f"| {row['image_size']} | {row['method']} | {_f(row.get('seconds_per_1k'))} | "
            f"{_f(row.get('seconds_at_extrapolate'), spec='.1f')} | "
            f"{_f(row.get('bytes_per_image'), spec='.0f')} | "
            f"{_f(row.get('peak_mib_at_extrapolate'), spec='.1f')} | "
            f"{row['samples_mib_at_extrapolate']:.1f} | "
            f"{'n/a' if bounded is None else ('yes' if bounded else 'NO')} |"
        )
    return "\n".join(L) + "\n"


# -- driver --------------------------------------------------------------------------
def run(args):
    torch.set_num_threads(args.threads)
    sizes = sorted(set(args.sizes))
    methods, skipped = [], []
    for key in args.methods:
        m = C.METHODS[key]
        (methods if m.requires is None or C.available(m.requires) else skipped).append(m)
    skipped = [f"{m.key} ({m.requires})" for m in skipped]
    records, agreement, batch_rows, scale_records = [], [], [], []
    n_classes = 3
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.image_sizes:
            print(f"[{size}px] training the model and making the pool", flush=True)
            net = C.train_model(
                size,
                n_train=args.n_train,
                batch_size=args.batch_size,
                min_train_steps=0 if args.tiny else None,
            )
            n_classes = len(net.classes_)
            X, _ = C.make_pool(sizes[-1], size, random_state=2)
            model_path, pool_path = Path(tmp) / "model.pkl", Path(tmp) / "pool.npy"
            with open(model_path, "wb") as f:
                pickle.dump(net, f)
            C.save_pool(pool_path, X)
            for a in check_agreement(net, X[: args.agreement_n], methods, args):
                agreement.append(dict(image_size=size, **a))

            def one(
                n, m, score, X=X, pool_path=pool_path, size=size, model_path=model_path, net=net
            ):
                print(f"[{size}px N={n}] {m.key} {score or ''}", flush=True)
                if args.subprocess:
                    rec = measure_in_subprocess(tmp, model_path, pool_path, n, m, score, args)
                else:
                    rec = dict(measure(net, X[:n], m, score, args), peak_mib=None)
                return dict(image_size=size, n=n, method=m.key, score=score, **rec)

            for n in sizes:
                for m in methods:
                    if m.key in PEERS and args.peer_max_pool and n > args.peer_max_pool:
                        continue
                    for score in list(C.SCORES) if m.scored else [None]:
                        records.append(one(n, m, score))
            if size == args.image_sizes[0]:
                for n in [s for s in sizes if s <= args.batch_max_pool] or sizes[:1]:
                    print(f"[{size}px N={n}] BatchBALD / PowerBALD", flush=True)
                    for b in time_batch_strategies(net, X[:n], args):
                        batch_rows.append(dict(image_size=size, **b))
                if args.scale_n and args.scale_n not in sizes:
                    del X
                    X_big, _ = C.make_pool(args.scale_n, size, random_state=2)
                    big_path = Path(tmp) / "pool_big.npy"
                    C.save_pool(big_path, X_big)
                    for key in ("ours", "ours_chunked"):
                        scale_records.append(
                            one(args.scale_n, C.METHODS[key], "bald", X=X_big, pool_path=big_path)
                        )
                    del X_big
    add_ratios(records)
    targets = check_targets(records)
    scale = scale_analysis(records + scale_records, args, n_classes)
    meta = dict(
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
        sizes=sizes,
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
    text = render_markdown(meta, records, targets, agreement, batch_rows, scale)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "acquisition_speed.md").write_text(text)
    (args.out / "acquisition_speed.json").write_text(
        json.dumps(
            dict(
                meta=meta,
                results=records,
                scale_results=scale_records,
                targets=targets,
                agreement=agreement,
                batch_acquisition=batch_rows,
                scale=scale,
            ),
            indent=2,
        )
    )
    print(text)
    return dict(
        meta=meta,
        results=records,
        scale_results=scale_records,
        targets=targets,
        agreement=agreement,
        batch_acquisition=batch_rows,
        scale=scale,
    )


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
