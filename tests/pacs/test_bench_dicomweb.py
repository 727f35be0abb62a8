"""Smoke test of benchmarks/bench_dicomweb.py at toy size (the numbers mean nothing)."""

import importlib.util
import json
from pathlib import Path

import pytest
from _orthanc import orthanc_missing

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def test_tiny_dicomweb_run_writes_its_table(tmp_path, monkeypatch):
    if orthanc_missing():
        pytest.skip(orthanc_missing())
    pytest.importorskip("dicomweb_client")
    spec = importlib.util.spec_from_file_location("bench_dicomweb", BENCH_DIR / "bench_dicomweb.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(
        ["--tiny", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    )
    assert [r["n"] for r in result["rows"]] == [12, 12, 12, 12, 12, 4]
    assert all(r["seconds"] > 0 for r in result["rows"])
    assert "| all 12 films" in (tmp_path / "out" / "dicomweb.md").read_text()
    assert json.loads((tmp_path / "out" / "dicomweb.json").read_text())["rows"]
