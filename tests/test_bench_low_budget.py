"""Known answers of the low-budget study's analysis (benchmarks/bench_low_budget.py).

The study lives in ``benchmarks/_low_budget.py``, its analysis in
``_low_budget_analysis.py`` and its records in ``_records.py``.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from skal_cxr.report import holm

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
BENCH = BENCH_DIR / "bench_low_budget.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_low_budget", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_low_budget"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_low_budget", None)


@pytest.fixture(scope="module")
def analysis(bench):  # the script put benchmarks/ on the path
    import _low_budget_analysis

    return _low_budget_analysis


@pytest.fixture(scope="module")
def store(bench):
    import _records

    return _records


@pytest.fixture(scope="module")
def study(bench):
    import _low_budget

    return _low_budget


def test_labels_to_target_and_censoring(study, analysis):
    curve = {10: 0.80, 20: 0.95, 30: 0.93, 40: 0.97}
    assert analysis.labels_to(curve, 0.94, censored=110) == 20
    assert analysis.labels_to(curve, 0.99, censored=110) == 110
    assert study.checkpoints(40) == [10, 20, 30, 40]
    assert study.checkpoints(20, max_labels=120) == [10, 20, 70, 120]


def _records(arm, seed, aurocs):
    return [
        {"arm": arm, "seed": seed, "n_labeled": n, "auroc": a}
        for n, a in zip(range(10, 10 * len(aurocs) + 1, 10), aurocs)
    ]


def test_compare_known_answer(analysis):
    records = []
    for seed in range(4):
        records.append({"arm": "full", "seed": seed, "n_labeled": 100, "auroc": 1.0})
        # the strategy reaches 0.98 at 20 labels, random at 40 (seed 3: never)
        records += _records("s", seed, [0.90, 0.98 + seed / 1000, 0.98, 0.99])
        last = 0.97 if seed == 3 else 0.985
        records += _records("random", seed, [0.80, 0.90 - seed / 100, 0.95, last])
    out = analysis.compare(records, "s", budget=40)
    labels = out["labels_to_98"]
    assert labels["mean_a"] == 20 and labels["mean_b"] == (40 * 3 + 50) / 4
    assert out["censored"] == {"s": 0, "random": 1}
    d = np.array([0.08, 0.091, 0.102, 0.113])
    assert out["auroc_20"]["diff"] == pytest.approx(d.mean())
    assert out["auroc_20"]["p_t"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert out["auroc_20"]["p_wilcoxon"] == pytest.approx(0.125)  # 2 / 2^4, exact
    lo, hi = out["auroc_20"]["ci"]
    assert d.min() <= lo <= d.mean() <= hi <= d.max()
    assert out["auroc_40"]["diff"] == pytest.approx((3 * 0.005 + 0.02) / 4)
    # Holm over the three endpoints' paired t p-values
    raw = [out[k]["p_t"] for k in ("labels_to_98", "auroc_20", "auroc_40")]
    np.testing.assert_allclose(
        [out[k]["p_t_holm"] for k in ("labels_to_98", "auroc_20", "auroc_40")], holm(raw)
    )


def test_aulc_comparison_known_answer(analysis):
    points = [10, 20, 70, 120]  # checkpoints(20, max_labels=120)
    records = []
    for seed in range(3):
        for n, a, b in zip(points, [0.8, 0.9, 0.9, 1.0], [0.8, 0.8, 0.9, 0.9]):
            records.append({"arm": "s", "seed": seed, "n_labeled": n, "auroc": a + seed / 100})
            records.append({"arm": "random", "seed": seed, "n_labeled": n, "auroc": b})
    # a run stopped part-way (no 120-label checkpoint) is left out, not scored
    records.append({"arm": "s", "seed": 3, "n_labeled": 10, "auroc": 0.0})
    records.append({"arm": "random", "seed": 3, "n_labeled": 10, "auroc": 0.0})
    records.append({"arm": "full", "seed": 0, "n_labeled": 500, "auroc": 1.0})
    out = analysis.aulc_comparison(records)
    assert out["range"] == [10, 120]
    # trapezoids / 110: s = (8.5 + 45 + 47.5) / 110, random = (8 + 42.5 + 45) / 110
    s = np.array([101 / 110 + k / 100 for k in range(3)])
    r = 95.5 / 110
    assert out["s"]["n"] == 3
    assert out["s"]["mean_a"] == pytest.approx(s.mean())
    assert out["s"]["mean_b"] == pytest.approx(r)
    assert out["s"]["p_t"] == pytest.approx(stats.ttest_1samp(s - r, 0).pvalue)
    assert out["s"]["p_t_holm"] == pytest.approx(out["s"]["p_t"])  # one arm: Holm is p


def test_compare_at_budget_known_answer(analysis):
    records = []
    for seed in range(4):
        for arm, auprc, mae in (("s", 0.9 + seed / 100, 0.3), ("random", 0.8, 0.3 + seed / 10)):
            for n in (90, 100):  # only the budget's checkpoint counts
                value = auprc if n == 100 else 0.0
                records.append(
                    {"arm": arm, "seed": seed, "n_labeled": n, "auprc": value, "mae": mae}
                )
    out = analysis.compare_at_budget(records, "s", ("auprc", "mae"), budget=100)
    assert out["auprc"]["diff"] == pytest.approx(0.1 + 0.015)
    assert out["mae"]["diff"] == pytest.approx(-0.15)
    p = [stats.ttest_1samp(d, 0).pvalue for d in ([0.1, 0.11, 0.12, 0.13], [0, -0.1, -0.2, -0.3])]
    assert [out[k]["p_t"] for k in ("auprc", "mae")] == pytest.approx(p)
    np.testing.assert_allclose([out[k]["p_t_holm"] for k in ("auprc", "mae")], holm(p))


def test_a_run_refuses_records_of_another_configuration(store, bench, tmp_path):
    # records of PneumoniaMNIST to 20 labels; a phantoms run into the same
    # folder must not take them as its own (it skipped every (arm, seed) it found)
    records = _records("random", 0, [0.8, 0.9])
    for r in records:
        r["data"] = "pneumoniamnist"
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    argv = ["--arms", "random", "--seeds", "1", "--budget", "20", "--quick", "--out"]
    with pytest.raises(SystemExit, match="pneumoniamnist"):
        bench.main(["--data", "phantoms", *argv, str(tmp_path)])
    # the same data continued to 120 labels is another configuration too
    store.write_run_config(tmp_path, {"data": "phantoms", "checkpoints": [10, 20], "quick": True})
    with pytest.raises(SystemExit, match="checkpoints"):
        bench.main(["--data", "phantoms", "--max-labels", "120", *argv, str(tmp_path)])


def test_default_output_folder_is_per_configuration(bench):
    folders = {bench.default_out(d, m) for d in ("pneumoniamnist", "phantoms") for m in (0, 300)}
    assert len(folders) == 4


def test_a_folder_from_before_run_json_is_checked_on_its_records(store, tmp_path):
    records = _records("random", 0, [0.8, 0.9]) + [{"arm": "full", "seed": 0, "n_labeled": 9}]
    for r in records:
        r["data"] = "phantoms"
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = {"data": "phantoms", "checkpoints": [10, 20, 70], "quick": False}
    with pytest.raises(SystemExit, match="checkpoints"):  # a continuation to 70 labels
        store.check_run_config(tmp_path, config)
    assert not (tmp_path / "run.json").exists()
    config["checkpoints"] = [10, 20]
    store.check_run_config(tmp_path, config)  # the same run: accepted and recorded
    assert json.loads((tmp_path / "run.json").read_text()) == config
