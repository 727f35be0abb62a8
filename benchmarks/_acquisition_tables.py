"""The Markdown report of ``bench_acquisition.py`` (``acquisition_speed.md``)."""

from functools import partial

from _peers import METHODS, SCORE_LABELS
from _tables import markdown_table

from skal_cxr.report import format_value

__all__ = ["render_markdown"]

#: a table cell: three decimals unless ``spec`` says otherwise, "n/a" when missing
_f = partial(format_value, spec=".3f", missing="n/a")


def _yes(flag):
    return "yes" if flag else "NO"


def _header(meta, records):
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
    return L


def _timing_rows(records):
    for r in records:
        head = [r["image_size"], r["n"], SCORE_LABELS.get(r["score"], "-")]
        head.append(METHODS[r["method"]].label)
        if "error" in r:
            yield head + [f"failed: {r['error']}", "", "", "", ""]
            continue
        yield head + [
            f"{r['seconds']:.4f}",
            r["runs"],
            _f(r.get("ours_over_method")),
            _f(r.get("method_over_floor"), spec=".2f"),
            _f(r.get("peak_mib"), spec=".1f"),
        ]


def _batch_rows(batch_rows):
    for b in batch_rows:
        head = [b["image_size"], b["n"], b["n_instances"], b["strategy"]]
        if "error" in b:
            yield head + [b["error"], "", ""]
        else:
            yield head + [f"{b['seconds']:.4f}", b["runs"], f"{b['vs_bald']:.2f}"]


def _scale_section(scale):
    x = scale["extrapolate_to"]
    L = [
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
    ]
    L += markdown_table(
        ["image", "method", "pool", "seconds", "peak MiB", "samples MiB"],
        (
            [
                row["image_size"],
                row["method"],
                p["n"],
                f"{p['seconds']:.4f}",
                _f(p["peak_mib"], spec=".1f"),
                f"{p['samples_mib']:.2f}",
            ]
            for row in scale["rows"]
            for p in row["points"]
        ),
    )
    L.append("")
    L += markdown_table(
        ["image", "method", "s per 1k images", f"s at {x:,}", "bytes per image"]
        + [f"peak MiB at {x:,}", f"samples MiB at {x:,}", "bounded"],
        (
            [
                row["image_size"],
                row["method"],
                _f(row.get("seconds_per_1k")),
                _f(row.get("seconds_at_extrapolate"), spec=".1f"),
                _f(row.get("bytes_per_image"), spec=".0f"),
                _f(row.get("peak_mib_at_extrapolate"), spec=".1f"),
                f"{row['samples_mib_at_extrapolate']:.1f}",
                "n/a" if row.get("bounded") is None else _yes(row["bounded"]),
            ]
            for row in scale["rows"]
        ),
    )
    return L


def render_markdown(meta, records, targets, agreement, batch_rows, scale):
    """``acquisition_speed.md``: timings, targets, agreement, batch acquisition, scale.

    Parameters
    ----------
    meta : dict
        The run's settings and machine.
    records, targets, agreement, batch_rows : list of dict
        The rows of each table, as in ``acquisition_speed.json``.
    scale : dict
        :func:`_acquisition_stats.scale_analysis`'s result.

    Returns
    -------
    text : str
    """
    L = _header(meta, records)
    L += [
        "",
        "## Time to score the pool",
        "",
        "`ours/method` < 1: ours is faster. `method/floor`: cost in deterministic passes.",
        "",
    ]
    L += markdown_table(
        ["image", "pool", "score", "method", "seconds", "runs", "ours/method"]
        + ["method/floor", "peak MiB"],
        _timing_rows(records),
    )
    L += ["", "## Targets", ""]
    L += markdown_table(
        ["image", "pool", "score", "target", "value", "met"],
        (
            [t["image_size"], t["n"], SCORE_LABELS[t["score"]], t["target"]]
            + [f"{t['value']:.2f}", _yes(t["met"])]
            for t in targets
        ),
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
    ]
    L += markdown_table(
        ["image", "score", "method", "r", "agrees"],
        (
            [a["image_size"], SCORE_LABELS[a["score"]], a["method"]]
            + [f"{a['pearson_r']:.4f}", _yes(a["agrees"])]
            for a in agreement
        ),
    )
    L += [
        "",
        "## Batch acquisition (BatchBALD, PowerBALD)",
        "",
        "Whole query (MC sampling + selection) through the strategy; pool_size=None "
        f"(the whole pool), BatchBALD max_configurations={meta['max_configurations']}. "
        "`/ bald` is the time relative to top-k BALD on the same pool.",
        "",
    ]
    L += markdown_table(
        ["image", "pool", "n_instances", "strategy", "seconds", "runs", "/ bald"],
        _batch_rows(batch_rows),
    )
    L += _scale_section(scale)
    return "\n".join(L) + "\n"
