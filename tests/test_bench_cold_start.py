"""The labeling cold-start benchmark (benchmarks/bench_cold_start.py): analysis and a smoke run."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cold_start.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("bench_cold_start", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCH.parent))


def test_compare_pairs_the_seeds_both_methods_have(bench):
    records = [
        {"method": "typicality", "n_labeled": 20, "seed": s, "auroc": a}
        for s, a in [(0, 0.90), (1, 0.92), (2, 0.95)]
    ] + [
        {"method": "random", "n_labeled": 20, "seed": s, "auroc": a}
        for s, a in [(0, 0.80), (1, 0.90)]  # seed 2 missing: not paired
    ]
    result = bench.compare(records, "typicality", "random", 20)
    assert result["n"] == 2
    assert result["diff"] == pytest.approx((0.10 + 0.02) / 2)
    assert bench.by_seed(records, "random", 20) == {0: 0.80, 1: 0.90}
    assert bench.by_seed(records, "random", 40) == {}


@pytest.mark.slow
def test_a_quick_run_draws_every_batch_and_analyses_it(bench, tmp_path):
    result = bench.main(["--quick", "--seeds", "1", "--out", str(tmp_path)])
    records = bench.load_records(tmp_path)
    assert len(records) == len(bench.METHODS) * len(bench.SIZES)
    for r in records:  # each batch is the declared size, drawn from the pool
        assert sum(r["class_counts"]) == r["n_labeled"] and 0 <= r["auroc"] <= 1
    assert set(result["primary"]) == {"typicality vs random", "typicality vs k_center"}
    # a rerun skips what is recorded
    bench.main(["--quick", "--seeds", "1", "--out", str(tmp_path)])
    assert len(bench.load_records(tmp_path)) == len(records)
    # ... but never takes another data set's records as its own
    with pytest.raises(SystemExit, match="pneumoniamnist"):
        bench.main(["--quick", "--seeds", "1", "--data", "imbalanced", "--out", str(tmp_path)])
    assert np.isfinite([r["auroc"] for r in records]).all()
