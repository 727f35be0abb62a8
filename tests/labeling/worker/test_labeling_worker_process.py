"""The training worker process and the round functions it runs (``_process``)."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from skal_cxr.labeling.worker import _process
from skal_cxr.labeling.worker._jobs import Ping, ReserveJob, TrainJob, WarmJob
from skal_cxr.labeling.worker._process import (
    CHILD_NICENESS,
    TrainerProcess,
    TrainingFailed,
    WorkerDied,
    reserve_round,
    train_round,
)

REPO = Path(__file__).resolve().parents[3]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _stat(pid):
    """``(state, ppid, nice)`` of a process from ``/proc/<pid>/stat``, or None once reaped."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[0], int(fields[1]), int(fields[16])


def _job(project, round_=1, n_next=5, pool_size=None, query_seed=123):
    """A training job over the first batch of a tiny project (made-up labels)."""
    labeled = [i - 1 for i in project.rounds()[0]["queried"]]
    rounds = dict(project.round_config.to_dict(), pool_size=pool_size)
    return TrainJob(
        path=str(project.path),
        round=round_,
        image_size=project.config["image_size"],
        n_images=project.n_images(),
        labeled=labeled,
        codes=[k % len(project.classes) for k in range(len(labeled))],
        exclude=labeled,
        n_next=n_next,
        stop_set=[i - 1 for i in project.stop_set],
        rounds=rounds,
        n_classes=len(project.classes),
        query_seed=query_seed,
    )


@pytest.fixture(scope="module")
def trainer():
    worker = TrainerProcess()
    yield worker
    worker.close()


@linux_only
@pytest.mark.slow  # starts a worker process (imports torch)
def test_the_worker_is_a_child_process_with_a_lower_priority(trainer):
    trainer.start()
    assert trainer.pid != os.getpid()
    state, ppid, nice = _stat(trainer.pid)
    assert ppid == os.getpid()
    assert nice == min(19, os.nice(0) + CHILD_NICENESS)


@pytest.mark.slow  # starts a worker process (imports torch)
def test_the_worker_trains_exactly_like_this_process(make_project, trainer):
    project = make_project()
    job = _job(project)
    seen = []
    there = trainer.run(job, progress=seen.append)
    assert there.pid == trainer.pid != os.getpid()
    assert seen and seen[-1] == 1.0  # the fit's epochs were reported as they ended
    here = train_round(job)
    assert here.pid == os.getpid()
    for key in ("queried", "scores", "stop_predictions", "n_epochs", "n_labeled"):
        assert getattr(there, key) == getattr(here, key), key
    assert len(there.queried) == 5 and not set(there.queried) & set(job.exclude)
    assert len(there.stop_predictions) == len(project.stop_set)
    assert (project.path / "checkpoints" / "round-1.joblib").is_file()


@pytest.mark.slow  # starts a worker process (imports torch)
def test_the_reserve_comes_from_the_fitted_model_or_its_checkpoint(make_project, trainer):
    project = make_project()
    job = _job(project)
    trained = trainer.run(job)
    reserve_job = ReserveJob.after(job, job.exclude + trained.queried, 4, 7)
    there = trainer.run(reserve_job)  # the model the worker keeps
    _process._LOOPS.clear()
    here = reserve_round(reserve_job)  # this process never fitted it: the checkpoint
    assert there.reserve == here.reserve
    assert len(here.reserve) == 4
    assert not set(here.reserve) & set(reserve_job.exclude)


def test_pool_size_scores_a_seeded_random_subset_of_the_unlabeled_images(make_project):
    project = make_project()
    job = _job(project, n_next=6, pool_size=6, query_seed=2024)
    unlabeled = np.setdiff1d(np.arange(project.n_images()), job.exclude)
    subset = unlabeled[np.random.default_rng(2024).choice(len(unlabeled), 6, replace=False)]
    # a subset as large as the batch: the batch is that subset, whatever the scores
    assert sorted(train_round(job).queried) == sorted(subset.tolist())
    other = train_round(_job(project, n_next=6, pool_size=6, query_seed=2025)).queried
    assert sorted(other) != sorted(subset.tolist())
    # a larger subset: the batch is the best-scored images of that subset
    big = train_round(_job(project, n_next=3, pool_size=20, query_seed=2024)).queried
    subset20 = unlabeled[np.random.default_rng(2024).choice(len(unlabeled), 20, replace=False)]
    assert set(big) <= set(subset20.tolist())


@pytest.mark.slow  # starts a worker process (imports torch)
def test_a_failing_job_reports_the_workers_traceback_and_the_worker_lives_on(make_project, trainer):
    project = make_project()
    trainer.start()
    pid = trainer.pid
    job = dataclasses.replace(_job(project), n_images=999)
    with pytest.raises(
        TrainingFailed,
        match=r"holds 60 images; the project has 999(.|\n)*"
        r"in the training process",
    ):
        trainer.run(job)
    assert trainer.pid == pid
    assert trainer.run(Ping())["pid"] == pid


@pytest.mark.slow  # starts a worker process (imports torch)
def test_a_worker_killed_during_a_round_fails_it_and_the_next_job_gets_a_new_worker(
    make_project, trainer
):
    project = make_project()
    trainer.start()
    killed = trainer.pid

    def kill(fraction):
        os.kill(killed, signal.SIGKILL)

    with pytest.raises(WorkerDied, match="training process ended"):
        trainer.run(_job(project), progress=kill)
    result = trainer.run(_job(project))
    assert result.pid == trainer.pid != killed
    assert result.round == 1


@linux_only
def test_the_parent_death_signal_is_sigkill():
    code = (
        "import ctypes, signal; from skal_cxr.labeling.worker._process import "
        "set_parent_death_signal as s; assert s(); v = ctypes.c_int(); "
        "ctypes.CDLL(None).prctl(2, ctypes.byref(v), 0, 0, 0); print(v.value)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == signal.SIGKILL


@linux_only
@pytest.mark.slow  # starts a worker process (imports torch)
def test_the_worker_dies_with_its_parent_even_while_its_pipe_stays_open():
    # A forked "holder" keeps the parent's end of the pipe open, so the worker
    # sees no end-of-file: only the death signal or the parent watch can end it
    # (as when it scores a large pool and does not touch the pipe for a while).
    code = (
        "import os, time; from skal_cxr.labeling.worker._process import TrainerProcess; "
        "t = TrainerProcess().start(); holder = os.fork()\n"
        "if holder == 0:\n    time.sleep(120); os._exit(0)\n"
        "print(t.pid, holder, flush=True); time.sleep(120)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    worker = holder = None
    try:
        worker, holder = map(int, parent.stdout.readline().split())
        assert _stat(worker)[1] == parent.pid
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stat = _stat(worker)
            if stat is None or stat[0] == "Z":
                break
            time.sleep(0.05)
        stat = _stat(worker)
        assert stat is None or stat[0] == "Z", f"the worker outlived its parent: {stat}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        for pid in (worker, holder):  # leave nothing running
            stat = None if pid is None else _stat(pid)
            if stat is not None and stat[0] != "Z":
                os.kill(pid, signal.SIGKILL)


def test_a_job_is_checked_once_when_it_is_made_and_dispatched_by_its_type(make_project):
    project = make_project()
    job = _job(project)
    assert isinstance(job.labeled, tuple) and isinstance(job.rounds, type(project.round_config))
    with pytest.raises(ValueError, match="labeled images but"):
        dataclasses.replace(job, codes=job.codes[:-1])
    with pytest.raises(ValueError, match="class codes must lie"):
        dataclasses.replace(job, codes=(9,) * len(job.codes))
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.round = 2
    assert _process.RUNNERS[TrainJob] is train_round
    with pytest.raises(TypeError, match="runs no dict"):
        _process.run_job({"round": 1})


def test_a_warm_job_is_normalised_like_a_round_and_needs_a_view(tmp_path):
    warm = WarmJob(path=tmp_path, image_size=[28, 28], n_images=np.int64(7), view=tmp_path / "v")
    assert (warm.path, warm.image_size, warm.n_images) == (str(tmp_path), (28, 28), 7)
    assert warm.view == str(tmp_path / "v") and type(warm.n_images) is int
    with pytest.raises(ValueError, match="needs the view"):
        WarmJob(path=tmp_path, image_size=(28, 28), n_images=7, view=None)


def test_a_checkpoint_written_before_the_layout_by_layer_still_loads():
    # a round's checkpoint pickles its progress callback by the module it was defined in
    import pickle

    from skal_cxr.labeling.worker._process import _EpochProgress

    new = pickle.dumps(_EpochProgress("p", 3), protocol=2)
    old = new.replace(b"skal_cxr.labeling.worker._process", b"skal_cxr.labeling._trainer")
    assert old != new
    callback = pickle.loads(old)
    assert type(callback) is _EpochProgress
    assert (callback.key, callback.n_epochs) == ("p", 3)
