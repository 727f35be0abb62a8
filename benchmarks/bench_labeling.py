"""Load benchmark of the labeling server: concurrent raters while the model trains.

Builds a labeling project over a folder of phantom CXR PNGs, serves it with
``skal-cxr label serve`` on a free loopback port (a separate process, as a
user runs it) and lets ``--raters`` scripted raters label through the JSON API
for ``--duration`` seconds, all in one asyncio loop (httpx). Each rater
repeats: ``GET /api/next``, ``GET /api/images/{id}/pixels``, ``POST
/api/labels`` with the phantom's true class after ``--think`` seconds; when
the server says "waiting" it polls again after 0.25 s. Batches complete
during the run, so the server trains and queries in the background while the
raters go on.

Measured:

* latency (p50, p99, max) of label submission, pixel fetch and ``/api/next``,
  over the whole run and over the requests sent while a training ran (a
  monitor polls ``/api/status`` every 0.25 s);
* errors: every response other than the expected status, and every failed
  request;
* lost labels: after the server stopped, every acknowledged label
  (``label_id``) must be in the project database once, with its image,
  rater and class; no label row may exist that was not acknowledged;
* batch turnaround: for every round after the first, the time from the last
  label that completed the previous round's batch to the new round's record
  (read from the database), with the fit and query times the round recorded.

Writes ``labeling.md``, ``labeling.rst`` (the same figures as
reStructuredText list tables, ready for ``docs/benchmarks.rst``; also
printed), ``labeling.json`` and the server's log ``labeling_serve.log`` to
``--out``. ``--tiny`` runs at toy
size in seconds (the smoke test does that).

``--startup --baseline DIR`` measures instead how soon ``skal-cxr label
serve PROJECT`` answers: the seconds from starting the command to the first
**200** of ``GET /api/health`` (loopback), ``--repeats`` times for this
checkout and for the one at ``DIR`` (e.g. ``git worktree add /tmp/skal-main
main``), alternating, over copies of one small project that the baseline
writes; prints both medians and their ratio (the server started is stopped
by its PID each time).

Run from the repository root (skal_cxr importable, with the ``label`` extra)::

    python benchmarks/bench_labeling.py                  # 10,000 images, 64 px, 8 raters, 60 s
    python benchmarks/bench_labeling.py --startup --baseline /tmp/skal-main
    python benchmarks/bench_labeling.py --help
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C  # noqa: E402

from skal_cxr.report import format_value  # noqa: E402

#: seconds in a table: one decimal, "-" when not measured
_seconds = partial(format_value, spec=".1f", missing="-")

CLASSES = ["normal", "moderate", "severe"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-images", type=int, default=10_000)
    p.add_argument("--image-size", type=int, default=64, help="phantom and model size (px)")
    p.add_argument("--raters", type=int, default=8)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of labeling")
    p.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds a rater looks at an image before labeling (0: as fast "
        "as the server answers, the hardest case)",
    )
    p.add_argument("--query-size", type=int, default=100, help="images queried per round")
    p.add_argument(
        "--model",
        choices=("view", "cnn"),
        default="view",
        help="a head on the pool's view, trained at init (new projects), or the CNN per round",
    )
    p.add_argument(
        "--view-epochs",
        type=int,
        default=None,
        help="epochs of the view's encoder (default: the engine's); 0 times the rounds with "
        "an untrained encoder of the same size when its one-time cost is measured apart",
    )
    p.add_argument("--labels-per-image", type=int, default=3)
    p.add_argument(
        "--settle",
        type=float,
        default=600.0,
        help="after the raters stop, wait up to this many seconds for a running "
        "training to finish, so that its turnaround is measured",
    )
    p.add_argument(
        "--pool-size",
        default=None,
        metavar="N|all",
        help="unlabeled images scored per round: a random subset of N, or all "
        "(default: the project's default)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP/torch threads of the server (default: its own choice)",
    )
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--tiny", action="store_true", help="toy size: seconds, for the smoke test")
    p.add_argument(
        "--startup",
        action="store_true",
        help="time 'label serve' to its first answer instead, this checkout vs --baseline",
    )
    p.add_argument(
        "--baseline", type=Path, help="the checkout to compare with (--startup; e.g. of main)"
    )
    p.add_argument("--repeats", type=int, default=5, help="server starts per checkout (--startup)")
    args = p.parse_args(argv)
    if args.startup and args.baseline is None:
        p.error("--startup needs --baseline DIR (a checkout of the code to compare with)")
    if args.pool_size not in (None, "all"):
        args.pool_size = int(args.pool_size)
    if args.tiny:
        args.n_images, args.image_size, args.raters = 60, 32, 3
        args.duration, args.query_size, args.labels_per_image = 6.0, 10, 2
        args.settle = 0.0
    return args


# -- the project and the server -----------------------------------------------
def make_project(root, args):
    """A project over ``n_images`` phantom PNGs; returns (path, {rater: token}, truth, s)."""
    from PIL import Image

    from skal_cxr.labeling import init_project
    from skal_cxr.labeling.worker._view import view_info

    images = root / "images"
    images.mkdir()
    X, y = C.make_pool(args.n_images, args.image_size, n_classes=len(CLASSES))
    truth = {}
    for i, (x, c) in enumerate(zip(X, y)):
        name = f"{i // 1000:02d}/cxr_{i:05d}.png"
        (images / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.round(np.clip(x, 0, 1) * 4095).astype(np.uint16)).save(images / name)
        truth[name] = CLASSES[int(c)]
    t0, c0 = time.perf_counter(), time.process_time()
    options = (
        {}
        if args.pool_size is None
        else {"pool_size": None if args.pool_size == "all" else args.pool_size}
    )
    project = init_project(
        root / "project",
        images,
        CLASSES,
        labels_per_image=args.labels_per_image,
        query_size=args.query_size,
        image_size=args.image_size,
        model=args.model,
        view=None if args.view_epochs is None else {"max_epochs": args.view_epochs},
        **options,
    )
    init = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    view = view_info(project.path)
    if view is not None:  # the encoder's one-time cost, part of the init
        init.update(view_seconds=view["seconds"], view_cpu_seconds=view["cpu_seconds"])
    tokens = {f"rater{r}": project.add_rater(f"rater{r}") for r in range(args.raters)}
    return project.path, tokens, truth, init


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path, port, threads, log):
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skal_cxr.cli",
            "label",
            "serve",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not answer /api/health within 120 s")


def cpu_seconds(proc):
    """CPU seconds (user + system) of the server process and of its worker, so far."""
    import psutil

    out = {}
    try:
        server = psutil.Process(proc.pid)
        out["server"] = sum(server.cpu_times()[:2])
        out["worker"] = sum(sum(c.cpu_times()[:2]) for c in server.children(recursive=True))
    except psutil.Error:
        pass
    return out


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the raters -------------------------------------------------------------------
class Recorder:
    def __init__(self):
        self.samples = {"submit": [], "pixels": [], "next": []}  # (t_start, seconds)
        self.errors = []
        self.acked = []  # (label_id, image_id, rater, label)
        self.training = []  # [t_start, t_end] intervals of a running training
        self.waiting = 0
        self.retried = 0
        self.load_start = os.getloadavg()[0]

    def time(self, kind, t0):
        self.samples[kind].append((t0, time.perf_counter() - t0))


async def get(client, url, headers, rec):
    """GET, retried once on a dropped keep-alive connection (as browsers do)."""
    import httpx

    try:
        return await client.get(url, headers=headers)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        rec.retried += 1
        return await client.get(url, headers=headers)


async def rater(client, name, token, relpaths, truth, rec, args, stop_at):
    headers = {"Authorization": f"Bearer {token}"}
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    while time.perf_counter() < stop_at:
        try:
            t0 = time.perf_counter()
            r = await get(client, "/api/next", headers, rec)
            rec.time("next", t0)
            if r.status_code != 200:
                rec.errors.append(("next", r.status_code, r.text[:200]))
                await asyncio.sleep(0.25)
                continue
            nxt = r.json()
            image_id = nxt["image_id"]
            if image_id is None:
                rec.waiting += 1
                await asyncio.sleep(0.25)
                continue
            t0 = time.perf_counter()
            r = await get(client, f"/api/images/{image_id}/pixels", headers, rec)
            rec.time("pixels", t0)
            if r.status_code != 200 or len(r.content) != 2 * int(r.headers["X-Image-Width"]) * int(
                r.headers["X-Image-Height"]
            ):
                rec.errors.append(("pixels", r.status_code, r.text[:200]))
                continue
            if args.think:
                await asyncio.sleep(rng.exponential(args.think))
            label = truth[relpaths[image_id]]
            t0 = time.perf_counter()
            r = await client.post(
                "/api/labels",
                headers=headers,
                json={
                    "image_id": image_id,
                    "label": label,
                    "seconds": round(float(rng.uniform(2, 20)), 2),
                    "note": None,
                },
            )
            rec.time("submit", t0)
            if r.status_code != 201:
                rec.errors.append(("submit", r.status_code, r.text[:200]))
                continue
            rec.acked.append((r.json()["label_id"], str(image_id), name, label))
        except Exception as e:  # a failed request is an error, never a crash of the run
            rec.errors.append(("request", type(e).__name__, str(e)[:200]))
            await asyncio.sleep(0.1)


async def monitor(client, token, rec, stop_at):
    """Record when the server's training runs (from /api/status)."""
    headers = {"Authorization": f"Bearer {token}"}
    running_since = None
    while time.perf_counter() < stop_at:
        try:
            r = await client.get("/api/status", headers=headers)
            state = (r.json().get("training") or {}).get("state")
        except Exception:
            state = None
        now = time.perf_counter()
        busy = state in ("training", "querying")
        if busy and running_since is None:
            running_since = now
        elif not busy and running_since is not None:
            rec.training.append((running_since, now))
            running_since = None
        await asyncio.sleep(0.25)
    if running_since is not None:
        rec.training.append((running_since, time.perf_counter()))


async def run_raters(port, tokens, relpaths, truth, args):
    import httpx

    rec = Recorder()
    limits = httpx.Limits(max_connections=len(tokens) + 2)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
    ) as client:
        stop_at = time.perf_counter() + args.duration
        first = next(iter(tokens.values()))
        await asyncio.gather(
            monitor(client, first, rec, stop_at),
            *(
                rater(client, name, tok, relpaths, truth, rec, args, stop_at)
                for name, tok in tokens.items()
            ),
        )
        # let a training that the run started finish, to time its turnaround
        deadline = time.perf_counter() + args.settle
        headers = {"Authorization": f"Bearer {first}"}
        while time.perf_counter() < deadline:
            state = (await client.get("/api/status", headers=headers)).json()["training"]
            if state["state"] not in ("training", "querying"):
                break
            await asyncio.sleep(0.5)
    return rec


# -- reading the database back ----------------------------------------------------------
def db_rows(path, sql, params=()):
    with sqlite3.connect(f"file:{path / 'project.sqlite'}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params).fetchall()]


def check_labels(path, rec):
    rows = db_rows(
        path,
        "SELECT l.id, l.image_id, r.name, l.label FROM labels l "
        "JOIN raters r ON r.id = l.rater_id WHERE l.label IS NOT NULL",
    )
    stored = {}
    for r in rows:
        stored.setdefault(r["id"], []).append((str(r["image_id"]), r["name"], r["label"]))
    lost = [a for a in rec.acked if stored.get(a[0]) != [a[1:]]]
    acked_ids = {a[0] for a in rec.acked}
    unacknowledged = [i for i in stored if i not in acked_ids]
    pairs = [(r["image_id"], r["name"]) for r in rows]
    duplicated = len(pairs) - len(set(pairs))
    return {
        "acknowledged": len(rec.acked),
        "stored": len(rows),
        "lost": len(lost),
        "unacknowledged_rows": len(unacknowledged),
        "duplicate_image_rater": duplicated,
    }


def turnaround(path):
    """Seconds from the label completing each batch to the next round's record."""
    rounds = db_rows(
        path, "SELECT round, queried, fit_time, query_time, created_at FROM rounds ORDER BY round"
    )
    out = []
    for prev, cur in zip(rounds, rounds[1:]):
        batch = [int(i) for i in json.loads(prev["queried"])]
        if not batch:
            continue
        marks = ",".join("?" * len(batch))
        last = db_rows(
            path,
            f"SELECT MAX(created_at) AS t FROM labels WHERE label IS NOT NULL "
            f"AND image_id IN ({marks})",
            batch,
        )[0]["t"]
        if last is None:
            continue
        seconds = (
            datetime.fromisoformat(cur["created_at"]) - datetime.fromisoformat(last)
        ).total_seconds()
        out.append(
            {
                "round": cur["round"],
                "seconds": seconds,
                "fit_time": cur["fit_time"],
                "query_time": cur["query_time"],
                "batch": len(batch),
            }
        )
    return out


# -- summary ------------------------------------------------------------------------------
def latency(samples, within=None):
    xs = [s for t, s in samples if within is None or any(a <= t <= b for a, b in within)]
    if not xs:
        return {"n": 0}
    ms = np.asarray(xs) * 1000
    return {
        "n": len(xs),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def summarize(rec, path, args, init, cpu):
    from skal_cxr.labeling import open_project

    lat = {k: latency(v) for k, v in rec.samples.items()}
    lat_training = {k: latency(v, rec.training) for k, v in rec.samples.items()}
    return {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpus": C.available_threads(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": [rec.load_start, os.getloadavg()[0]],
        },
        "init_seconds": init["seconds"],
        "init": init,
        "serve_cpu_seconds": cpu,
        "latency": lat,
        "latency_while_training": lat_training,
        "training_seconds": sum(b - a for a, b in rec.training),
        "errors": len(rec.errors),
        "error_examples": rec.errors[:5],
        "waiting_answers": rec.waiting,
        "retried_gets": rec.retried,
        "labels": check_labels(path, rec),
        "turnaround": turnaround(path),
        "pool_size": open_project(path).config["engine"]["pool_size"],
    }


def markdown(res):
    s = res["settings"]
    load = res["machine"].get("load_average")
    lines = [
        "# Labeling server under load",
        "",
        f"{s['raters']} scripted raters for {s['duration']:.0f} s, think time {s['think']} s, "
        f"{s['n_images']:,} phantom PNGs of {s['image_size']} px, batches of "
        f"{s['query_size']} images x {s['labels_per_image']} labels, "
        + (
            "the whole pool"
            if res["pool_size"] is None
            else f"a random {res['pool_size']:,} unlabeled images"
        )
        + " scored per round; "
        f"{res['machine']['cpus']} CPU cores (1-min load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end); project init {res['init_seconds']:.1f} s.",
        "",
        _phases(res),
        "",
        "| request | n | p50 (ms) | p99 (ms) | max (ms) | n while training "
        "| p99 while training (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k, label in (
        ("submit", "POST /api/labels"),
        ("pixels", "GET /api/images/{id}/pixels"),
        ("next", "GET /api/next"),
    ):
        a, b = res["latency"][k], res["latency_while_training"][k]
        if a["n"]:
            lines.append(
                f"| {label} | {a['n']} | {a['p50_ms']:.1f} | {a['p99_ms']:.1f} | "
                f"{a['max_ms']:.1f} | {b['n']} | " + (f"{b['p99_ms']:.1f} |" if b["n"] else "- |")
            )
    lab = res["labels"]
    lines += [
        "",
        f"Training ran for {res['training_seconds']:.1f} s of the run. Errors: {res['errors']}. "
        f"Labels acknowledged: {lab['acknowledged']}, stored: {lab['stored']}, lost: "
        f"{lab['lost']}, stored but never acknowledged: {lab['unacknowledged_rows']}, "
        f"duplicate (image, rater): {lab['duplicate_image_rater']}. "
        f"'Waiting' answers: {res['waiting_answers']}. GETs retried after a dropped "
        f"keep-alive connection: {res['retried_gets']}.",
        "",
        "| round | batch | last label -> next batch ready (s) | fit (s) | query (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in res["turnaround"]:
        fit, query = (_seconds(t["fit_time"]), _seconds(t["query_time"]))
        lines.append(f"| {t['round']} | {t['batch']} | {t['seconds']:.1f} | {fit} | {query} |")
    return "\n".join(lines) + "\n"


def _phases(res):
    """One line: the model, and each phase's wall-clock and CPU seconds."""
    init, cpu = res.get("init", {}), res.get("serve_cpu_seconds", {})
    model = res["settings"].get("model", "cnn")
    parts = [
        f"Model: {model}. Init {init.get('seconds', 0):.1f} s wall, "
        f"{init.get('cpu_seconds', 0):.1f} CPU-s (image cache"
        + (", view" if "view_seconds" in init else "")
        + ")"
    ]
    if "view_seconds" in init:
        parts.append(
            f"of which the view's encoder {init['view_seconds']:.1f} s wall, "
            f"{init['view_cpu_seconds']:.1f} CPU-s (once per project)"
        )
    if cpu:
        parts.append(
            f"serving: server {cpu.get('server', 0):.1f} CPU-s, training worker "
            f"{cpu.get('worker', 0):.1f} CPU-s"
        )
    return "; ".join(parts) + "."


def _ms(value):
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def rst(res):
    """The figures as reStructuredText list tables, to paste into docs/benchmarks.rst."""
    s, m = res["settings"], res["machine"]
    load = m["load_average"]
    scored = (
        "the whole pool"
        if res["pool_size"] is None
        else f"a random {res['pool_size']:,} unlabeled images"
    )
    lines = [
        f"{s['raters']} scripted raters for {s['duration']:.0f} s (think time {s['think']} s), "
        f"{s['n_images']:,} images of {s['image_size']} px, batches of {s['query_size']} images "
        f"x {s['labels_per_image']} labels, {scored} scored per round; {m['cpus']} CPU cores, "
        f"1-minute load average {load[0]:.1f} at the start and {load[1]:.1f} at the end.",
        "",
        _phases(res),
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - request",
        "     - n",
        "     - p50 (ms)",
        "     - p99 (ms)",
        "     - n while training",
        "     - p99 while training (ms)",
    ]
    for k, label in (
        ("submit", "POST /api/labels"),
        ("pixels", "GET /api/images/{id}/pixels"),
        ("next", "GET /api/next"),
    ):
        a, b = res["latency"][k], res["latency_while_training"][k]
        if a["n"]:
            lines += [
                f"   * - ``{label}``",
                f"     - {a['n']:,}",
                f"     - {_ms(a['p50_ms'])}",
                f"     - {_ms(a['p99_ms'])}",
                f"     - {b['n']:,}",
                f"     - {_ms(b['p99_ms']) if b['n'] else '-'}",
            ]
    lab = res["labels"]
    lines += [
        "",
        f"Errors: {res['errors']}. Labels acknowledged {lab['acknowledged']:,}, stored "
        f"{lab['stored']:,}, lost {lab['lost']}, duplicated {lab['duplicate_image_rater']}. "
        f"Training (and querying) ran during {res['training_seconds']:.0f} of the "
        f"{s['duration']:.0f} s.",
    ]
    if res["turnaround"]:
        lines += [
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - round",
            "     - last label to next batch ready (s)",
            "     - fit (s)",
            "     - query (s)",
        ]
        for t in res["turnaround"]:
            fit, query = (_seconds(t["fit_time"]), _seconds(t["query_time"]))
            lines += [
                f"   * - {t['round']}",
                f"     - {t['seconds']:.1f}",
                f"     - {fit}",
                f"     - {query}",
            ]
    return "\n".join(lines) + "\n"


# -- start-up: seconds from the command to the first answer -------------------------
#: Writes a tiny project with the checkout it runs in (argv: images, project).
_STARTUP_PROJECT = """
import sys
import numpy as np
from pathlib import Path
from PIL import Image
from skal_cxr.labeling import init_project
images = Path(sys.argv[1]); images.mkdir()
rng = np.random.default_rng(0)
for i in range(40):
    Image.fromarray(rng.integers(0, 4096, (32, 32)).astype(np.uint16)).save(images / f"{i}.png")
init_project(sys.argv[2], images, ["normal", "abnormal"], query_size=5, image_size=32,
             model="cnn")
"""


def time_to_first_answer(checkout, project, log):
    """Seconds from ``skal-cxr label serve`` (run in ``checkout``) to its first 200."""
    import httpx

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "skal_cxr.cli", "label", "serve", str(project)]
        + ["--host", "127.0.0.1", "--port", str(port)],
        cwd=checkout,  # ``-m`` puts the checkout first on sys.path
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        while time.perf_counter() - t0 < 300:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError("server did not answer /api/health within 300 s")
    finally:
        stop_server(proc)  # the server this function started, by its process


def startup(args):
    """Median seconds to the first answer, this checkout and the baseline, and their ratio."""
    checkouts = {"baseline": args.baseline.resolve(), "new": HERE.parent}
    seconds = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        root = Path(tmp)
        subprocess.run(
            [sys.executable, "-c", _STARTUP_PROJECT, str(root / "images"), str(root / "p")],
            cwd=checkouts["baseline"],
            check=True,
            capture_output=True,
        )
        for name in checkouts:  # one copy each: the new code may migrate its copy
            shutil.copytree(root / "p", root / name)
        with open(root / "serve.log", "w") as log:
            for _ in range(args.repeats):
                for name, checkout in checkouts.items():
                    seconds[name].append(time_to_first_answer(checkout, root / name, log))
    res = {name: float(np.median(s)) for name, s in seconds.items()}
    res["ratio"] = res["baseline"] / res["new"]
    res["seconds"] = seconds
    print(
        f"'skal-cxr label serve' to its first 200 (median of {args.repeats}): "
        f"baseline {res['baseline']:.2f} s, new {res['new']:.2f} s, "
        f"{res['ratio']:.1f}x sooner"
    )
    print(json.dumps(seconds))
    return res


def main(argv=None):
    args = parse_args(argv)
    if args.startup:
        return startup(args)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_labeling_") as tmp:
        root = Path(tmp)
        path, tokens, truth, init = make_project(root, args)
        relpaths = {
            str(r["id"]): r["relpath"] for r in db_rows(path, "SELECT id, relpath FROM images")
        }
        port = free_port()
        with open(root / "serve.log", "w") as log:
            proc = start_server(path, port, args.threads, log)
            try:
                rec = asyncio.run(run_raters(port, tokens, relpaths, truth, args))
                cpu = cpu_seconds(proc)
            finally:
                stop_server(proc)
        res = summarize(rec, path, args, init, cpu)
        shutil.copy(root / "serve.log", args.out / "labeling_serve.log")
    text = markdown(res)
    (args.out / "labeling.md").write_text(text)
    (args.out / "labeling.rst").write_text(rst(res))
    (args.out / "labeling.json").write_text(json.dumps(res, indent=1))
    print(text)
    print("reStructuredText for docs/benchmarks.rst (also in labeling.rst):\n")
    print(rst(res))
    return res


if __name__ == "__main__":
    main()
