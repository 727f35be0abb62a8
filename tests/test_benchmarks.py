"""Smoke test of the benchmarks: each one runs at tiny size so it cannot rot.

The timings mean nothing at this size; only that every method, table and
file is produced is checked. baal's columns are skipped when baal is not
installed; modAL's run (the test environment installs modAL-python).
"""

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH_DIR))
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_acquisition", BENCH_DIR / "bench_acquisition.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH_DIR))


@pytest.fixture(scope="module")
def tiny_run(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # baal's structlog use
        return bench.main(["--tiny", "--out", str(out)]), out


@pytest.mark.slow
def test_tiny_run_writes_tables(tiny_run):
    result, out = tiny_run
    text = (out / "acquisition_speed.md").read_text()
    for section in (
        "## Time to score the pool",
        "## Targets",
        "## Same quantity?",
        "## Batch acquisition",
        "## Scale",
    ):
        assert section in text
    saved = json.loads((out / "acquisition_speed.json").read_text())
    assert len(saved["results"]) == len(result["results"])


@pytest.mark.slow
def test_tiny_run_covers_every_method(tiny_run, bench):
    result, _ = tiny_run
    has_baal = importlib.util.find_spec("baal") is not None
    import _peers

    expected = {k for k, m in _peers.METHODS.items() if m.requires != "baal" or has_baal}
    timed = {r["method"] for r in result["results"] if "seconds" in r}
    assert timed == expected
    assert not [r for r in result["results"] if "error" in r]
    assert all(r["seconds"] > 0 for r in result["results"])
    for r in result["results"]:
        if r["method"] != "floor":
            assert r["score"] in ("bald", "mean_std")
    assert result["targets"], "the targets table is empty"
    if not has_baal:
        assert any("baal" in s for s in result["meta"]["skipped"])


@pytest.mark.slow
def test_tiny_run_agreement_and_batch_strategies(tiny_run):
    result, _ = tiny_run
    methods = {a["method"] for a in result["agreement"]}
    assert {"ours (seed 1)", "naive", "modal"} <= methods
    assert all(np.isfinite(a["pearson_r"]) for a in result["agreement"])
    strategies = {(b["strategy"], b["n_instances"]) for b in result["batch_acquisition"]}
    assert {("batch_bald", 2), ("batch_bald", 5), ("power_bald", 5)} <= strategies
    assert all("seconds" in b for b in result["batch_acquisition"])
    assert {row["method"] for row in result["scale"]["rows"]} == {"ours", "ours_chunked"}


def test_peak_memory_helpers(bench):
    import _timing as T

    assert T.current_rss() > 0
    before = T.peak_rss()
    T.reset_peak_rss()
    assert 0 < T.peak_rss() <= max(before, T.current_rss()) + 2**20


def test_pool_round_trip(bench, tmp_path):
    import _common as C

    X, _ = C.make_pool(30, 16, random_state=0)
    path = tmp_path / "pool.npy"
    C.save_pool(path, X)
    np.testing.assert_array_equal(C.load_pool_head(path, 11), X[:11])


def test_markdown_table_keeps_alignment_and_empty_cells(bench):
    from _tables import markdown_table

    lines = markdown_table(["a", "b", "c"], [[1, "", 2.5], "| written | | row |"])
    assert lines == ["| a | b | c |", "|---|---|---|", "| 1 | | 2.5 |", "| written | | row |"]
    spaced = markdown_table(["n", "s"], [[3, "x"]], align=["---:", "---"], spaced=True)
    assert spaced[1] == "| ---: | --- |"


def test_time_best_counts_calls_and_stops_at_the_budget(bench):
    from _timing import time_best, timed

    calls = []
    best, runs, result = time_best(lambda: calls.append(1) or len(calls), 3, collect=False)
    assert (runs, result, len(calls)) == (3, 3, 3) and best >= 0
    _, runs, _ = time_best(lambda: calls.append(1), 5, budget_s=0.0)
    assert runs == 1  # at least one call, then the budget is spent
    seconds, value = timed(lambda: "done")
    assert value == "done" and seconds >= 0


def test_records_are_appended_and_read_back(bench, tmp_path, capsys):
    from _records import append_records, load_records

    assert load_records(tmp_path) == []
    with open(tmp_path / "records.jsonl", "a") as fh:
        append_records(fh, [{"arm": "a", "seed": 0}, {"arm": "a", "seed": 1}], "two records")
        append_records(fh, [{"arm": "b", "seed": 0}], "one more")
    assert [r["arm"] for r in load_records(tmp_path)] == ["a", "a", "b"]
    assert capsys.readouterr().err.splitlines() == ["two records", "one more"]


@pytest.mark.slow
def test_label_efficiency_tiny_run(pneumoniamnist_path, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "bench_label_efficiency", BENCH_DIR / "bench_label_efficiency.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--tiny", "--quiet", "--n-jobs", "1", "--out", str(tmp_path)])
    table = (tmp_path / "label_efficiency.md").read_text()
    for section in (
        "main: auroc",
        "main: balanced_accuracy_op",
        "batch_bald: auroc",
        "unweighted: auroc",
    ):
        assert f"## {section}" in table
    for strategy in module.STRATEGIES + ["batch_bald", "full data (baseline)"]:
        assert f"| {strategy} |" in table
    assert (tmp_path / "main" / "report.md").is_file()
    assert "label_efficiency.md" not in capsys.readouterr().err


@pytest.mark.slow
def test_score_subset_tiny_run(pneumoniamnist_path, tmp_path):
    """Paired arms with the same seeds; one row per arm, differences against the whole pool."""
    spec = importlib.util.spec_from_file_location(
        "bench_score_subset", BENCH_DIR / "bench_score_subset.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--tiny", "--quiet", "--subsets", "100", "--out", str(tmp_path)])
    assert sorted(results) == ["subset of 100", "whole pool"]
    assert all(sorted(r) == [0, 1] for r in results.values())  # both seeds, both arms
    table = (tmp_path / "score_subset.md").read_text()
    assert "| whole pool |" in table and "| subset of 100 |" in table
    # the subset arm scored a subset: its records say so
    config = (tmp_path / "subset-100" / "config.json").read_text()
    assert '"pool_size": 100' in config


@pytest.mark.slow
def test_labeling_benchmark_tiny_run(tmp_path):
    """Scripted raters through the real server: no error, every acknowledged label stored."""
    spec = importlib.util.spec_from_file_location("bench_labeling", BENCH_DIR / "bench_labeling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--tiny", "--out", str(tmp_path)])
    labels = result["labels"]
    assert result["errors"] == 0, result["error_examples"]
    assert labels["acknowledged"] > 0
    assert labels["lost"] == labels["unacknowledged_rows"] == 0
    assert labels["stored"] == labels["acknowledged"]
    assert labels["duplicate_image_rater"] == 0
    assert result["latency"]["submit"]["n"] == labels["acknowledged"]
    assert "| POST /api/labels |" in (tmp_path / "labeling.md").read_text()
