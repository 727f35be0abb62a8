"""Tests of skal_cxr.report: its numbers are recomputed from the records."""

import csv
import json

import numpy as np
import pytest
from scipy import stats

from skal_cxr._results import RecordWriter, read_records, record_path
from skal_cxr.report import (
    area_under_learning_curve,
    labels_to_reach,
    make_report,
    paired_comparison,
    summarize,
)

SCHEDULE = [10, 20, 30]
N_POOL = 100


def _record(strategy, seed, r, auroc, kind="active"):
    n = SCHEDULE[r] if kind == "active" else N_POOL
    return {
        "kind": kind,
        "strategy": strategy,
        "seed": seed,
        "round": r,
        "n_labeled": n,
        "frac_labeled": n / N_POOL,
        "class_counts": [n // 2, n - n // 2],
        "queried": list(range(10)) if kind == "active" and r < 2 else [],
        "queried_counts": [5, 5],
        "n_epochs": 1,
        "fit_time": 1.0 + r,
        "query_time": 0.5,
        "eval_time": 0.1,
        "operating_point": [1.0, 1.0],
        "metrics": {
            "auroc": auroc,
            "balanced_accuracy": auroc - 0.1,
            "balanced_accuracy_op": auroc - 0.05,
            "ece": 0.1,
            "auprc": auroc,
        },
    }


@pytest.fixture
def results(tmp_path):
    """A results folder with hand-made records of known learning curves."""
    curves = {
        "random": {0: [0.60, 0.70, 0.80], 1: [0.62, 0.70, 0.78], 2: [0.58, 0.66, 0.80]},
        "bald": {0: [0.60, 0.80, 0.90], 1: [0.62, 0.78, 0.86], 2: [0.58, 0.82, 0.91]},
    }
    for strategy, by_seed in curves.items():
        for seed, values in by_seed.items():
            with RecordWriter(record_path(tmp_path, "active", strategy, seed)) as w:
                for r, v in enumerate(values):
                    w.write(_record(strategy, seed, r, v))
    for seed, v in {0: 0.9, 1: 0.9, 2: 0.95}.items():
        with RecordWriter(record_path(tmp_path, "baseline", None, seed)) as w:
            w.write(_record("full_data", seed, 0, v, kind="baseline"))
    # an incomplete run is left out
    with RecordWriter(record_path(tmp_path, "active", "bald", 3)) as w:
        w.write(_record("bald", 3, 0, 0.5))
    config = {
        "data": {"source": "phantoms"},
        "strategies": ["random", "bald"],
        "seeds": [0, 1, 2, 3],
        "budget": 30,
        "n_mc_samples": 5,
        "class_weight": None,
        "warm_start": False,
        "estimator": {"batch_size": 8},
        "training": {"min_train_steps": 1, "max_epochs": 2},
    }
    resolved = {
        "schedule": SCHEDULE,
        "n_pool": N_POOL,
        "n_val": 10,
        "n_test": 20,
        "classes": ["a", "b"],
        "pool_class_counts": [50, 50],
        "test_class_counts": [10, 10],
        "split": "stratified",
        "ordinal": True,
    }
    (tmp_path / "config.json").write_text(
        json.dumps({"config": config, "resolved": resolved, "skal_cxr_version": "0"})
    )
    return tmp_path, curves


def test_area_under_learning_curve():
    assert area_under_learning_curve([0.1, 0.2, 0.3], [0.5, 0.7, 0.7]) == pytest.approx(0.65)
    assert area_under_learning_curve([0.1], [0.4]) == 0.4
    assert area_under_learning_curve([0, 1], [1, 1]) == 1.0


def test_labels_to_reach():
    assert labels_to_reach([10, 20, 30], [0.5, 0.9, 0.95], 0.9) == 20
    assert labels_to_reach([10, 20, 30], [0.5, 0.6, 0.7], 0.9) is None


def test_paired_comparison():
    a, b = [0.8, 0.85, 0.9, 0.7], [0.7, 0.8, 0.8, 0.69]
    out = paired_comparison(a, b)
    assert out["mean_diff"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert out["p_wilcoxon"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert out["p_ttest"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    # 3 seeds all in favour: the exact two-sided Wilcoxon p is 2 / 2**3
    assert paired_comparison([1, 2, 3], [0, 0, 0])["p_wilcoxon"] == pytest.approx(0.25)
    # every difference zero: nothing tells them apart, p = 1 (one answer everywhere)
    assert paired_comparison([1, 2], [1, 2])["p_wilcoxon"] == 1.0
    assert np.isnan(paired_comparison([1], [0])["p_ttest"])


def test_summary_known_answers(results):
    folder, curves = results
    rows = {r["strategy"]: r for r in summarize(read_records(folder), SCHEDULE)}
    assert list(rows) == ["random", "bald", "full_data"]
    x = [0.1, 0.2, 0.3]
    aulc = {s: [area_under_learning_curve(x, curves[s][k]) for k in range(3)] for s in curves}
    assert rows["bald"]["n_seeds"] == 3  # the incomplete seed 3 is left out
    assert rows["bald"]["aulc_mean"] == pytest.approx(np.mean(aulc["bald"]))
    assert rows["bald"]["aulc_std"] == pytest.approx(np.std(aulc["bald"], ddof=1))
    # 95% of the baselines 0.9, 0.9, 0.95 (0.855, 0.855, 0.9025): bald reaches it at 30
    assert rows["bald"]["labels_to_95_mean"] == 30 and rows["bald"]["labels_to_95_reached"] == 3
    assert rows["random"]["labels_to_95_reached"] == 0
    assert np.isnan(rows["random"]["labels_to_95_mean"])
    assert rows["bald"]["labels_to_100_reached"] == 1  # only seed 0: 0.9 >= 0.9
    assert rows["bald"]["final_auroc_mean"] == pytest.approx(np.mean([0.9, 0.86, 0.91]))
    assert rows["bald"]["fit_time_mean"] == pytest.approx(2.0)
    assert rows["bald"]["query_time_mean"] == pytest.approx(0.5)
    diff = np.subtract(aulc["bald"], aulc["random"])
    assert rows["bald"]["aulc_diff_vs_random"] == pytest.approx(diff.mean())
    assert rows["bald"]["p_wilcoxon"] == pytest.approx(0.25)
    t_test = stats.ttest_rel(aulc["bald"], aulc["random"])
    assert rows["bald"]["p_ttest"] == pytest.approx(t_test.pvalue)
    assert rows["full_data"]["final_auroc_mean"] == pytest.approx(np.mean([0.9, 0.9, 0.95]))


def test_make_report_files_match_summary(results):
    folder, _ = results
    paths = make_report(folder)
    for key in ("report", "summary", "figure"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    assert paths["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(paths["summary"]) as f:
        table = {row["strategy"]: row for row in csv.DictReader(f)}
    expected = {r["strategy"]: r for r in summarize(read_records(folder), SCHEDULE)}
    for strategy, row in expected.items():
        for key, value in row.items():
            if isinstance(value, float) and not np.isnan(value):
                assert float(table[strategy][key]) == value, (strategy, key)
    text = paths["report"].read_text()
    assert "| bald | 3 |" in text and "1 incomplete run(s) left out" in text
    assert "cannot fall below 0.25 with 3 seeds" in text
    assert f"{expected['bald']['aulc_mean']:.3f} ± {expected['bald']['aulc_std']:.3f}" in text
    make_report(folder, metric="balanced_accuracy_op", targets=(0.9,))
    with pytest.raises(ValueError, match="unknown metric"):
        make_report(folder, metric="nope")


def test_make_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        make_report(tmp_path)


def test_a_nan_metric_is_counted_honestly(results):
    """A seed whose curve has a NaN has no AULC: the table says over how many seeds."""
    folder, curves = results
    path = record_path(folder, "active", "bald", 1)
    lines = path.read_text().splitlines(keepends=True)
    rec = json.loads(lines[1])
    rec["metrics"]["auroc"] = float("nan")
    path.write_text(lines[0] + json.dumps(rec) + "\n" + lines[2])
    rows = {r["strategy"]: r for r in summarize(read_records(folder), SCHEDULE)}
    x = [0.1, 0.2, 0.3]
    finite = [area_under_learning_curve(x, curves["bald"][s]) for s in (0, 2)]
    assert rows["bald"]["n_seeds"] == 3 and rows["bald"]["aulc_n_seeds"] == 2
    assert rows["bald"]["aulc_mean"] == pytest.approx(np.mean(finite))
    random = [area_under_learning_curve(x, curves["random"][s]) for s in (0, 2)]
    assert rows["bald"]["aulc_diff_vs_random"] == pytest.approx(
        np.mean(np.subtract(finite, random))
    )  # paired over the two seeds with an AULC
    text = make_report(folder)["report"].read_text()
    assert "(over 2 of 3 seeds; the others have a NaN auroc)" in text
    assert "Two-sided tests over 2 paired seeds" in text


def test_report_lists_the_records_it_left_out(results):
    from skal_cxr._results import RecordsWarning

    folder, _ = results
    path = record_path(folder, "active", "random", 2)
    path.write_bytes(path.read_bytes() + b"[1, 2]\n")
    (folder / "records" / "notes.jsonl").write_text("hello\n")
    with pytest.warns(RecordsWarning):
        paths = make_report(folder)
    text = paths["report"].read_text()
    assert "## Problems found in the records (2)" in text
    assert "random-seed2.jsonl line 4: a JSON list, not a record." in text
    assert "| random | 3 |" in text  # the valid rounds of seed 2 still count


def test_labels_to_target_and_headline_known_answers(results):
    from skal_cxr.report import headline, labels_to_target
    from skal_cxr.report._statistics import learning_curves

    path, _ = results
    curves, baselines, _ = learning_curves(read_records(path), SCHEDULE)
    # 85 % of the baselines 0.9, 0.9, 0.95: targets 0.765, 0.765, 0.8075
    bald = labels_to_target(curves["bald"], baselines, fraction=0.85)
    assert bald["per_seed"] == {0: 20, 1: 20, 2: 20} and bald["censored"] == 0
    random = labels_to_target(curves["random"], baselines, fraction=0.85)
    # seed 2 ends at 0.80 < 0.8075: censored at one query beyond the budget (40)
    assert random["per_seed"] == {0: 30, 1: 30, 2: 40} and random["censored"] == 1
    assert random["mean"] == pytest.approx(100 / 3) and random["ci"] == (30.0, 40.0)
    assert random["target"] == pytest.approx((0.765 * 2 + 0.8075) / 3)
    p = stats.ttest_rel([20, 20, 20], [30, 30, 40]).pvalue
    (line,) = headline(curves, baselines, fraction=0.85)
    assert line == (
        "To reach AUROC 0.779 (85 % of the full-data AUROC, per seed), bald needed 20 labels "
        "(95 % CI 20-20, 3 seeds); random needed 33 labels (95 % CI 30-40, 3 seeds; 1 did "
        f"not reach it within the budget and count as 40) (paired t-test p = {p:.2g})."
    )
    report = make_report(path)["report"].read_text()
    assert report.splitlines()[2].startswith("**To reach macro AUROC 0.898 (98 % of")


def test_headline_when_no_seed_reaches_the_target(results):
    from skal_cxr.report import headline
    from skal_cxr.report._statistics import learning_curves

    path, _ = results
    curves, baselines, _ = learning_curves(read_records(path), SCHEDULE)
    (line,) = headline(curves, baselines, fraction=0.99)
    assert "random needed more than 30 labels (none of the 3 seeds reached it" in line
