"""Tests of skal_cxr.simulation: schedule, records, resume, parallel and Dask grids."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from skal_cxr import _results as _records
from skal_cxr._results import read_record_file, record_path
from skal_cxr.engine import build_estimator, initial_indices
from skal_cxr.models import training_epochs
from skal_cxr.simulation import (
    ConfigError,
    DataError,
    ResultsDirError,
    SimulationInterrupted,
    read_records,
    resolve_config,
    round_schedule,
    simulate,
)

TINY = dict(
    data={"source": "phantoms", "n_samples": 240, "image_size": 16},
    model="cnn",
    strategies=["random", "bald"],
    seeds=[0, 1],
    n_initial=12,
    query_size=12,
    budget=36,
    n_mc_samples=4,
    estimator={"module__width": 4, "module__n_blocks": 2, "device": "cpu"},
    training={"max_epochs": 2, "min_train_steps": 2},
    report=False,
)
TIMINGS = ("fit_time", "query_time", "eval_time")


def _strip(records):
    """Records without timings, in a canonical order."""
    out = [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]
    return sorted(out, key=lambda r: (r["kind"], r["strategy"], r["seed"], r["round"]))


# -- pure parts ----------------------------------------------------------------
def test_round_schedule():
    assert round_schedule(1000, 40, 40, 160) == [40, 80, 120, 160]
    assert round_schedule(1000, 40, 50, 150) == [40, 90, 140, 150]
    assert round_schedule(500, 10, 20, 0.1) == [10, 30, 50]
    assert round_schedule(30, 10, 20, 30) == [10, 30]
    assert round_schedule(30, 10, 20, 1.0) == [10, 30]
    with pytest.raises(ConfigError, match=r"budget \(1000 images\) is larger than the pool"):
        round_schedule(30, 10, 20, 1000)  # an error, not a silently shortened run
    assert round_schedule(100, 10, 5, 10) == [10]
    with pytest.raises(ConfigError, match="smaller than the initial"):
        round_schedule(1000, 40, 40, 0.01)
    with pytest.raises(ConfigError, match="larger than the pool"):
        round_schedule(10, 40, 40, 100)


def test_epochs_rule_is_the_estimators(toy_images):
    """The recorded epoch count is what MCDropoutCNN really runs."""
    X, y = toy_images
    config = resolve_config(
        model="cnn",
        training={"max_epochs": 1, "min_train_steps": 7},
        estimator={"module__width": 4, "device": "cpu"},
    )
    codes = np.unique(y, return_inverse=True)[1]
    net = build_estimator(config, 3, seed=0).fit(X[:40], codes[:40])  # 2 batches/epoch
    assert len(net.history) == net.epochs_for(40) == 4
    # the cosine schedule ends near 0 and starts at lr
    lrs = [g["lr"] for g in net.optimizer_.param_groups]
    assert lrs[0] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 3 / 4)))


def test_initial_indices_stratified_and_paired():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    a = initial_indices(y, 20, seed=3)
    assert len(a) == len(np.unique(a)) == 20
    np.testing.assert_array_equal(np.bincount(y[a]), [12, 6, 2])
    np.testing.assert_array_equal(a, initial_indices(y, 20, seed=3))
    assert not np.array_equal(a, initial_indices(y, 20, seed=4))


def test_resolve_config_defaults_and_errors():
    config = resolve_config()
    # the default on the pool's view against random on it and random with the CNN
    assert config["strategies"] == [
        "typicality_until_5_then_max_entropy",
        "random",
        "random@cnn",
    ]
    assert config["model"] == "view" and config["view"]["max_epochs"] == 5
    assert config["seeds"] == list(range(8)) and config["class_weight"] == "balanced"
    assert (config["n_initial"], config["query_size"], config["budget"]) == (10, 10, 100)
    assert config["initial"] == "strategy"
    assert config["data"]["source"] == "medmnist" and config["data"]["name"] == "pneumoniamnist"
    assert resolve_config(data="phantoms")["data"]["source"] == "phantoms"
    assert resolve_config(seeds=2)["seeds"] == [0, 1]
    assert resolve_config(data="pneumoniamnist")["data"]["name"] == "pneumoniamnist"
    assert resolve_config(data="medmnist:chestmnist")["data"]["name"] == "chestmnist"
    spec = resolve_config(data="/some/where/pneumoniamnist.npz")["data"]
    assert spec["root"] == "/some/where" and spec["name"] == "pneumoniamnist"
    assert json.loads(json.dumps(config)) == config
    for kwargs, match in [
        ({"strategies": ["random", "nope"]}, "unknown strategies"),
        ({"strategies": ["random@nope"]}, "unknown models"),
        ({"strategies": ["nope@cnn"]}, "unknown strategies"),
        ({"model": "vit"}, "model must be one of"),
        ({"view": {"max_epochs": -1}}, "max_epochs"),
        ({"seeds": [1, 1]}, "distinct"),
        ({"budget": 10, "n_initial": 20}, "smaller than the initial"),
        ({"budget": 1.5}, "fraction"),
        ({"n_initial": 0}, "n_initial"),
        ({"class_weight": "auto"}, "class_weight"),
        ({"sampler": "smoth"}, "unknown sampler"),
        ({"sampler": 3}, "sampler must be named"),
        ({"estimator": {"lr": -1}}, "lr"),
        ({"estimator": {"bogus": 1}}, "unknown estimator"),
        ({"data": {"source": "folder"}}, "csv"),
        ({"training": {"max_epochs": -1}}, "'max_epochs' parameter of MCDropoutCNN"),
        ({"estimator": {"batch_size": 0}}, "'batch_size' parameter of MCDropoutCNN"),
        ({"training": {"lr_schedule": "step"}}, "lr_schedule"),
    ]:
        with pytest.raises(ConfigError, match=match):
            resolve_config(**kwargs)


def test_the_configuration_accepts_what_the_estimator_accepts():
    """One source of constraints: the estimator's ``_parameter_constraints``."""
    from skal_cxr import MCDropoutCNN
    from skal_cxr._validation import check_params

    config = resolve_config(model="cnn", estimator={"batch_size": -1}, training={"max_epochs": 0})
    assert config["estimator"]["batch_size"] == -1 and config["training"]["max_epochs"] == 0
    est = build_estimator(config, 2, seed=0)
    assert est.batch_size == -1 and est.max_epochs == 0
    check_params(MCDropoutCNN(batch_size=-1, max_epochs=0))
    for bad in ({"batch_size": -2}, {"n_mc_samples": True}):
        with pytest.raises(ConfigError):
            resolve_config(**({"estimator": bad} if "batch_size" in bad else bad))
        with pytest.raises(ValueError):
            check_params(MCDropoutCNN(**bad))


def _rec(r, strategy="random", seed=0):
    return {
        "kind": "active",
        "strategy": strategy,
        "seed": seed,
        "round": r,
        "n_labeled": 10 * (r + 1),
        "metrics": {"auroc": 0.5 + r / 10},
    }


def test_record_writer_cuts_a_torn_line(tmp_path):
    path = record_path(tmp_path, "active", "random", 0)
    with _records.RecordWriter(path) as w:
        w.write(_rec(0))
    with open(path, "ab") as f:
        f.write(b'{"round": 1, "tor')  # a write cut short by a crash
    assert read_record_file(path) == [_rec(0)]
    with _records.RecordWriter(path) as w:
        w.write(_rec(1))
    assert read_record_file(path) == [_rec(0), _rec(1)]
    assert path.read_bytes().count(b"\n") == 2


def test_unreadable_data_is_a_data_error(tmp_path):
    with pytest.raises(DataError):
        simulate(tmp_path / "out", **{**TINY, "data": str(tmp_path / "missing.npz")})
    with pytest.raises(ConfigError):
        simulate(tmp_path / "out", **{**TINY, "n_jobs": 0})


def test_interrupted_fit_is_detected(tmp_path, monkeypatch):
    """skorch swallows KeyboardInterrupt inside fit; the run must stop, not record."""
    from skorch import NeuralNet

    original = NeuralNet.fit_loop

    def interrupted(self, X, y=None, epochs=None, **kw):  # stops after one epoch
        return original(self, X, y, epochs=1, **kw)

    monkeypatch.setattr(NeuralNet, "fit_loop", interrupted)
    with pytest.raises(SimulationInterrupted):
        simulate(
            tmp_path,
            **{
                **TINY,
                "seeds": [0],
                "strategies": ["random"],
                "baseline": False,
                "training": {"max_epochs": 2, "min_train_steps": 0},
            },
        )
    assert read_records(tmp_path) == []


def test_image_folder_is_split_by_patient(tmp_path):
    from PIL import Image

    from skal_cxr.simulation import load_simulation_data

    rng = np.random.default_rng(0)
    rows = ["filename,label,patient_id"]
    for i in range(60):
        label = ["normal", "diseased"][i % 2]
        Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{label},p{i // 3}")  # 3 images per patient
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    spec = resolve_config(
        data={
            "source": "folder",
            "csv": str(tmp_path / "labels.csv"),
            "image_dir": str(tmp_path),
            "label_columns": ["label"],
            "group_column": "patient_id",
            "image_size": 12,
        }
    )["data"]
    data = load_simulation_data(spec)
    assert data.split == "patient" and data.class_names == ["diseased", "normal"]
    sizes = len(data.y_pool), len(data.y_val), len(data.y_test)
    assert sum(sizes) == 60 and min(sizes) > 0
    # the images are noise: identify them by their pixels to recover patients
    images = {Image.open(tmp_path / f"{i}.png").tobytes(): i // 3 for i in range(60)}

    def patients(X):
        return {images[np.round(x[0] * 255).astype(np.uint8).tobytes()] for x in X}

    pool, val, test = patients(data.X_pool), patients(data.X_val), patients(data.X_test)
    assert not (pool & val) and not (pool & test) and not (val & test)
    bad = {**spec, "csv": str(tmp_path / "missing.csv")}
    with pytest.raises(DataError, match="image folder"):
        load_simulation_data(bad)


def test_image_folder_duplicates_never_reach_the_splits(tmp_path):
    from PIL import Image

    from skal_cxr.simulation import load_simulation_data

    rng = np.random.default_rng(0)
    rows = ["filename;label"]  # a ';' file, as Excel writes in many locales
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png;{['Normal', 'normal', 'sick'][i % 3]}")
    rows += ["./3.png;normal", "7.png;sick"]  # the same files again
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    spec = resolve_config(
        data={
            "source": "folder",
            "csv": str(tmp_path / "labels.csv"),
            "image_dir": str(tmp_path),
            "image_size": 8,
        }
    )["data"]
    with pytest.raises(DataError, match=r"line 42 \(./3.png\): same file as line 5"):
        load_simulation_data(spec)
    data = load_simulation_data({**spec, "duplicates": "keep_first"})
    assert [c.casefold() for c in data.class_names] == ["normal", "sick"]
    X = np.concatenate([data.X_pool, data.X_val, data.X_test])
    assert len(X) == 40 and len(np.unique(X.reshape(40, -1), axis=0)) == 40


# -- end to end ------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted tiny grid, run on two joblib (loky) workers."""
    out = tmp_path_factory.mktemp("reference")
    result = simulate(out, n_jobs=2, **TINY)
    return out, result


def test_simulate_writes_config_and_records(reference):
    out, result = reference
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"] == result.config and "skal_cxr_version" in meta
    schedule = meta["resolved"]["schedule"]
    assert schedule == [12, 24, 36]
    records = read_records(out)
    assert len(records) == 2 * 2 * 3 + 2  # strategies x seeds x rounds + baselines
    n_pool = meta["resolved"]["n_pool"]
    for strategy in TINY["strategies"]:
        for seed in TINY["seeds"]:
            recs = read_record_file(record_path(out, "active", strategy, seed))
            assert [r["n_labeled"] for r in recs] == schedule
            queried = [q for r in recs for q in r["queried"]]
            assert len(set(queried)) == len(queried) == 24
            assert recs[-1]["queried"] == []
            assert all(0 <= q < n_pool for q in queried)
            for a, b in zip(recs, recs[1:]):
                assert np.sum(b["class_counts"]) == np.sum(a["class_counts"]) + len(a["queried"])
                assert np.add(a["class_counts"], a["queried_counts"]).tolist() == b["class_counts"]
            assert {
                "auroc",
                "auprc",
                "ece",
                "balanced_accuracy_op",
                "mae_macro",
                "recall_severe",
                "recall_severe_op",
            } <= set(recs[0]["metrics"])
    # paired runs: every strategy starts from the same initial set per seed
    first = {(r["strategy"], r["seed"]): r for r in records if r["round"] == 0}
    assert first[("random", 0)]["class_counts"] == first[("bald", 0)]["class_counts"]
    assert first[("random", 0)]["metrics"] == first[("bald", 0)]["metrics"]
    baselines = [r for r in records if r["kind"] == "baseline"]
    assert [r["n_labeled"] for r in baselines] == [n_pool, n_pool]


def test_rerun_is_a_no_op_and_other_config_is_refused(reference, tmp_path):
    out, _ = reference
    before = {p.name: p.read_bytes() for p in (out / "records").iterdir()}
    simulate(out, **TINY)
    assert {p.name: p.read_bytes() for p in (out / "records").iterdir()} == before
    with pytest.raises(ResultsDirError, match="query_size"):
        simulate(out, **{**TINY, "query_size": 6})


def test_changed_data_is_refused(reference, tmp_path):
    out, _ = reference
    meta = json.loads((out / "config.json").read_text())
    meta["resolved"]["pool_class_counts"][0] += 1  # as if the data file were replaced
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ResultsDirError, match="pool_class_counts"):
        simulate(tmp_path, **TINY)


def test_overwrite(tmp_path):
    small = {**TINY, "strategies": ["random"], "seeds": [0], "baseline": False}
    simulate(tmp_path, **small)
    result = simulate(tmp_path, overwrite=True, **{**small, "budget": 24})
    assert [r["n_labeled"] for r in result.records] == [12, 24]


def _interrupt_after(n_records, monkeypatch, run):
    """Run ``run()`` with a KeyboardInterrupt raised once ``n_records`` are written."""
    original = _records.RecordWriter.write
    written = []

    def write(self, record):
        if len(written) == n_records:
            raise KeyboardInterrupt
        written.append(record)
        original(self, record)

    with monkeypatch.context() as patch:
        patch.setattr(_records.RecordWriter, "write", write)
        with pytest.raises(KeyboardInterrupt):
            run()


def test_resume_after_interruption_matches_uninterrupted(reference, tmp_path, monkeypatch):
    out, _ = reference
    _interrupt_after(5, monkeypatch, lambda: simulate(tmp_path, **TINY))
    partial = read_records(tmp_path)
    assert len(partial) == 5
    # a torn line, as a crash in the middle of a write leaves
    with open(record_path(tmp_path, "active", "bald", 0), "ab") as f:
        f.write(b'{"kind": "act')
    simulate(tmp_path, **TINY)
    assert _strip(read_records(tmp_path)) == _strip(read_records(out))


def test_warm_start_resume_matches_uninterrupted(tmp_path, monkeypatch):
    params = {
        **TINY,
        "strategies": ["max_entropy"],
        "seeds": [0],
        "baseline": False,
        "warm_start": True,
    }
    simulate(tmp_path / "full", **params)
    _interrupt_after(2, monkeypatch, lambda: simulate(tmp_path / "resumed", **params))
    simulate(tmp_path / "resumed", **params)
    full = _strip(read_records(tmp_path / "full"))
    assert full == _strip(read_records(tmp_path / "resumed"))
    assert [r["n_epochs"] for r in full] == [2, 2, 2]


def _tiny_cli(output, n_jobs):
    """The console-script command of the TINY run (``random,bald``, seeds 0 and 1)."""
    options = "--n-phantoms 240 --phantom-size 16 --strategies random,bald --seeds 0,1"
    options += " --n-initial 12 --query-size 12 --budget 36 --n-mc-samples 4 --width 4"
    options += " --n-blocks 2 --device cpu --min-train-steps 2 --max-epochs 2 --model cnn"
    return [
        sys.executable,
        "-m",
        "skal_cxr.cli",
        "simulate",
        "--output",
        str(output),
        *options.split(),
        "--n-jobs",
        str(n_jobs),
        "--quiet",
    ]


@pytest.mark.slow
def test_cli_sigint_then_resume(reference, tmp_path):
    """A real interruption of the console script, resumed by the same command."""
    out, _ = reference
    cmd = _tiny_cli(tmp_path, n_jobs=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # a child of a process that ignores SIGINT (as CI may) would ignore it too
    proc = subprocess.Popen(
        cmd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(read_records(tmp_path)) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be interrupted")
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    assert 3 <= len(read_records(tmp_path)) < 14
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _strip(read_records(tmp_path)) == _strip(read_records(out))
    assert (tmp_path / "report.md").is_file()


@pytest.mark.slow
def test_dask_local_cluster(reference, tmp_path):
    """The same grid through a real dask.distributed LocalCluster on loopback."""
    distributed = pytest.importorskip("distributed")
    out, _ = reference
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    ) as cluster:
        simulate(tmp_path, scheduler=cluster.scheduler_address, **TINY)
    assert _strip(read_records(tmp_path)) == _strip(read_records(out))


def test_ctrl_c_in_the_last_epoch_is_not_lost(toy_images):
    """skorch swallows KeyboardInterrupt; one in the final epoch must still stop the run."""
    from skorch.callbacks import Callback

    from skal_cxr import MCDropoutCNN
    from skal_cxr.simulation._runner import _timed_fit

    class CtrlCInLastEpoch(Callback):
        def on_epoch_begin(self, net, **kwargs):
            if len(net.history) == 2:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)  # let the handler run inside this epoch

    X, y = toy_images
    net = MCDropoutCNN(max_epochs=2, min_train_steps=0, callbacks=[CtrlCInLastEpoch()])
    # CI may start the tests with SIGINT ignored: stand in for an interactive shell
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(SimulationInterrupted, match="interrupted"):
            _timed_fit(lambda: net.fit(X, y), lambda: net, 0)
        assert len(net.history) == 2  # the epoch count alone would have passed
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_sampler_reaches_every_fit(tmp_path):
    """A sampler in the simulation rebalances each round's labeled set."""
    params = {
        **TINY,
        "strategies": ["random"],
        "seeds": [0],
        "baseline": False,
        "data": {
            "source": "phantoms",
            "n_samples": 240,
            "image_size": 16,
            "n_classes": 2,
            "weights": [0.8, 0.2],
        },
        "sampler": "random_over",
        "class_weight": None,
        "estimator": {**TINY["estimator"], "batch_size": 4},
        "training": {"max_epochs": 1, "min_train_steps": 8},
    }
    result = simulate(tmp_path, **params)
    assert result.config["sampler"] == "random_over"
    records = read_records(tmp_path)
    assert len(records) == 3
    # oversampled labeled sets are longer, so each fit's epochs follow the larger set
    for rec in records:
        n_res = 2 * max(rec["class_counts"])
        assert rec["n_epochs"] == training_epochs(n_res, 4, **params["training"])
    first = records[0]  # 12 labeled: 3 epochs without the sampler
    assert first["n_epochs"] != training_epochs(first["n_labeled"], 4, **params["training"])


def test_image_folder_from_a_cache_gives_the_same_runs(tmp_path):
    """With cache_dir the splits are lazy views of the memory map; results are unchanged."""
    from PIL import Image

    from skal_cxr.datasets import ImageRows
    from skal_cxr.simulation import load_simulation_data

    rng = np.random.default_rng(0)
    rows = ["filename,label"]
    for i in range(120):
        image = rng.integers(0, 120, (12, 12), dtype=np.uint8)
        image[:, : 6 * (i % 2) + 3] += 100  # the label shows
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{['normal', 'diseased'][i % 2]}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    data = {
        "source": "folder",
        "csv": str(tmp_path / "labels.csv"),
        "image_dir": str(tmp_path),
        "image_size": 12,
    }
    cached = {**data, "cache_dir": str(tmp_path / "cache")}
    split = load_simulation_data(resolve_config(data=cached)["data"])
    assert all(isinstance(X, ImageRows) for X in (split.X_pool, split.X_val, split.X_test))
    assert isinstance(split.X_pool.images, np.memmap)
    params = {**TINY, "strategies": ["bald"], "seeds": [0]}
    plain = simulate(tmp_path / "plain", **{**params, "data": data})
    from_cache = simulate(tmp_path / "cached", **{**params, "data": cached})
    assert _strip(from_cache.records) == _strip(plain.records)


# -- the results folder: nothing lost, nothing mixed ------------------------------
def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path):
    from skal_cxr._results import ResultsLock, claim_folder

    claim_folder(tmp_path)  # as the running simulation did
    with ResultsLock(tmp_path):
        with pytest.raises(
            ResultsDirError, match=f"in use by another simulation \\(process {os.getpid()} "
        ):
            simulate(tmp_path, **TINY)
    assert not (tmp_path / "records").exists()


def test_a_foreign_folder_is_refused_and_left_alone(tmp_path):
    (tmp_path / "report.md").write_text("my own report")
    (tmp_path / "summary.csv").write_text("a,b\n")
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "mine.jsonl").write_text('{"x": 1}\n')
    before = sorted((p, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    for overwrite in (False, True):
        with pytest.raises(ResultsDirError, match="not created by skal-cxr"):
            simulate(tmp_path, overwrite=overwrite, **TINY)
    assert sorted((p, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()) == before


def test_data_fingerprint_follows_the_content():
    from skal_cxr.simulation import load_simulation_data

    data = load_simulation_data(resolve_config(data=TINY["data"])["data"])
    same = load_simulation_data(resolve_config(data=TINY["data"])["data"])
    assert data.summary()["data_fingerprint"] == same.fingerprint()
    same.X_pool = same.X_pool.copy()
    same.X_pool[3, 0, 5, 5] += 0.25  # one pixel: same sizes, classes and shapes
    assert same.fingerprint() != data.fingerprint()
    other = load_simulation_data(resolve_config(data={**TINY["data"], "random_state": 1})["data"])
    assert other.summary()["n_pool"] == data.summary()["n_pool"]
    assert other.fingerprint() != data.fingerprint()


def test_replaced_images_are_refused_on_resume(reference, tmp_path):
    out, _ = reference
    meta = json.loads((out / "config.json").read_text())
    meta["resolved"]["data_fingerprint"] = "0" * 64  # as if every image were replaced
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ResultsDirError, match="data_fingerprint"):
        simulate(tmp_path, **TINY)


def test_damaged_records_are_repaired_and_resumed(reference, tmp_path):
    """A duplicated round, a malformed line mid-file and a stray file: rerun repairs."""
    import shutil

    from skal_cxr._results import RecordsWarning

    out, _ = reference
    shutil.copy(out / "config.json", tmp_path / "config.json")
    shutil.copytree(out / "records", tmp_path / "records")
    dup = record_path(tmp_path, "active", "random", 1)
    lines = dup.read_bytes().splitlines(keepends=True)
    dup.write_bytes(lines[0] + lines[1] + lines[1] + lines[2])  # round 1 twice
    bad = record_path(tmp_path, "active", "bald", 0)
    lines = bad.read_bytes().splitlines(keepends=True)
    bad.write_bytes(lines[0] + lines[1][:40] + b"\n" + lines[2])  # round 1 damaged
    (tmp_path / "records" / "notes.jsonl").write_text("[1]\n")
    with pytest.warns(RecordsWarning) as caught:
        simulate(tmp_path, **TINY)
    found = " ".join(str(w.message) for w in caught)
    assert "random-seed1.jsonl line 3: round 1 again" in found
    assert "bald-seed0.jsonl line 2: not valid JSON" in found and "notes.jsonl" in found
    assert "bald-seed0.jsonl line 3: round 2 where round 1 was expected" in found
    with pytest.warns(RecordsWarning, match="notes.jsonl"):
        records = read_records(tmp_path)
    assert _strip(records) == _strip(read_records(out))  # rounds 1, 2 of bald recomputed
    rejected = (tmp_path / "records" / "bald-seed0.jsonl.rejected").read_bytes()
    assert rejected == lines[1][:40] + b"\n" + lines[2]  # set aside, not lost


def _session_pids(sid):
    """Processes of a session (Linux /proc), the leader's workers included."""
    pids = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(stat))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_killed_parallel_runs_resume_to_identical_records(reference, tmp_path):
    """Fault injection: SIGKILL / SIGTERM the default multi-process run, rerun, compare.

    Workers must not outlive their parent (no record written after it died),
    SIGTERM ends the run like Ctrl-C, and every rerun resumes to the records
    of an uninterrupted run, with no duplicated round.
    """
    from skal_cxr._results import RecordsWarning

    out, _ = reference
    cmd = _tiny_cli(tmp_path, n_jobs=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def lines():
        folder = tmp_path / "records"
        return (
            sum(p.read_bytes().count(b"\n") for p in folder.glob("*.jsonl"))
            if folder.is_dir()
            else 0
        )

    for sig, after in [(signal.SIGKILL, 1), (signal.SIGTERM, 5), (signal.SIGKILL, 9)]:
        proc = subprocess.Popen(
            cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and lines() < after:
            time.sleep(0.02)
        if proc.poll() is not None:
            pytest.skip("the run finished before it could be interrupted")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        if sig == signal.SIGTERM:
            assert proc.returncode == 143, err
            assert err.strip() == "skal-cxr: terminated; rerun the same command to resume."
        else:
            assert proc.returncode == -signal.SIGKILL
        deadline = time.time() + 30  # workers notice within a second
        while _session_pids(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert _session_pids(proc.pid) == [], "a worker outlived its parent"
        written = lines()
        time.sleep(1.0)
        assert lines() == written  # nobody is writing any more
        with warnings.catch_warnings():
            warnings.simplefilter("error", RecordsWarning)  # no duplicated or torn round
            read_records(tmp_path)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert _strip(read_records(tmp_path)) == _strip(read_records(out))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_an_idle_worker_does_not_outlive_a_killed_run(tmp_path):
    """One task on two workers: the worker that never got a task ends with its parent too.

    It holds the parent's stderr; ``communicate`` returns only once every
    holder is gone (an idle loky worker used to live on for 300 s).
    """
    cmd = [
        sys.executable,
        "-m",
        "skal_cxr.cli",
        "simulate",
        "--output",
        str(tmp_path),
        "--n-phantoms",
        "240",
        "--phantom-size",
        "16",
        "--strategies",
        "random",
        "--seeds",
        "1",
        "--no-baseline",
        "--n-initial",
        "12",
        "--query-size",
        "12",
        "--budget",
        "120",
        "--n-mc-samples",
        "4",
        "--width",
        "4",
        "--n-blocks",
        "2",
        "--device",
        "cpu",
        "--min-train-steps",
        "2",
        "--max-epochs",
        "2",
        "--n-jobs",
        "2",
        "--quiet",
    ]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    record = tmp_path / "records" / "random-seed0.jsonl"
    deadline = time.time() + 240
    while (
        time.time() < deadline
        and proc.poll() is None
        and not (record.is_file() and record.read_bytes().count(b"\n") >= 1)
    ):
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    sid = proc.pid
    proc.send_signal(signal.SIGKILL)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        survivors = _session_pids(sid)
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        pytest.fail(f"workers {survivors} outlived their killed parent by 60 s")
    time.sleep(1)
    assert _session_pids(sid) == []


def _stored_png_folder(folder, n=120):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["filename,label"]
    for i in range(n):
        image = rng.integers(0, 120, (12, 12), dtype=np.uint8)
        image[:, : 6 * (i % 2) + 3] += 100
        Image.fromarray(image).save(folder / f"{i}.png", compress_level=0)
        rows.append(f"{i}.png,{['normal', 'diseased'][i % 2]}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return {
        "source": "folder",
        "csv": str(folder / "labels.csv"),
        "image_dir": str(folder),
        "image_size": 12,
    }


def test_data_fingerprint_is_the_files_not_the_cache(tmp_path):
    from skal_cxr.simulation import load_simulation_data

    data = _stored_png_folder(tmp_path / "img")
    plain = load_simulation_data(resolve_config(data=data)["data"])
    cached = load_simulation_data(
        resolve_config(data={**data, "cache_dir": str(tmp_path / "cache")})["data"]
    )
    assert cached.fingerprint() == plain.fingerprint()
    verified = load_simulation_data(
        resolve_config(data={**data, "cache_dir": str(tmp_path / "cache"), "verify_cache": True})[
            "data"
        ]
    )
    assert verified.fingerprint() == plain.fingerprint()


def test_a_same_size_edit_through_a_cache_is_refused_on_resume(tmp_path):
    from PIL import Image

    data = {**_stored_png_folder(tmp_path / "img"), "cache_dir": str(tmp_path / "cache")}
    params = {**TINY, "strategies": ["random"], "seeds": [0], "budget": 24, "data": data}
    simulate(tmp_path / "out", **params)
    path = tmp_path / "img" / "7.png"
    st = os.stat(path)
    Image.fromarray(np.full((12, 12), 3, np.uint8)).save(path, compress_level=0)
    assert os.stat(path).st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # cp -p, rsync -a, a restore
    with pytest.raises(ResultsDirError, match="data_fingerprint"):
        simulate(tmp_path / "out", **params)


def test_overwrite_deletes_only_the_files_it_wrote(tmp_path):
    """A user's file named like a record is neither deleted, rewritten nor read."""
    from skal_cxr._results import RecordsWarning

    small = {**TINY, "strategies": ["random"], "seeds": [0], "baseline": False}
    simulate(tmp_path, **small)
    mine = tmp_path / "records" / "my_model-seed1.jsonl"
    mine.write_text("my own notes, not records\n")
    with pytest.warns(RecordsWarning, match="my_model-seed1.jsonl was not written by skal-cxr"):
        result = simulate(tmp_path, overwrite=True, **{**small, "budget": 24})
    assert [r["n_labeled"] for r in result.records] == [12, 24]
    assert mine.read_text() == "my own notes, not records\n"
    assert not (tmp_path / "records" / "my_model-seed1.jsonl.rejected").exists()


def test_a_relative_results_folder_owns_its_records(tmp_path, monkeypatch):
    """``--output skal-cxr-results`` (relative to the working folder), as the README runs it."""
    import json
    import warnings

    monkeypatch.chdir(tmp_path)
    small = {**TINY, "strategies": ["random"], "seeds": [0]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "was not written by skal-cxr"
        result = simulate("out", **small)
    assert {(r["kind"], r["n_labeled"]) for r in result.records} >= {("active", 36)}
    listed = json.loads((tmp_path / "out" / ".skal-cxr").read_text())["files"]
    assert "records/random-seed0.jsonl" in listed
    assert not [f for f in listed if f.startswith("out/")]


def test_a_folder_from_before_the_ownership_list_is_adopted(tmp_path):
    small = {**TINY, "strategies": ["random"], "seeds": [0], "baseline": False}
    simulate(tmp_path, **small)
    (tmp_path / ".skal-cxr").write_text('{"created_by": "skal_cxr"}\n')  # an older marker
    result = simulate(tmp_path, overwrite=True, **{**small, "budget": 24})
    assert [r["n_labeled"] for r in result.records] == [12, 24]  # its records were replaced


def test_validation_and_test_images_are_scanned_once_not_every_round(monkeypatch):
    import skal_cxr._image_checks as image_checks
    from skal_cxr.simulation import load_simulation_data
    from skal_cxr.simulation._runner import _evaluate

    config = resolve_config(**{k: v for k, v in TINY.items() if k != "report"})
    data = load_simulation_data(config["data"])
    est = build_estimator(config, len(data.class_names), seed=0)
    est.fit(data.X_pool[:24], data.y_pool[:24])
    scans = []
    real = image_checks._check_same_sizes  # the first step of every full check_images
    monkeypatch.setattr(
        image_checks, "_check_same_sizes", lambda *a: scans.append(a[1]) or real(*a)
    )
    for _ in range(2):  # two rounds' evaluations
        _evaluate(est.predict_proba, data)
    assert scans == []
    est.predict_proba(data.X_pool[:5])  # other images are still checked
    assert scans == ["X"]
