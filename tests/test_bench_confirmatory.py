"""Known answers of the confirmatory study's driver (benchmarks/bench_confirmatory.py).

The runner lives in ``benchmarks/_confirmatory.py``, the declared analysis
and the pilot's choice in ``_confirmatory_report.py``.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from skal_cxr.report import with_holm

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_confirmatory.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_confirmatory", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_confirmatory"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_confirmatory", None)


@pytest.fixture(scope="module")
def study(bench):  # the script put benchmarks/ on the path
    import _confirmatory

    return _confirmatory


@pytest.fixture(scope="module")
def report(bench):
    import _confirmatory_report

    return _confirmatory_report


def _record(curve, **extra):
    """A record with the AUROC curve ``{n: auroc}`` (every class labeled)."""
    points = [{"n_labeled": n, "auroc": a, "class_counts": [1, 1]} for n, a in curve.items()]
    return {"curve": points, **extra}


def test_the_declared_checkpoints(study):
    assert study.study_checkpoints() == [*range(10, 101, 10), 150, 200, 250, 300]
    assert study.study_checkpoints(smoke=True) == [10, 20, 40]


def test_labels_to_98_percent_and_censoring(report):
    curve = {10: 0.80, 20: 0.93, 30: 0.92, 40: 0.95, 300: 0.96}
    reached = report.endpoints(_record(curve), reference=0.95)  # target 0.931
    assert reached["labels_to_98"] == 40 and not reached["censored"]
    never = report.endpoints(_record(curve), reference=0.99)  # target 0.9702
    assert never["labels_to_98"] == report.CENSORED == 350 and never["censored"]
    assert reached["auroc_10"] == 0.80 and reached["auroc_20"] == 0.93
    assert "labels_to_98" not in report.endpoints(_record(curve), reference=None)


def test_full_data_reference_is_the_better_fit(report):
    records = [
        {"data": "d", "seed": 1, "arm": "full_cnn", "auroc": 0.90},
        {"data": "d", "seed": 1, "arm": "full_view", "auroc": 1.00},
        {"data": "d", "seed": 1, "arm": "A", **_record({10: 0.95, 20: 0.98, 300: 0.99})},
    ]
    assert report.by_arm(records)["d"]["A"][1]["labels_to_98"] == 20  # 0.98 of 1.00, not 0.90


def test_aulc_is_normalised_over_10_to_300(report):
    assert report.aulc({10: 0.5, 300: 0.7}) == pytest.approx(0.6)
    # trapezoids 0.5-0.9 over 10-100 (90 labels) and 0.9-0.9 over 100-300 (200 labels)
    expected = (0.7 * 90 + 0.9 * 200) / 290
    assert report.aulc({10: 0.5, 100: 0.9, 300: 0.9, 350: 0.0}) == pytest.approx(expected)
    assert np.isnan(report.aulc({10: 0.5, 100: 0.9}))  # a run stopped before 300


def _result(diff, p):
    return {"diff": diff, "p_t": p, "p_wilcoxon": p, "ci": [diff, diff], "n": 20}


def _table(a_labels_to_98, lacking_at_20=()):
    def arm(values, gap=0.0):
        return {
            s: {
                "labels_to_98": v,
                "all_classes_at_20": s not in lacking_at_20,
                **{f"ece_{c}_{n}": 0.05 + gap for c in ("em", "val") for n in (20, 40, 100)},
            }
            for s, v in enumerate(values)
        }

    return {
        "pneumoniamnist": {"A": arm(a_labels_to_98), "B": arm([50] * 3, gap=0.02)},
        "imbalanced": {"A": arm([50] * 3), "B": arm([50] * 3, gap=0.04)},
    }


def test_holm_decides_each_declared_family(report):
    # primary p-values 0.01, 0.04, 0.03: Holm 0.03, 0.06, 0.06 (0.03 x 2 = 0.06 carried)
    primary = with_holm(
        {
            "A - B AUROC at 10": _result(0.02, 0.01),
            "A - B labels to 98 %": _result(-10, 0.04),
            "A - C labels to 98 %": _result(-20, 0.03),
        }
    )
    assert [r["p_t_holm"] for r in primary.values()] == pytest.approx([0.03, 0.06, 0.06])
    imbalanced = with_holm(
        {
            "A - B minority AUPRC at 40": _result(0.05, 0.02),  # Holm 0.04
            "A - B balanced accuracy at 40": _result(0.01, 0.5),
        }
    )
    phantoms = with_holm(
        {
            "A - B AUROC at 20, 28 px": _result(0.03, 0.001),  # Holm 0.002
            "A - B AUROC at 20, 64 px": _result(0.03, 0.03),  # Holm 0.03
        }
    )
    fams = {"primary": primary, "imbalanced": imbalanced, "phantoms": phantoms}
    met = report.criteria(_table([10, 20, 30]), fams)
    assert met["primary"][0] and met["imbalanced"][0] and met["phantoms"][0]
    assert met["calibration (em)"][0] is False  # imbalanced: A - B = -0.04
    assert not report.criteria(_table([10, 30, 30]), fams)["primary"][0]  # median 30 > 20
    assert not report.criteria(_table([10, 20, 30], lacking_at_20={1}), fams)["imbalanced"][0]
    # the same AUROC gain with p 0.02 each: Holm 0.06, the primary family is not met
    primary = with_holm({k: _result(r["diff"], 0.02) for k, r in primary.items()})
    assert not report.criteria(_table([10, 20, 30]), {**fams, "primary": primary})["primary"][0]
    phantoms = with_holm({k: _result(r["diff"], 0.03) for k, r in phantoms.items()})
    assert not report.criteria(_table([10]), {**fams, "phantoms": phantoms})["phantoms"][0]


def test_the_pilot_chooses_by_auroc_then_encoder_time(report):
    summary = {
        "e5_w16": {"auroc_20": 0.900, "encoder_cpu_s": 40},
        "e10_w16": {"auroc_20": 0.910, "encoder_cpu_s": 80},
        "e5_w32": {"auroc_20": 0.906, "encoder_cpu_s": 60},
        "e10_w32": {"auroc_20": 0.880, "encoder_cpu_s": 150},
    }
    assert report.choose_setting(summary) == "e5_w32"  # within 0.005 of 0.910, cheaper
    summary["e10_w16"]["auroc_20"] = 0.920
    assert report.choose_setting(summary) == "e10_w16"


def test_arm_g_queries_by_class(study):
    y_pool = np.array([0] * 20 + [1] * 20 + [2] * 3)
    labeled = [0, 20, 40]
    strategy = study.stratified_oracle(y_pool, labeled, seed=0)
    picks = strategy(None, np.zeros((40, 1)), n_instances=9)
    unlabeled = np.setdiff1d(np.arange(len(y_pool)), labeled)
    # class 2 has two unlabeled images left: they are taken, the rest split 4 / 3... evenly
    assert sorted(np.bincount(y_pool[unlabeled[picks]], minlength=3)) == [2, 3, 4]
    assert len(set(picks.tolist())) == 9


def _smoke(bench, out, arms, width=None):
    argv = ["--smoke", "--output", str(out), "--seeds", "1", "--datasets", "phantoms28"]
    argv += ["--arms", arms] + (["--encoder-width", str(width)] if width else [])
    return bench.main(argv)


def test_smoke_run_writes_records_and_a_rerun_skips_them(bench, study, tmp_path, capsys):
    result = _smoke(bench, tmp_path, "A,B,G,full_view")
    files = sorted(p.name for p in (tmp_path / "records/phantoms28/seed1").iterdir())
    assert files == ["A.json", "B.json", "G.json", "full_view.json"]
    record = json.loads((tmp_path / "records/phantoms28/seed1/A.json").read_text())
    assert [c["n_labeled"] for c in record["curve"]] == [10, 20, 40]
    assert record["encoder_cpu_s"] > 0 and "ece_em" in record["curve"][1]
    assert "phantoms" in result["families"]
    settings = study.Settings(**study.SMOKE)
    # a rerun runs only what is missing: here the one new arm
    ran = study.run_study(tmp_path, ["phantoms28"], [1], ["A", "B", "C"], settings, log=print)
    assert ran == 1
    assert study.run_study(tmp_path, ["phantoms28"], [1], ["A", "B", "C"], settings) == 0
    with pytest.raises(SystemExit, match="another run"):
        _smoke(bench, tmp_path, "A", width=8)


@pytest.mark.slow
def test_smoke_pilot_chooses_a_setting_and_checks_fine_tuning(bench, tmp_path):
    argv = ["--smoke", "--pilot", "--output", str(tmp_path), "--seeds", "1,2"]
    result = bench.main([*argv, "--datasets", "phantoms28"])
    assert sorted(result["grid"]) == ["e10_w16", "e10_w32", "e5_w16", "e5_w32"]
    assert result["chosen"] in result["grid"]
    assert result["fine_tune_adopted"] == (result["fine_tune_gain"] >= 0.005)
    records = list((tmp_path / "fine_tune/records/phantoms28").glob("seed*/A.json"))
    assert len(records) == 2
    record = json.loads(records[0].read_text())
    assert record["settings"]["fine_tune"] and record["settings"]["fine_tune_from"] == 20
    assert json.loads((tmp_path / "pilot.json").read_text())["chosen"] == result["chosen"]
    summary = bench.main([*argv, "--datasets", "phantoms28", "--stage", "summary"])
    assert summary == json.loads(json.dumps(result["grid"]))
