"""Bytes and time of one film sent to the labeling page: raw uint16 against 16-bit PNG.

Builds a 4280 x 3520 12-bit film (a phantom chest, smooth, upsampled, with
Gaussian quantum noise of ``--noise`` stored values; real detectors differ,
and the PNG ratio depends on the noise), then measures what
``GET /api/images/{id}/pixels`` costs the server and the link in each form:

* ``raw``: little-endian uint16, as the page received every film before;
* ``png``: the full film as a lossless 16-bit greyscale PNG (zlib level 1);
* ``png max_size=N``: the display-size version the page asks for first
  (area-averaged to N pixels on the longest side), the full film following
  only when the rater zooms past it or uses the loupe.

For each: bytes, server time to encode (the first request; later ones are
read from the project's ``previews/`` cache) and transfer time at 100 and
20 Mbit/s. Writes ``transfer.md`` and ``transfer.json`` to ``--out``.

    python benchmarks/bench_transfer.py --out results/
"""

import argparse
import json
from pathlib import Path

import numpy as np
from _timing import time_best
from PIL import Image

from skal_cxr.datasets import make_cxr_phantoms
from skal_cxr.labeling.store._image_files import pixels_png16


def film(width, height, noise, seed=0):
    """A 12-bit phantom chest film of ``width`` x ``height`` with Gaussian noise."""
    X, _ = make_cxr_phantoms(1, image_size=256, random_state=seed)
    base = Image.fromarray(np.asarray(X[0], dtype=np.float32) * 3000, mode="F").resize(
        (width, height), Image.Resampling.BICUBIC
    )
    rng = np.random.default_rng(seed)
    arr = np.asarray(base) + 200 + rng.normal(0, noise, (height, width))
    return np.clip(np.round(arr), 0, 4095).astype(np.uint16)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4280)
    parser.add_argument("--height", type=int, default=3520)
    parser.add_argument(
        "--noise",
        type=float,
        default=15.0,
        help="standard deviation of the noise, in stored values (15)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args(argv)

    pixels = film(args.width, args.height, args.noise)
    rows = []
    seconds, _, data = time_best(lambda: pixels.astype("<u2").tobytes(), args.repeat, collect=False)
    rows.append({"form": "raw uint16", "bytes": len(data), "encode_s": seconds})
    for max_size in (None, 2048, 1024):
        seconds, _, (data, size) = time_best(
            lambda m=max_size: pixels_png16(pixels, m), args.repeat, collect=False
        )
        name = "png 16-bit" + ("" if max_size is None else f", max_size={max_size}")
        rows.append({"form": name, "size": list(size), "bytes": len(data), "encode_s": seconds})
    for r in rows:
        r["s_at_100mbit"] = r["bytes"] * 8 / 100e6
        r["s_at_20mbit"] = r["bytes"] * 8 / 20e6
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transfer.json").write_text(
        json.dumps(
            {"width": args.width, "height": args.height, "noise": args.noise, "rows": rows},
            indent=2,
        )
    )
    lines = [
        "| form | pixels | MB | encode (s) | at 100 Mbit/s (s) | at 20 Mbit/s (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        size = r.get("size", [args.width, args.height])
        lines.append(
            f"| {r['form']} | {size[0]} x {size[1]} | {r['bytes'] / 1e6:.1f} | "
            f"{r['encode_s']:.2f} | {r['s_at_100mbit']:.2f} | {r['s_at_20mbit']:.2f} |"
        )
    (args.out / "transfer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
