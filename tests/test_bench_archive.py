"""Smoke test of benchmarks/bench_archive.py at toy size (the numbers mean nothing)."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_tiny_archive_run_writes_every_table(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location("bench_archive", BENCH_DIR / "bench_archive.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(
        [
            "--tiny",
            "--work",
            str(tmp_path / "work"),
            "--out",
            str(tmp_path / "out"),
            "--threads",
            "1",
        ]
    )
    text = (tmp_path / "out" / "archive_scale.md").read_text()
    for section in (
        "## Cache build",
        "## MC scoring throughput",
        "## Peak RSS",
        "## The command line end to end",
        "## A 1M-image pool",
    ):
        assert section in text
    # simulate, label init and a labeling round, each a process of its own
    assert [r["what"].split(":")[0].split(" (")[0] for r in result["cli"]] == [
        "skal-cxr simulate",
        "skal-cxr label init",
        "labeling round 1",
    ]
    assert all(r["peak_rss"] > 0 and r["seconds"] > 0 for r in result["cli"])
    assert result["cli"][2]["round"] == 1 and result["cli"][2]["n_labeled"] == 10
    assert [r["n"] for r in result["rss"]] == [50, 100]
    assert all(r["peak_rss"] > 0 for r in result["rss"])
    assert len(json.loads((tmp_path / "out" / "archive_scale.json").read_text())["scoring"]) == 2
    assert not any(p.suffix == ".png" for p in BENCH_DIR.rglob("*"))  # nothing in the repo
