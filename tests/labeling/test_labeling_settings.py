"""Project settings: the query size's name, and projects written by earlier versions."""

import json
import sqlite3

import pytest
from _labeling_fakes import CLASSES, TINY, truth_of

from skal_cxr.cli import main
from skal_cxr.engine import RoundConfig
from skal_cxr.labeling import init_project, open_project
from skal_cxr.labeling.store._db import DB_FILE

#: The settings of a project as the previous version wrote them: ``batch_size`` for the
#: images per round, and the round engine's settings under ``simulation``.
OLD_SETTINGS = {
    "name": "project",
    "image_dir": None,
    "csv": None,
    "classes": CLASSES,
    "labels_per_image": 1,
    "strategy": "mean_std",
    "batch_size": 4,
    "initial_size": 4,
    "budget": None,
    "image_size": [16, 16],
    "consensus": "majority",
    "cold_start": "random",
    "reserve_size": 0,
    "show_prediction": False,
    "lease_seconds": 3600.0,
    "stop_set_size": 30,
    "stop_window": 3,
    "stop_threshold": 0.99,
    "random_state": 0,
    "simulation": {
        "n_mc_samples": 3,
        "pool_size": None,
        "class_weight": None,
        "warm_start": False,
        "estimator": {
            "lr": 0.001,
            "batch_size": 32,
            "module__width": 4,
            "module__n_blocks": 2,
            "module__dropout": 0.5,
            "mc_predict": False,
            "device": "cpu",
        },
        "training": {"max_epochs": 1, "min_train_steps": 2, "lr_schedule": "cosine"},
        "torch_threads": 1,
    },
}


def _label_batch(project, truth):
    project.add_rater("a")
    while (nxt := project.next_image("a"))["image_id"] is not None:
        project.submit_label("a", nxt["image_id"], truth_of(project, truth, nxt["image_id"]))


def test_a_project_of_the_previous_version_opens_and_trains_the_same(tmp_path, phantom_folder):
    image_dir, truth = phantom_folder
    settings = {**TINY, "query_size": 4, "reserve_size": 0}
    new = init_project(tmp_path / "new", image_dir, CLASSES, **settings)
    old = init_project(tmp_path / "project", image_dir, CLASSES, **settings)
    stored = {**OLD_SETTINGS, "image_dir": new.config["image_dir"]}
    with sqlite3.connect(old.path / DB_FILE) as conn:  # written as the previous version did
        conn.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(stored),))
    conn.close()

    old = open_project(old.path)
    assert old.config["query_size"] == 4 and "batch_size" not in old.config
    assert old.round_config == new.round_config
    assert old.round_config.estimator["batch_size"] == 32  # the optimizer's, untouched
    for project in (old, new):
        _label_batch(project, truth)
        assert project.train_round() == 1
    assert old.rounds()[1]["queried"] == new.rounds()[1]["queried"]
    assert len(old.rounds()[1]["queried"]) == 4


def test_new_projects_store_query_size_and_the_engine_settings(make_project):
    project = make_project(query_size=3)
    with sqlite3.connect(project.path / DB_FILE) as conn:
        stored = json.loads(
            conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0]
        )
    conn.close()
    assert stored["query_size"] == 3 and "batch_size" not in stored
    assert "simulation" not in stored and stored["engine"]["n_mc_samples"] == 3
    assert RoundConfig.from_dict(stored["engine"]).estimator["module__width"] == 4
    assert project.round_config.query_size == 3 and project.round_config.seed == 0


def test_batch_size_is_a_deprecated_alias_of_query_size(tmp_path, phantom_folder):
    image_dir = phantom_folder[0]
    with pytest.warns(FutureWarning, match="renamed query_size in 0.2 .* removed in 0.3"):
        project = init_project(tmp_path / "p", image_dir, CLASSES, **TINY, batch_size=3)
    assert project.config["query_size"] == 3 and len(project.rounds()[0]["queried"]) == 3
    with pytest.raises(TypeError, match="query_size only"):
        init_project(tmp_path / "q", image_dir, CLASSES, **TINY, query_size=4, batch_size=3)


def test_the_cli_takes_query_size_and_warns_for_batch_size(tmp_path, phantom_folder, capsys):
    base = [
        "label",
        "init",
        "--image-dir",
        str(phantom_folder[0]),
        "--classes",
        ",".join(CLASSES),
        "--image-size",
        "16",
    ]
    assert main([*base[:2], str(tmp_path / "a"), *base[2:], "--query-size", "3"]) == 0
    assert open_project(tmp_path / "a").config["query_size"] == 3
    capsys.readouterr()
    assert main([*base[:2], str(tmp_path / "b"), *base[2:], "--batch-size", "2"]) == 0
    assert open_project(tmp_path / "b").config["query_size"] == 2
    assert capsys.readouterr().err == (
        "skal-cxr: warning: --batch-size was renamed "
        "--query-size in 0.2 and will be removed in 0.3.\n"
    )
    assert (
        main([*base[:2], str(tmp_path / "c"), *base[2:], "--batch-size", "2", "--query-size", "2"])
        == 2
    )
    assert "give --query-size only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["label", "init", "--help"])
    out = capsys.readouterr().out
    assert "--query-size" in out and "--batch-size" not in out


def test_settings_are_checked_with_the_estimators_constraints(tmp_path, phantom_folder):
    from skal_cxr.labeling import LabelingError

    image_dir = phantom_folder[0]
    tiny = {
        **TINY,
        "estimator": {**TINY["estimator"], "batch_size": -1},
        "training": {"max_epochs": 0, "min_train_steps": 1},
    }
    project = init_project(tmp_path / "p", image_dir, CLASSES, **tiny)
    assert project.round_config.estimator["batch_size"] == -1
    assert project.round_config.training["max_epochs"] == 0
    for options, message in [
        ({"training": {"max_epochs": -1}}, "'max_epochs' parameter of MCDropoutCNN"),
        ({"estimator": {"batch_size": 0}}, "'batch_size' parameter of MCDropoutCNN"),
        ({"stop_window": 0}, "'stop_window' parameter of init_project"),
    ]:
        with pytest.raises(LabelingError, match=message):
            init_project(tmp_path / "q", image_dir, CLASSES, **{**TINY, **options})
