"""The report of ``bench_archive.py``: ``archive_scale.md`` and ``archive_scale.json``."""

import json

from _tables import markdown_table

__all__ = ["write_report"]

_MIB = 2**20


def _tables(result):
    lines = ["# Archive scale", "", f"Machine: {result['machine']}", ""]
    lines += ["## Cache build (decode + resize to 64 px)", ""]
    lines += markdown_table(
        ["what", "seconds", "images/s"],
        ([r["what"], f"{r['seconds']:.1f}", f"{r['images_per_s']:.0f}"] for r in result["build"]),
        align=["---", "---:", "---:"],
        spaced=True,
    )
    lines += ["", "## MC scoring throughput (BALD): from the cache vs from RAM", ""]
    lines += markdown_table(
        ["model", "images", "T", "cache img/s", "RAM img/s", "cache / RAM"],
        (
            [r["what"], r["n"], r["T"], f"{r['cache_images_per_s']:.0f}"]
            + [f"{r['ram_images_per_s']:.0f}", f"{r['cache_over_ram']:.2f}"]
            for r in result["scoring"]
        ),
        align=["---"] + ["---:"] * 5,
        spaced=True,
    )
    lines += ["", "## Peak RSS while scoring from the cache (fresh process)", ""]
    lines += markdown_table(
        ["pool", "peak RSS (MiB)", "seconds"],
        ([r["n"], f"{r['peak_rss'] / _MIB:.0f}", f"{r['seconds']:.1f}"] for r in result["rss"]),
        align=["---:"] * 3,
        spaced=True,
    )
    return lines


def _cli_table(result):
    n, ram = result["n_images"], result["n_images"] * 64 * 64 * 4 / _MIB
    lines = [
        "",
        "## The command line end to end (fresh process each)",
        "",
        f"On the {n} files of the folder, read through the 64 px image cache; the "
        f"pool as float32 in memory would take {ram:.0f} MiB.",
        "",
    ]
    return lines + markdown_table(
        ["step", "seconds", "peak RSS (MiB)"],
        ([r["what"], f"{r['seconds']:.1f}", f"{r['peak_rss'] / _MIB:.0f}"] for r in result["cli"]),
        align=["---", "---:", "---:"],
        spaced=True,
    )


def write_report(result, out):
    """Write ``archive_scale.json`` and ``archive_scale.md`` to ``out``.

    Parameters
    ----------
    result : dict
        Every measurement of the run (``build``, ``scoring``, ``rss``,
        ``cli``, ``cost_1m``, ``machine``, ``n_images``).
    out : pathlib.Path
        Folder, made if missing.

    Returns
    -------
    text : str
        The Markdown report.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "archive_scale.json").write_text(json.dumps(result, indent=2))
    lines = _tables(result)
    if result.get("cli"):
        lines += _cli_table(result)
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
