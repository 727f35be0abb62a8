"""Reading-room benchmark of the labeling page: key press to next film painted, bytes per film.

Builds a labeling project over ``--films`` large 12-bit phantom films
(``--width`` x ``--height``, the size of a large CR detector), serves it with
``skal-cxr label serve`` on a loopback port and drives the rater page in
Chromium (Playwright, Debian's ``/usr/bin/chromium`` or ``SKAL_CXR_CHROMIUM``)
at 1920x1080. The rater labels ``--presses`` films with a key, reading each
for ``--think`` seconds; batches of ``--query-size`` end during the run, so
the film after a batch's last one is measured too. Measured in the page: from
the key's ``keydown`` to the first animation frame after the next film was
drawn (the viewer draws before the page says it is ready), median and p90,
and separately for the first film after the end of a batch.

Then bytes per 8-bit film: ``--films-8bit`` 8-bit JPEG and PNG exports of the
same phantoms, fetched as the page fetches them (``/pixels?format=png``), over
the source file's bytes, and what the earlier 16-bit PNG of the same pixels
would have weighed.

With ``--ref REF`` (a git ref of this repository, e.g. ``main``) the same
films are read twice more, paired: a server of ``REF``'s tree (``git
archive``) and one of this checkout, old then new then new then old
(``--repeats`` pairs), on the same machine state; each side gets a fresh
project of the same films. ``--sizes`` runs several film sizes in one
command. The machine's load (``os.getloadavg``) is recorded before and after
each run, and the server time of every ``/pixels`` answer (its
``Server-Timing`` header, where the server sends one).

Run from the repository root::

    python benchmarks/bench_labeling_reading.py            # 12 films 3520x4280, 10 presses
    python benchmarks/bench_labeling_reading.py --quick    # smaller, for a smoke run
    python benchmarks/bench_labeling_reading.py --ref main --sizes 1500x1800,3520x4280
"""

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's skal_cxr, as the server runs it
CLASSES = ["normal", "moderate", "severe"]

LATENCY_JS = """
() => {
  window.__lat = [];
  document.addEventListener("keydown", (e) => {
    if (!/^[1-9]$/.test(e.key)) return;
    const t0 = performance.now();
    const id0 = window.__viewer.state().imageId;
    const tick = () => {
      const s = window.__viewer.state();
      if (s.imageId && s.imageId !== id0 && !s.busy) {
        requestAnimationFrame(() => window.__lat.push({ ms: performance.now() - t0,
                                                       id: s.imageId }));
      } else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }, true);
}
"""


# the page's performance marks (rater.js): key -> saved (POST /api/labels) -> show -> drawn
MARKS_JS = """
() => {
  const out = {saved: [], show: [], drawn: []};
  let key = null, last = {};
  for (const m of performance.getEntriesByType("mark")) {
    const name = m.name.replace("skal:", "");
    if (name === "key") { key = m.startTime; last = {}; continue; }
    if (key === null || !(name in out) || name in last) continue;
    last[name] = true;
    out[name].push(m.startTime - key);
  }
  return out;
}
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--films", type=int, default=12)
    p.add_argument("--width", type=int, default=3520)
    p.add_argument("--height", type=int, default=4280)
    p.add_argument("--query-size", type=int, default=5)
    p.add_argument("--presses", type=int, default=10)
    p.add_argument("--think", type=float, default=2.0, help="seconds on each film")
    p.add_argument("--films-8bit", type=int, default=5)
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--quick", action="store_true", help="1500x1800 films, 8 presses")
    p.add_argument("--sizes", help="film sizes WxH,WxH,... (instead of --width/--height)")
    p.add_argument("--ref", help="git ref of this repository to compare with, paired")
    p.add_argument("--repeats", type=int, default=1, help="old/new pairs per size (with --ref)")
    args = p.parse_args(argv)
    if args.quick:
        args.width, args.height, args.films, args.presses = 1500, 1800, 10, 8
    sizes = args.sizes.split(",") if args.sizes else [f"{args.width}x{args.height}"]
    args.sizes = [tuple(int(v) for v in size.lower().split("x")) for size in sizes]
    return args


def phantom_films(folder, n, width, height, bits=12, kind="png"):
    """``n`` phantom chests at ``width`` x ``height``: 12-bit PNGs or 8-bit ``kind`` files."""
    from skal_cxr.datasets import make_cxr_phantoms

    folder.mkdir(parents=True, exist_ok=True)
    X, _ = make_cxr_phantoms(n, image_size=256, random_state=0)
    rng = np.random.default_rng(0)
    paths = []
    for i, x in enumerate(np.asarray(X)):
        big = Image.fromarray(x.astype(np.float32), mode="F").resize((width, height))
        arr = np.asarray(big, dtype=np.float64) + rng.normal(0, 0.01, (height, width))
        arr = np.clip(arr, 0, 1)
        if bits == 12:
            img = Image.fromarray(np.round(arr * 4095).astype(np.uint16))
        else:
            img = Image.fromarray(np.round(arr * 255).astype(np.uint8))
        path = folder / f"film_{i:02d}.{kind}"
        img.save(path, **({"quality": 90} if kind == "jpg" else {}))
        paths.append(path)
    return paths


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(path, log, tree=None):
    """``skal-cxr label serve`` of this checkout, or of the source ``tree`` (a folder)."""
    port = free_port()
    t0 = time.perf_counter()
    tree = Path(tree) if tree is not None else HERE.parent
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "skal_cxr.cli", "label", "serve", str(path), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tree,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=2):
                return proc, base, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("the server did not start; see its log") from None
            time.sleep(0.05)


def source_tree(ref, folder):
    """The tracked files of git ``ref`` of this repository, extracted into ``folder``."""
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(HERE.parent), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def key_to_paint(args, root, films=None, tree=None, name="study"):
    """Key press to next film painted, by a server of this checkout or of ``tree``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from skal_cxr.labeling import init_project

    if films is None:
        films = root / "films"
        phantom_films(films, args.films, args.width, args.height)
    project = init_project(root / name, films, CLASSES, query_size=args.query_size, image_size=16)
    token = project.add_rater("reader")
    load_before = os.getloadavg()
    with open(root / f"{name}.log", "w") as log:
        proc, base, startup = serve(root / name, log, tree)
    chromium = os.environ.get("SKAL_CXR_CHROMIUM") or shutil.which("chromium")
    kinds, server_ms = [], []

    def timing(response):
        value = response.headers.get("server-timing", "")
        if "/pixels" in response.url and "dur=" in value:
            server_ms.append(float(value.split("dur=")[1].split(";")[0].split(",")[0]))

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.on("response", timing)
            page.goto(f"{base}/#token={token}")
            page.wait_for_selector(".class-button:not([disabled])", timeout=120_000)
            page.evaluate(LATENCY_JS)
            for _ in range(args.presses):
                page.wait_for_timeout(args.think * 1000)
                kinds.append(page.evaluate("window.__viewer.state().imageId"))
                page.keyboard.press("1")
                try:
                    page.wait_for_function(
                        "(n) => window.__lat.length >= n", arg=len(kinds), timeout=60_000
                    )
                except PlaywrightTimeout:  # no film came (the pool is used up): stop
                    kinds.pop()
                    break
            lat = page.evaluate("window.__lat")
            marks = page.evaluate(MARKS_JS)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    labels = project.labels()  # every film shown was labeled: its queue kind and round
    kind = {int(r["image_id"]): r["queue_kind"] for r in labels}
    rnd = {int(r["image_id"]): r["round"] for r in labels}
    ms = np.array([x["ms"] for x in lat])
    # the first film of a new round's queue, or a reserve film after a batch film
    after_end = [
        x["ms"]
        for prev, x in zip(kinds, lat)
        if (kind.get(int(x["id"])), rnd.get(int(x["id"])))
        != (kind.get(int(prev)), rnd.get(int(prev)))
    ]
    return {
        "films": f"{args.films} x {args.width}x{args.height} 12-bit PNG",
        "presses": len(ms),
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "max_ms": float(ms.max()),
        "after_batch_end_ms": [round(v, 1) for v in after_end],
        "serve_first_answer_s": startup,
        "all_ms": [round(v, 1) for v in ms],
        "server_pixels_ms": [round(v, 1) for v in server_ms],
        # from the key: label saved, the next film handed to the viewer, drawn (medians)
        "key_to_mark_median_ms": {
            k: round(float(np.median(v)), 1) if v else None for k, v in marks.items()
        },
        "load_before_after": [round(v, 2) for v in (*load_before, *os.getloadavg())],
    }


def paired(args, root):
    """Old (``args.ref``) and new servers on the same films, ABBA order, per size."""
    tree = source_tree(args.ref, root / "ref-tree")
    out = []
    for width, height in args.sizes:
        args.width, args.height = width, height
        films = root / f"films-{width}x{height}"
        phantom_films(films, args.films, width, height)
        sides = {"old": [], "new": []}
        for r in range(args.repeats):
            for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                res = key_to_paint(
                    args, root, films, tree if side == "old" else None, f"{side}-{width}-{r}"
                )
                print(
                    f"{width}x{height} {side}: median {res['median_ms']:.0f} ms, "
                    f"p90 {res['p90_ms']:.0f} ms",
                    flush=True,
                )
                sides[side].append(res)
        summary = {"films": f"{args.films} x {width}x{height} 12-bit PNG"}
        for side, runs in sides.items():
            ms = np.concatenate([r["all_ms"] for r in runs])
            ends = [v for r in runs for v in r["after_batch_end_ms"]]
            server = [v for r in runs for v in r["server_pixels_ms"]]
            summary[side] = {
                "median_ms": float(np.median(ms)),
                "p90_ms": float(np.percentile(ms, 90)),
                "after_batch_end_ms": ends,
                "server_pixels_median_ms": float(np.median(server)) if server else None,
                "runs": runs,
            }
        out.append(summary)
    return {"ref": args.ref, "sizes": out}


def eight_bit_bytes(args, root):
    from fastapi.testclient import TestClient

    from skal_cxr.labeling import create_app, init_project
    from skal_cxr.labeling.store._image_files import display_pixels

    out = {}
    for kind in ("jpg", "png"):
        folder = root / f"films8-{kind}"
        phantom_films(folder, args.films_8bit, 2000, 2500, bits=8, kind=kind)
        project = init_project(
            root / f"study8-{kind}", folder, CLASSES, query_size=args.films_8bit, image_size=16
        )
        auth = {"Authorization": f"Bearer {project.add_rater('r')}"}
        client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
        ratios, before = [], []
        for _ in range(args.films_8bit):
            image_id = client.get("/api/next", headers=auth).json()["image_id"]
            rel = project.image_path(image_id).relative_to(folder)
            source = (folder / rel).stat().st_size
            r = client.get(f"/api/images/{image_id}/pixels?format=png&max_size=2048", headers=auth)
            assert r.status_code == 200, r.text
            ratios.append(len(r.content) / source)
            client.post("/api/labels", headers=auth, json={"image_id": image_id, "label": "normal"})
            pixels = display_pixels(folder / rel)[0]
            buf = io.BytesIO()  # what went before: a 16-bit PNG of the same values
            Image.fromarray(pixels.astype(np.uint16)).save(buf, format="PNG", compress_level=1)
            before.append(len(buf.getvalue()) / source)
        out[kind] = {
            "median_sent_over_source": float(np.median(ratios)),
            "median_16bit_png_over_source": float(np.median(before)),
        }
    return out


def uptime():
    """``uptime``'s line: the machine's load while the benchmark ran."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        res = {"uptime_before": uptime()}
        if args.ref:
            res["old_vs_new"] = paired(args, Path(tmp))
        else:
            args.width, args.height = args.sizes[0]
            res["key_to_paint"] = key_to_paint(args, Path(tmp))
        res["bytes_8bit"] = eight_bit_bytes(args, Path(tmp))
        res["uptime_after"] = uptime()
    (args.out / "labeling_reading.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
