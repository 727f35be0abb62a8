"""The reference-study command at its tiny scale."""

import json

import pytest

from skal_cxr.cli import main
from skal_cxr.study import PUBLISHED, STUDY_STRATEGIES, study_table


@pytest.mark.slow
def test_study_tiny_runs_both_tasks_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "study"
    argv = [
        "study",
        "--output",
        str(out),
        "--scale",
        "tiny",
        "--seeds",
        "1",
        "--strategies",
        "random,mean_std",
        "--n-jobs",
        "1",
        "-q",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    binary = json.loads((out / "binary" / "config.json").read_text())
    severity = json.loads((out / "severity" / "config.json").read_text())
    assert binary["resolved"]["classes"] == ["normal", "pneumonia"]
    assert severity["resolved"]["classes"] == ["normal", "moderate", "severe"]
    assert severity["resolved"]["agreement"]["n_raters"] == 3
    assert binary["config"]["class_weight"] == severity["config"]["class_weight"] == "balanced"
    rows = study_table(out / "binary", out / "severity")
    assert {(r["task"], r["strategy"]) for r in rows} == {
        (t, s) for t in ("binary", "severity") for s in ("random", "mean_std", "full_data")
    }
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["auroc"] <= 1 and 0 <= r["auprc"] <= 1
        assert r["fit_s"] > 0
    text = (out / "study.md").read_text()
    assert "93.7 % accuracy, AUROC 0.91 with 15.4 %" in text
    assert "70.3 % accuracy, AUROC 0.86 with 23.1 %" in text
    assert "| mean_std | 1 |" in text
    # rerunning resumes: nothing to do, same table
    assert main(argv) == 0
    assert (out / "study.md").read_text() == text


def test_published_figures_and_design():
    assert PUBLISHED["binary"]["labels_fraction"] == 0.154
    assert PUBLISHED["severity"]["strategy"] == "mean_std"
    assert STUDY_STRATEGIES[0] == "random" and "variation_ratios" in STUDY_STRATEGIES
