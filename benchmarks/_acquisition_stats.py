"""The derived numbers of ``bench_acquisition.py``: ratios, speed targets, scale fits.

All work on the records of :func:`_acquisition.run_grid` and need no model.
"""

import numpy as np
from _timing import MIB

__all__ = ["TARGET_FLOOR_RATIO", "TARGET_SPEEDUP", "add_ratios", "check_targets", "scale_analysis"]

TARGET_FLOOR_RATIO = 1.3  # ours <= 1.3 x one deterministic pass
TARGET_SPEEDUP = 10.0  # ours >= 10x faster than the naive loop and modAL


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
