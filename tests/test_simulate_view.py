"""Simulations on the pool's view: the default model, arms strategy@model, old folders."""

import json

import pytest

from skal_cxr.simulation import read_records, resolve_config, simulate
from skal_cxr.simulation._config import arm_models, split_arm

DATA = {"source": "phantoms", "n_samples": 240, "image_size": 16, "n_classes": 2}
VIEW = dict(
    data=DATA,
    seeds=[0, 1],
    n_initial=10,
    query_size=10,
    budget=30,
    n_mc_samples=4,
    view={"max_epochs": 1, "width": 4, "n_blocks": 2, "batch_size": 64},
    head={"n_steps": 30, "hidden_units": 16},
    estimator={"module__width": 4, "module__n_blocks": 2, "device": "cpu"},
    training={"max_epochs": 1, "min_train_steps": 2},
    report=False,
)
TIMINGS = ("fit_time", "query_time", "eval_time")


def _strip(records):
    out = []
    for r in records:
        r = {k: v for k, v in r.items() if k not in TIMINGS}
        if "models" in r:
            r["models"] = {
                m: {k: v for k, v in x.items() if k not in TIMINGS} for m, x in r["models"].items()
            }
        out.append(r)
    return sorted(out, key=lambda r: (r["kind"], r["strategy"], r["seed"], r["round"]))


def test_arms_name_their_model():
    config = resolve_config(strategies=["bald", "random", "random@cnn"])
    assert split_arm("bald", config) == ("bald", "view")
    assert split_arm("random@cnn", config) == ("random", "cnn")
    assert arm_models(config) == ["view", "cnn"]
    assert arm_models(resolve_config(model="cnn", strategies=["random"])) == ["cnn"]
    # a configuration written before the view existed: every arm is the CNN
    assert split_arm("random", {"strategies": ["random"]}) == ("random", "cnn")


@pytest.mark.slow
def test_the_default_view_simulation_trains_the_encoder_once_and_resumes(tmp_path, monkeypatch):
    from skal_cxr.embeddings import ContrastiveEncoder

    fits = []
    original = ContrastiveEncoder.fit

    def counted(self, X, y=None):
        fits.append(len(X))
        return original(self, X, y)

    monkeypatch.setattr(ContrastiveEncoder, "fit", counted)
    out = tmp_path / "run"
    result = simulate(out, **VIEW)
    config = result.config
    assert config["model"] == "view"
    assert config["strategies"] == ["typicality_until_5_then_max_entropy", "random", "random@cnn"]
    assert fits == [result.resolved["n_pool"]]  # once, on the whole pool
    assert len(list(out.glob("view-*.pkl"))) == 1
    records = read_records(out)
    runs = [r for r in records if r["kind"] == "active"]
    assert {r["strategy"] for r in runs} == set(config["strategies"])
    assert len(runs) == 3 * 2 * 3
    # the same label-free random draw starts random on the view and without it
    first = {(r["strategy"], r["seed"]): r["class_counts"] for r in runs if r["round"] == 0}
    assert first[("random", 0)] == first[("random@cnn", 0)]
    # the last round says how calibrated it is, raw and corrected
    last = [r for r in runs if r["round"] == 2]
    for rec in last:
        cal = rec["calibration"]
        assert cal["ece"] == pytest.approx(rec["metrics"]["ece"])
        assert 0 <= cal["ece_val_corrected"] <= 1 and 0 <= cal["ece_em_prior"] <= 1
        assert sum(cal["em_prior"]) == pytest.approx(1)
    assert all("calibration" not in r for r in runs if r["round"] < 2)
    # one full-data reference per seed: the better of the two models
    for base in (r for r in records if r["kind"] == "baseline"):
        assert set(base["models"]) == {"view", "cnn"}
        best = max(base["models"], key=lambda m: base["models"][m]["metrics"]["auroc"])
        assert base["model"] == best and base["metrics"] == base["models"][best]["metrics"]

    # interrupted: the last rounds of two runs are lost; the rerun reuses the encoder
    for name in ("typicality_until_5_then_max_entropy-seed1.jsonl", "random@cnn-seed0.jsonl"):
        path = out / "records" / name
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:1]))
    simulate(out, **VIEW)
    assert fits == [result.resolved["n_pool"]]  # not trained again
    assert _strip(read_records(out)) == _strip(records)


@pytest.mark.slow
def test_a_folder_of_the_previous_release_resumes_with_the_cnn(tmp_path):
    """A config.json without the model keys (written before the view) is the CNN's."""
    params = dict(VIEW, strategies=["random", "margin"], seeds=[0])
    params.pop("view"), params.pop("head")
    reference = tmp_path / "reference"
    simulate(reference, model="cnn", **params)
    old = tmp_path / "old"
    simulate(old, model="cnn", **params)
    meta = json.loads((old / "config.json").read_text())
    for key in ("model", "view", "head"):
        del meta["config"][key]  # as the previous release wrote it
    (old / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    path = old / "records" / "margin-seed0.jsonl"
    path.write_text(path.read_text().splitlines(keepends=True)[0])  # interrupted
    resumed = simulate(old, **params)  # no model given: the folder's
    assert resumed.config["model"] == "cnn"
    assert not list(old.glob("view-*"))  # no encoder trained
    assert _strip(read_records(old)) == _strip(read_records(reference))
    # asking for the view on that folder is another configuration
    from skal_cxr.simulation import ResultsDirError

    with pytest.raises(ResultsDirError, match="differs in: model"):
        simulate(old, model="view", **params)
