"""Smoke test of benchmarks/bench_samplers.py at a tiny size (figures mean nothing here)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_samplers.py"


def _module():
    spec = importlib.util.spec_from_file_location("bench_samplers", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_set_has_the_requested_imbalance():
    bench = _module()
    y = np.array([0] * 300 + [1] * 700)
    idx = bench.training_set(y, 200, 0.10, seed=0)
    assert len(idx) == len(np.unique(idx)) == 200 and np.sum(y[idx] == 0) == 20
    idx = bench.training_set(y, 200, None, seed=0)  # the data's own imbalance
    assert np.sum(y[idx] == 0) == 60


@pytest.mark.slow
def test_tiny_run_writes_every_arm_and_setting(tmp_path):
    bench = _module()
    bench.main(
        [
            "--seeds",
            "2",
            "--n-train",
            "40",
            "--max-epochs",
            "1",
            "--min-train-steps",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    result = json.loads((tmp_path / "samplers.json").read_text())
    assert len(result["rows"]) == 2 * 3 * 2  # settings x arms x seeds
    arms = {(s["setting"], s["metric"], s["arm"]) for s in result["summary"]}
    assert len(arms) == 2 * 2 * 3
    for s in result["summary"]:
        assert 0 <= s["mean"] <= 1
        assert (s["diff_vs_none"] is None) == (s["arm"] == "none")
    assert (tmp_path / "samplers.png").stat().st_size > 0
    assert "| hard | auroc | oversample |" in (tmp_path / "samplers.md").read_text()
