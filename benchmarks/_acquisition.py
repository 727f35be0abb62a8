"""The runner of ``bench_acquisition.py``: time, memory and agreement of the scorers.

Each (image size, pool size, method, score) is measured by :func:`measure`:
a warm-up, then the best of ``repeats`` timed calls, in this process or in a
fresh one (:func:`measure_in_subprocess`, which also reports the peak
memory). :func:`run_grid` trains one model per image size, checks that the
methods compute the same quantity (:func:`check_agreement`), measures every
configuration, times BatchBALD and PowerBALD (:func:`time_batch_strategies`)
and measures ours on one large pool.
"""

import argparse
import gc
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import _common as C
import numpy as np
import torch
from _peers import METHODS, PEERS, SCORES
from _timing import MIB, current_rss, peak_rss, reset_peak_rss, time_best

from skal_cxr import strategies

__all__ = [
    "measure",
    "worker",
    "measure_in_subprocess",
    "check_agreement",
    "time_batch_strategies",
    "run_grid",
]

#: the settings a measuring subprocess receives
_SPEC_ARGS = ("T", "batch_size", "chunk_size", "repeats", "budget", "collect")


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
    base = current_rss()
    reset = reset_peak_rss()
    seconds, runs, _ = time_best(run, args.repeats, args.budget, collect=args.collect)
    peak = max(peak_rss() - base, 0) / MIB
    return dict(seconds=seconds, runs=runs, peak_mib=peak, peak_reset=reset)


def worker(spec_path):
    """Entry point of a measuring subprocess: spec in, record out (JSON files)."""
    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec["threads"])
    with open(spec["model"], "rb") as f:
        net = pickle.load(f)
    X = C.load_pool_head(spec["pool"], spec["n"])
    args = argparse.Namespace(**spec["args"])
    record = measure(net, X, METHODS[spec["method"]], spec["score"], args)
    Path(spec["result"]).write_text(json.dumps(record))


def measure_in_subprocess(tmp, model_path, pool_path, n, method, score, args, script):
    """:func:`measure` in a fresh process: ``script --_worker SPEC`` runs :func:`worker`.

    Returns
    -------
    record : dict
        :func:`measure`'s record, or ``error`` (the last line of stderr,
        or the timeout).
    """
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
        args={key: getattr(args, key) for key in _SPEC_ARGS},
    )
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    if args.malloc_mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
    try:
        proc = subprocess.run(
            [sys.executable, str(script), "--_worker", str(spec_path)],
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


def check_agreement(net, X, methods, args):
    """Pearson correlation of every method's scores with ours, per score.

    ``ours (seed 1)`` is ours with other dropout masks: the correlation two
    independent ``T``-sample estimates reach, the ceiling for every peer.
    """
    kwargs = dict(T=args.agreement_T, batch_size=args.batch_size, chunk_size=args.chunk_size)
    rows = []
    for score in SCORES:
        ref = METHODS["ours"].prepare(net, X, score=score, **kwargs)()
        random_state = net.random_state
        net.random_state = 1
        try:
            scores = {"ours (seed 1)": METHODS["ours"].prepare(net, X, score=score, **kwargs)()}
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
            seconds, runs, _ = time_best(
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


def run_grid(args, methods, script):
    """Every measurement of the benchmark, per image size.

    Parameters
    ----------
    args : argparse.Namespace
        The command line of ``bench_acquisition.py``.
    methods : list of Method
        The methods to measure (see :func:`_peers.select_methods`).
    script : path
        The script a measuring subprocess runs with ``--_worker``.

    Returns
    -------
    grid : dict
        ``records`` (one per image size, pool size, method and score),
        ``scale_records`` (ours on ``args.scale_n`` images), ``agreement``,
        ``batch_rows`` and ``n_classes``.
    """
    sizes = sorted(set(args.sizes))
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
                    rec = measure_in_subprocess(
                        tmp, model_path, pool_path, n, m, score, args, script
                    )
                else:
                    rec = dict(measure(net, X[:n], m, score, args), peak_mib=None)
                return dict(image_size=size, n=n, method=m.key, score=score, **rec)

            for n in sizes:
                for m in methods:
                    if m.key in PEERS and args.peer_max_pool and n > args.peer_max_pool:
                        continue
                    for score in list(SCORES) if m.scored else [None]:
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
                            one(args.scale_n, METHODS[key], "bald", X=X_big, pool_path=big_path)
                        )
                    del X_big
    return dict(
        records=records,
        scale_records=scale_records,
        agreement=agreement,
        batch_rows=batch_rows,
        n_classes=n_classes,
    )
