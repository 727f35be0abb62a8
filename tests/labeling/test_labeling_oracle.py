"""A one-rater oracle labeling through the HTTP API acquires what ``simulate`` acquires."""

import csv
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
from _labeling_fakes import CLASSES, TINY, write_phantoms  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from skal_cxr.engine import initial_indices  # noqa: E402
from skal_cxr.labeling import create_app, init_project  # noqa: E402
from skal_cxr.simulation import load_simulation_data, simulate  # noqa: E402
from skal_cxr.simulation._config import resolve_data_spec  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["mean_std", "random"])
def test_oracle_through_the_api_reproduces_simulate(tmp_path, strategy):
    image_dir = tmp_path / "images"
    labels = write_phantoms(image_dir, n=90)
    names = [f"im{i:03d}.png" for i in range(len(labels))]
    with open(tmp_path / "all.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "label"], *zip(names, labels)])
    data = {
        "source": "folder",
        "csv": str(tmp_path / "all.csv"),
        "image_dir": str(image_dir),
        "image_size": 16,
        "classes": CLASSES,
    }
    common = {  # the CNN from pixels, whose rounds both sides recorded before the view
        "model": "cnn",
        "n_mc_samples": TINY["n_mc_samples"],
        "estimator": TINY["estimator"],
        "training": TINY["training"],
    }
    sim = simulate(
        tmp_path / "sim",
        data=data,
        strategies=[strategy],
        seeds=[3],
        n_initial=6,
        initial="random",
        query_size=5,
        budget=21,
        baseline=False,
        class_weight=None,  # the labeling project's default
        report=False,
        n_jobs=1,
        **common,
    )
    records = sorted(sim.records, key=lambda r: r["round"])

    # the project's pool is the simulation's pool, in the same order
    split = load_simulation_data(resolve_data_spec(data))
    images = [np.asarray(split.X_pool[i, 0]) for i in range(len(split.y_pool))]
    from skal_cxr.datasets._image_io import read_image

    by_pixels = {read_image(image_dir / n, (16, 16)).tobytes(): n for n in names}
    pool_names = [by_pixels[im.tobytes()] for im in images]
    with open(tmp_path / "pool.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename"], *([n] for n in pool_names)])
    truth = dict(zip(names, labels))

    project = init_project(
        tmp_path / "project",
        image_dir,
        CLASSES,
        csv=tmp_path / "pool.csv",
        strategy=strategy,
        initial_size=6,
        query_size=5,
        budget=21,
        reserve_size=0,
        image_size=16,
        random_state=3,
        stop_set_size=20,
        **common,
    )
    token = project.add_rater("oracle")
    table = {i: rel for i, rel, _, _ in project.image_table()}
    with TestClient(create_app(project, allowed_hosts=["testserver"])) as client:
        auth = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            nxt = client.get("/api/next", headers=auth).json()
            if nxt["reason"] == "done":
                break
            if nxt["image_id"] is None:
                time.sleep(0.05)
                continue
            assert not nxt["from_previous_model"]
            r = client.post(
                "/api/labels",
                headers=auth,
                json={"image_id": nxt["image_id"], "label": truth[table[nxt["image_id"]]]},
            )
            assert r.status_code == 201
        assert nxt["reason"] == "done"
    rounds = project.rounds()

    def positions(ids):
        return [int(i) - 1 for i in ids]

    expected_initial = initial_indices(split.y_pool, 6, 3, stratify=False).tolist()
    assert positions(rounds[0]["queried"]) == expected_initial
    assert len(rounds) == len(records) + 1
    for rnd, rec in zip(rounds[1:], records):
        assert positions(rnd["queried"]) == rec["queried"]
        assert rnd["n_labeled"] == rec["n_labeled"]
        assert rnd["class_counts"] == rec["class_counts"]
    assert sum(len(r["queried"]) for r in rounds) == 21
