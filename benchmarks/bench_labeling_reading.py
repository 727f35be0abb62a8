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

Run from the repository root::

    python benchmarks/bench_labeling_reading.py            # 12 films 3520x4280, 10 presses
    python benchmarks/bench_labeling_reading.py --quick    # smaller, for a smoke run
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
    args = p.parse_args(argv)
    if args.quick:
        args.width, args.height, args.films, args.presses = 1500, 1800, 10, 8
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


def serve(path, log):
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "skal_cxr.cli", "label", "serve", str(path), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
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


def key_to_paint(args, root):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from skal_cxr.labeling import init_project

    phantom_films(root / "films", args.films, args.width, args.height)
    project = init_project(
        root / "study", root / "films", CLASSES, query_size=args.query_size, image_size=16
    )
    token = project.add_rater("reader")
    with open(root / "serve.log", "w") as log:
        proc, base, startup = serve(root / "study", log)
    chromium = os.environ.get("SKAL_CXR_CHROMIUM") or shutil.which("chromium")
    kinds = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
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
    }


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


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        res = {"key_to_paint": key_to_paint(args, Path(tmp))}
        res["bytes_8bit"] = eight_bit_bytes(args, Path(tmp))
    (args.out / "labeling_reading.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
