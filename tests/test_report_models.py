"""The report of a comparison across models: the default, random on its view, random without."""

import json

import pytest

from skal_cxr._results import RecordWriter, read_records, record_path
from skal_cxr.report import make_report, model_headline, paired_tests
from skal_cxr.report._statistics import learning_curves

SCHEDULE = [10, 20, 30]
N_POOL = 100
DEFAULT = "typicality_until_5_then_max_entropy"
CURVES = {
    DEFAULT: {0: [0.80, 0.90, 0.92], 1: [0.82, 0.88, 0.91], 2: [0.85, 0.90, 0.93]},
    "random": {0: [0.60, 0.85, 0.90], 1: [0.62, 0.80, 0.90], 2: [0.58, 0.70, 0.88]},
    "random@cnn": {0: [0.50, 0.60, 0.70], 1: [0.52, 0.62, 0.72], 2: [0.55, 0.65, 0.80]},
}


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
def folder(tmp_path):
    for arm, by_seed in CURVES.items():
        for seed, values in by_seed.items():
            with RecordWriter(record_path(tmp_path, "active", arm, seed)) as w:
                for r, v in enumerate(values):
                    rec = _record(arm, seed, r, v)
                    if r == len(values) - 1:
                        rec["calibration"] = {
                            "ece": 0.1,
                            "ece_val_corrected": 0.04 + seed / 100,
                            "ece_em_prior": 0.06,
                            "em_prior": [0.25, 0.75],
                        }
                    w.write(rec)
    for seed in (0, 1, 2):
        base = _record("full_data", seed, 0, 1.0, kind="baseline")
        view = {"metrics": {**base["metrics"], "auroc": 1.0}, "fit_time": 1.0}
        cnn = {"metrics": {**base["metrics"], "auroc": 0.95}, "fit_time": 9.0}
        base.update(model="view", models={"view": view, "cnn": cnn})
        with RecordWriter(record_path(tmp_path, "baseline", None, seed)) as w:
            w.write(base)
    (tmp_path / "view-0123456789abcdef.json").write_text(
        json.dumps({"fingerprint": "x", "fit_time": 6.0, "fit_cpu_time": 5.5})
    )
    config = {
        "data": {"source": "medmnist"},
        "strategies": list(CURVES),
        "model": "view",
        "seeds": [0, 1, 2],
        "budget": 30,
        "n_mc_samples": 5,
        "class_weight": "balanced",
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
    return tmp_path


def test_the_lead_compares_the_default_with_random_on_and_off_the_view(folder):
    curves, baselines, _ = learning_curves(read_records(folder), SCHEDULE)
    lead, tests = model_headline(curves, baselines, list(CURVES), "view", fraction=0.85)
    # target 0.85 of 1.0: the default 20, 20, 10; random 20, 30, 30; without the view
    # none by 30 labels (censored at 40)
    assert lead.startswith(
        "To reach AUROC 0.850 (85 % of the full-data AUROC, per seed, the better of the "
        "CNN from pixels and the head on the view trained on the whole pool): the default "
        f"({DEFAULT} on the pool's contrastive view) needed 17 labels (95 % CI "
    )
    assert "; random on the same view 27 labels (95 % CI " in lead
    assert lead.endswith(
        "; random without the view (the CNN from pixels) more than 30 labels (none of the 3 "
        "seeds reached it within the budget)."
    )
    same = paired_tests([20, 20, 10], [20, 30, 30])
    without = paired_tests([20, 20, 10], [40, 40, 40])
    assert f"against random on the same view: {same['diff']:+.1f} labels" in tests
    assert f"paired t-test p = {same['p_t']:.2g}" in tests
    assert f"against random without the view (the CNN from pixels): {without['diff']:+.1f}" in tests
    assert f"Wilcoxon p = {without['p_wilcoxon']:.2g} (3 seeds)" in tests


def test_no_model_lead_without_an_arm_on_another_model(folder):
    curves, baselines, _ = learning_curves(read_records(folder), SCHEDULE)
    assert model_headline(curves, baselines, [DEFAULT, "random"], "view") == []
    assert model_headline(curves, baselines, ["random", "random@cnn"], "view") == []


def test_the_report_leads_with_it_and_gives_calibration_and_the_encoders_time(folder):
    report = make_report(folder)["report"].read_text()
    lines = report.splitlines()
    assert lines[2].startswith("**To reach macro AUROC 0.980 (98 % of the full-data")
    assert "random without the view" in lines[2]
    assert lines[3].startswith("**Paired over seeds, the default's labels against random")
    assert "- model: an MC Dropout head on the pool's contrastive view" in report
    assert "arms with their own model: random@cnn" in report
    # 6 s of encoder against 3 arms x 3 seeds x (1 + 2 + 3 + 3 x 0.6) s of rounds + 3 baselines
    rounds = 9 * (1 + 2 + 3 + 3 * 0.6) + 3 * (1.0 + 0.5 + 0.1)
    share = 100 * 6 / (6 + rounds)
    assert (
        f"- the pool's encoder: trained once in 6 s (6 CPU-s), {share:.0f} % of the "
        f"simulation's {6 + rounds:.0f} s" in report
    )
    assert f"| {DEFAULT} | 3 | 0.100 | 0.050 | 0.060 | 0.25, 0.75 |" in report
    assert "| random@cnn | 3 | 0.100 | 0.050 | 0.060 | 0.25, 0.75 |" in report
