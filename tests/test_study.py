"""The reference-study command at its tiny scale."""

import json

import pytest

from skal_cxr import study
from skal_cxr.cli import main
from skal_cxr.study import study_table


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


def test_default_design_reaches_both_tasks(tmp_path, monkeypatch):
    """Without strategies, each task runs the study's five acquisition functions."""
    import skal_cxr.simulation

    calls = []
    monkeypatch.setattr(skal_cxr.simulation, "simulate", lambda out, **kw: calls.append((out, kw)))
    monkeypatch.setattr(study, "study_table", lambda binary, severity: [])
    paths = study.run_reference_study(tmp_path, scale="small")
    assert [out for out, _ in calls] == [tmp_path / "binary", tmp_path / "severity"]
    for task, (_, kw) in zip(("binary", "severity"), calls):
        assert kw["strategies"] == ["random", "max_entropy", "mean_std", "bald", "variation_ratios"]
        assert kw["seeds"] == 3 and kw["class_weight"] == "balanced"
        assert kw["budget"] == {"binary": 0.16, "severity": 0.24}[task]
    assert paths["study"].read_text().startswith("# Reference study, reproduced")
    calls.clear()
    study.run_reference_study(tmp_path, scale="small", strategies=["margin"], seeds=[7])
    assert [(kw["strategies"], kw["seeds"]) for _, kw in calls] == [(["margin"], [7])] * 2


def _row(task, strategy, **values):
    row = dict(
        task=task, strategy=strategy, n_seeds=2, n_pool=1000, labeled_fraction=0.2,
        accuracy=0.8, auroc=0.9, auprc=0.85, fit_s=1.0, query_s=0.5,
        labels_to_full=None, reached=None, agreement=None,
    )  # fmt: skip
    return {**row, **values}


def test_study_table_puts_each_published_figure_under_its_task():
    rows = [
        _row("binary", "max_entropy", labels_to_full=154.0, reached=2),
        _row("severity", "mean_std", labels_to_full=float("nan"), reached=0),
    ]
    text = study._markdown(rows, "small")
    binary, severity = text.split("## 3-class severity")
    assert "## Binary: normal vs pneumonia" in binary
    assert (
        "Published: 93.7 % accuracy, AUROC 0.91 with 15.4 % of the labels by max_entropy." in binary
    )
    assert (
        "| max_entropy | 2 | 20.0 | 0.800 | 0.900 | 0.850 | 1.00 | 0.50 | 154 (15.4 %, 2/2 seeds) |"
        in binary
    )
    assert (
        "Published: 70.3 % accuracy, AUROC 0.86 with 23.1 % of the labels by mean_std." in severity
    )
    assert "| mean_std | 2 | 20.0 | 0.800 | 0.900 | 0.850 | 1.00 | 0.50 | – (0/2) |" in severity
    # a task without rows gets no section
    assert "## Binary" not in study._markdown(rows[1:], "small")
