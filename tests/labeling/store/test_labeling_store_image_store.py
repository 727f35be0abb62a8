"""Display-size previews rendered ahead (``ImageStore.warm``), and never stale.

When the page asks ``/api/next`` for a film and the ones after it, their
display-size 16-bit PNGs are rendered in a background thread; the page's own
request for them is then answered from ``previews/`` without decoding the
film again. A film replaced on disk after its preview was rendered ahead is
still served from its new content.
"""

import io
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _browser import write_films  # noqa: E402

from skal_cxr.labeling import create_app, init_project  # noqa: E402
from skal_cxr.labeling.store import _image_store  # noqa: E402
from skal_cxr.labeling.store._image_files import display_pixels, pixels_png16  # noqa: E402

CLASSES = ["normal", "moderate", "severe"]
SIZE = 256  # the display size the page asks for in these tests (films are 600x720)


@pytest.fixture
def study(tmp_path):
    write_films(tmp_path / "films", 8)
    project = init_project(
        tmp_path / "study", tmp_path / "films", CLASSES, query_size=4, image_size=16
    )
    auth = {"Authorization": f"Bearer {project.add_rater('dr_a')}"}
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    return project, client, auth, tmp_path / "films"


def _pixels(client, auth, image_id, size=SIZE):
    r = client.get(f"/api/images/{image_id}/pixels?format=png&max_size={size}", headers=auth)
    assert r.status_code == 200, r.text
    return r


def _png(data):
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


def _previews(project, image_id, size=SIZE):
    return sorted(project.image_store.preview_dir.glob(f"{image_id}-*-{size}.png16"))


def test_next_renders_the_previews_of_the_films_ahead(study, monkeypatch):
    project, client, auth, _ = study
    first = client.get("/api/next", headers=auth).json()["image_id"]
    _pixels(client, auth, first)  # the page's display size is now known
    nxt = client.get("/api/next?ahead=2", headers=auth).json()
    assert nxt["image_id"] == first and len(nxt["ahead"]) == 2
    project.image_store.settle()
    for image_id in nxt["ahead"]:
        assert len(_previews(project, image_id)) == 1, image_id
    # served from previews/: the film is not decoded nor encoded again
    monkeypatch.setattr(_image_store, "pixels_png16", None)
    monkeypatch.setattr(_image_store, "display_pixels", None)
    for image_id in nxt["ahead"]:
        sent = _png(_pixels(client, auth, image_id).content)
        path = project.image_store.path(image_id)
        expected = _png(pixels_png16(display_pixels(path)[0], SIZE)[0])
        np.testing.assert_array_equal(sent, expected)


def test_previews_ahead_reach_past_the_rater_s_own_films(study):
    """Before any page asked, the films of the batch nobody labeled yet are rendered at
    the default display size."""
    project, client, auth, _ = study
    nxt = client.get("/api/next", headers=auth).json()
    project.image_store.settle()
    with project.db.connect() as conn:
        batch = [str(i) for i, s in project.queue.image_states(conn).items() if not s["done"]]
    assert nxt["image_id"] in batch and len(batch) == 4
    size = _image_store.DEFAULT_DISPLAY_SIZE
    for image_id in batch:
        assert len(_previews(project, image_id, size)) == 1, image_id


@pytest.mark.parametrize("same_mtime", [False, True])
def test_a_film_replaced_after_its_preview_was_rendered_ahead_is_not_stale(study, same_mtime):
    project, client, auth, folder = study
    first = client.get("/api/next", headers=auth).json()["image_id"]
    _pixels(client, auth, first)
    ahead = client.get("/api/next?ahead=2", headers=auth).json()["ahead"][0]
    project.image_store.settle()
    assert len(_previews(project, ahead)) == 1
    path = project.image_store.path(ahead)
    stat = path.stat()
    new = folder / "new.png"
    Image.fromarray(np.full((720, 600), 1234, np.uint16)).save(new)
    if same_mtime:  # an edit with its time stamp restored (cp -p, rsync -a)
        os.utime(new, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(new, path)
    client.get("/api/next?ahead=2", headers=auth)  # renders the new content ahead
    project.image_store.settle()
    sent = _png(_pixels(client, auth, ahead).content)
    assert sent.shape == (256, 213) and np.all(sent == 0)  # shifted to its minimum, 1234
    assert len(_previews(project, ahead)) == 1  # the old content's preview is gone


def test_previews_ahead_reach_into_the_reserve_before_the_batch_ends(study):
    """Near the end of a batch, the reserve films raters get next are rendered too."""
    project, client, auth, _ = study
    for _ in range(3):  # 3 of the batch's 4 films
        image_id = client.get("/api/next", headers=auth).json()["image_id"]
        r = client.post("/api/labels", headers=auth, json={"image_id": image_id, "label": "normal"})
        assert r.status_code == 201, r.text
    client.get("/api/next", headers=auth)
    project.image_store.settle()
    with project.db.connect() as conn:
        reserve = json.loads(project.queue.latest_round(conn)["reserve"])
    assert len(reserve) >= 3
    size = _image_store.DEFAULT_DISPLAY_SIZE
    for image_id in reserve[:3]:  # the batch's last film, then three of the reserve
        assert len(_previews(project, image_id, size)) == 1, image_id


def test_the_films_of_the_latest_call_are_rendered_first(study, monkeypatch):
    """The film the page needs next goes before those an earlier call put in hand."""
    store = study[0].image_store
    order, go = [], threading.Event()

    def record(image_id, max_size):
        order.append(image_id)
        go.wait(30)

    monkeypatch.setattr(store, "_warm_one", record)
    store.warm([1, 2, 3], SIZE)
    for _ in range(3000):  # the first film is under way
        if order:
            break
        time.sleep(0.01)
    store.warm([5, 4, 2], SIZE)
    go.set()
    store.settle()
    assert order == ["1", "5", "4", "2", "3"]
