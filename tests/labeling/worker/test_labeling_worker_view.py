"""A project's view of its pool: trained once at init, a head per round, retrained on demand."""

import json
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from _labeling_fakes import CLASSES, TINY_VIEW, truth_of, write_phantoms

from skal_cxr import FrozenViewClassifier
from skal_cxr.cli import main
from skal_cxr.embeddings import ContrastiveEncoder
from skal_cxr.engine import _view as engine_view
from skal_cxr.engine import initial_set
from skal_cxr.labeling import init_project, open_project
from skal_cxr.labeling.worker import _view as view_module
from skal_cxr.labeling.worker._rounds import round_job, warm_up
from skal_cxr.labeling.worker._view import (
    RETRAIN_VIEW_FRACTION,
    load_view,
    retrain_view,
    train_view,
    view_advice,
    view_file,
    view_info,
)


@pytest.fixture
def fits(monkeypatch):
    """The number of ``ContrastiveEncoder.fit`` calls, in a process that has trained none."""
    monkeypatch.setattr(engine_view, "_MEMO", OrderedDict())  # no encoder of an earlier test
    calls = []
    fit = ContrastiveEncoder.fit

    def counted(self, X, y=None):
        calls.append(len(X))
        return fit(self, X, y)

    monkeypatch.setattr(ContrastiveEncoder, "fit", counted)
    return calls


def _label_batch(project, truth):
    """Label every image handed out to rater ``a`` (added by the test) with its truth."""
    while (nxt := project.next_image("a"))["image_id"] is not None:
        project.submit_label("a", nxt["image_id"], truth_of(project, truth, nxt["image_id"]))


def _trunk(encoder):
    return {k: v.clone() for k, v in encoder.trunk_.state_dict().items()}


def test_a_new_project_trains_its_view_once_at_init(make_project, phantom_folder, fits):
    project = make_project(**TINY_VIEW)
    project.add_rater("a")
    assert fits == [60]  # the whole pool, once
    assert project.round_config.model == "view"
    assert project.config["cold_start"] == "typicality"
    info = view_info(project.path)
    assert info["n_images"] == 60 and info["seconds"] > 0
    assert (project.path / "view" / info["file"]).is_file()
    # the first batch is typicality's in that view
    encoder = load_view(view_file(project.path))
    features = encoder.transform(np.asarray(project.pool_array()))
    batch, reserve = initial_set(
        "typicality",
        5,
        project.round_config.seed,
        y_pool=np.zeros(60, dtype=np.int64),
        features=features,
        n_reserve=5,
    )
    first = project.rounds()[0]
    assert first["queried"] == (np.asarray(batch) + 1).tolist()
    # opening it again and making a round train no encoder
    again = open_project(project.path)
    _label_batch(again, phantom_folder[1])
    assert again.train_round() == 1
    assert fits == [60]
    # nor does asking for the view of the same pool again: the stored file is loaded
    engine_view._MEMO.clear()
    same = train_view(again.path, again.config["image_size"], 60, again.round_config)
    assert fits == [60]
    assert same["file"] == info["file"] and same["seconds"] == 0


def test_a_view_round_fits_the_head_only(make_project, phantom_folder, fits):
    project = make_project(**TINY_VIEW)
    project.add_rater("a")
    file = view_file(project.path)
    before = _trunk(load_view(file))
    _label_batch(project, phantom_folder[1])
    assert project.train_round() == 1
    after = load_view(file)
    assert all(torch.equal(before[k], v) for k, v in after.trunk_.state_dict().items())
    model = project.model_store.get(1)
    assert isinstance(model, FrozenViewClassifier)
    # the checkpoint holds that same encoder, unchanged, and a trained head
    saved = model.encoder_.trunk_.state_dict()
    assert all(torch.equal(before[k], v) for k, v in saved.items())
    assert hasattr(model, "head_")
    (round_1,) = [r for r in project.rounds() if r["round"] == 1]
    assert len(round_1["queried"]) == 5


def test_the_worker_gets_the_encoder_file_not_its_weights(make_project, phantom_folder):
    project = make_project(**TINY_VIEW)
    project.add_rater("a")
    _label_batch(project, phantom_folder[1])
    job = round_job(project)
    assert job.view == view_file(project.path)
    assert isinstance(job.view, str)
    sent = pickle.dumps(job)
    assert b"ContrastiveEncoder" not in sent and b"torch._utils" not in sent
    assert len(sent) < os.path.getsize(job.view) / 2
    # a job of the view model without the file is refused where it is made
    with pytest.raises(ValueError, match="retrain-view"):
        type(job)(**{**job.__dict__, "view": None})


def test_a_cnn_project_has_no_view(make_project, fits):
    project = make_project()  # TINY: model="cnn"
    assert fits == []
    assert view_info(project.path) is None
    assert round_job(project) is None  # no batch labeled yet
    assert not (project.path / "view").exists()


@pytest.mark.parametrize("trained_on, grown", [(50, False), (49, True)])
def test_pull_says_to_retrain_the_view_past_the_threshold(
    make_project, monkeypatch, capsys, trained_on, grown
):
    project = make_project(**TINY_VIEW)
    current = project.path / "view" / "current.json"
    info = json.loads(current.read_text())
    # as if the view had been trained before the last pull: 10 new images of 50 is 20 %
    current.write_text(json.dumps({**info, "n_images": trained_on}))
    assert (60 - trained_on > RETRAIN_VIEW_FRACTION * trained_on) is grown
    import skal_cxr.labeling as labeling

    monkeypatch.setattr(labeling, "pull_dicomweb", lambda project, **kwargs: 0)
    main(["label", "pull", str(project.path)])
    out = capsys.readouterr().out.splitlines()
    advice = [line for line in out if "retrain-view" in line]
    if grown:
        assert len(advice) == 1
        assert f"{60 - trained_on} images more than the {trained_on}" in advice[0]
        assert advice[0] == view_advice(project.path, 60)
    else:
        assert advice == [] and view_advice(project.path, 60) is None


def test_a_retrained_view_serves_the_next_rounds(tmp_path, fits, capsys):
    folder = tmp_path / "images"
    labels = write_phantoms(folder)
    truth = {f"im{i:03d}.png": c for i, c in enumerate(labels)}
    project = init_project(tmp_path / "p", folder, CLASSES, **TINY_VIEW, query_size=5)
    project.add_rater("a")
    first = view_file(project.path)
    _label_batch(project, truth)
    assert project.train_round() == 1
    # the pool changes (a film replaced): the view is trained again on request
    write_phantoms(folder, random_state=1)
    main(["label", "retrain-view", str(project.path)])  # warns that the films changed
    assert "changed since they were registered" in capsys.readouterr().err
    assert len(fits) == 2
    second = view_file(project.path)
    assert second != first
    _label_batch(project, truth)
    assert round_job(project).view == second
    assert project.train_round() == 2
    # both checkpoints load, each with the encoder it was fitted with
    old, new = project.model_store.get(1), project.model_store.get(2)
    X = np.asarray(project.pool_array()[:4])
    assert old.predict_proba(X).shape == new.predict_proba(X).shape == (4, 3)
    assert old.encoder_.trunk_[0] is not None
    assert not all(
        torch.equal(a, b)
        for a, b in zip(
            old.encoder_.trunk_.state_dict().values(), new.encoder_.trunk_.state_dict().values()
        )
    )


def test_retrain_view_refuses_a_cnn_project(make_project):
    from skal_cxr.exceptions import LabelingError

    with pytest.raises(LabelingError, match="no view"):
        retrain_view(make_project())


def test_a_worker_computes_no_feature_the_init_stored(make_project, phantom_folder, monkeypatch):
    project = make_project(**TINY_VIEW)
    project.add_rater("a")
    monkeypatch.setattr(view_module, "_LOADED", {})  # a new worker process: nothing loaded
    seen = []
    transform = ContrastiveEncoder.transform

    def counted(self, X):
        seen.append(len(X))
        return transform(self, X)

    monkeypatch.setattr(ContrastiveEncoder, "transform", counted)
    for _ in range(2):
        _label_batch(project, phantom_folder[1])
        assert project.train_round() is not None
    assert seen == []  # every round's head and query read the features stored at init


def test_a_view_project_may_start_with_k_center(make_project, fits):
    project = make_project(**TINY_VIEW, cold_start="k_center")
    assert project.rounds()[0]["strategy"] == "k_center"
    assert len(project.rounds()[0]["queried"]) == 5 and fits == [60]


@pytest.mark.slow
def test_the_worker_process_makes_the_view_round_this_thread_makes(make_project, phantom_folder):
    from skal_cxr.labeling.worker._process import TrainerProcess, train_round

    project = make_project(**TINY_VIEW)
    project.add_rater("a")
    _label_batch(project, phantom_folder[1])
    job = round_job(project)
    worker = TrainerProcess()
    try:
        there = worker.run(job)
    finally:
        worker.close()
    here = train_round(job)
    assert there.pid != here.pid
    assert there.queried == here.queried and len(here.queried) == 5
    assert there.stop_predictions == here.stop_predictions


@pytest.mark.slow
def test_the_worker_has_imported_what_a_round_needs_before_the_first(make_project, phantom_folder):
    """The next batch waits for the round's work, not for imports (seconds of them)."""
    from skal_cxr.labeling.worker._jobs import Ping
    from skal_cxr.labeling.worker._process import TrainerProcess

    project = make_project(**TINY_VIEW)
    project.add_rater("a")
    _label_batch(project, phantom_folder[1])
    worker = TrainerProcess()
    try:
        before = set(worker.start().run(Ping())["modules"])
        worker.run(round_job(project))
        during = set(worker.run(Ping())["modules"]) - before
    finally:
        worker.close()
    heavy = ("torch", "torchvision", "skorch", "sklearn", "scipy", "skal_cxr")
    # torch.save reads its configuration module at its first call: 2 ms, left to it
    light = "torch.utils.serialization"
    late = [m for m in during if m.split(".")[0] in heavy and not m.startswith(light)]
    assert sorted(late) == []


def test_warm_up_reads_the_pool_and_loads_the_view_before_any_round(
    make_project, phantom_folder, monkeypatch
):
    """The first round after a server starts hashes no stored feature: the warm-up did."""
    from skal_cxr.labeling.worker._process import run_job

    project = make_project(**TINY_VIEW)
    project.add_rater("a")
    monkeypatch.setattr(view_module, "_LOADED", {})  # a new worker process: nothing loaded
    project._pool = None  # a new server process: the pool not read yet
    remembered = []
    remember = view_module._remember
    monkeypatch.setattr(
        view_module, "_remember", lambda *a: remembered.append(a[1]) or remember(*a)
    )
    jobs = []
    warm_up(project, lambda job: jobs.append(job) or run_job(job))
    file = view_file(project.path)
    assert [type(j).__name__ for j in jobs] == ["WarmJob"] and jobs[0].view == file
    assert jobs[0].n_images == 60 and project._pool is not None
    assert view_module.loaded_views() == {file: True} and remembered == [file]
    _label_batch(project, phantom_folder[1])
    assert project.train_round() is not None
    assert remembered == [file]  # the round found the features in memory


def test_warm_up_of_a_cnn_project_reads_the_pool_only(make_project):
    project = make_project()
    project._pool = None
    jobs = []
    warm_up(project, jobs.append)
    assert jobs == [] and project._pool is not None and len(project._pool) == 60


@pytest.mark.slow
def test_a_served_view_project_s_worker_holds_the_view_before_the_first_batch(make_project):
    from skal_cxr.labeling.worker._jobs import Ping

    project = make_project(**TINY_VIEW)
    project.train_in_background()
    try:
        project.wake_training()  # as the server does when it starts: no batch is complete
        assert project.training.join(120)  # started, warmed, looked: idle
        views = project.training.trainer.run(Ping())["views"]
    finally:
        project.training.close()
    assert views == {view_file(project.path): True}
    assert project.rounds()[-1]["round"] == 0  # nothing was trained
