"""The rater page in a real browser against the real server.

Playwright for Python drives Debian's Chromium (``/usr/bin/chromium``, or the
executable named by ``SKAL_CXR_CHROMIUM``) through the whole path a rater
takes: a project over a folder of 16-bit phantom PNGs, and one over the same
films as DICOM CR in a real Orthanc (a DICOMweb query), with one rater (the
Python API behind ``skal-cxr label init`` and ``add-rater``), ``skal-cxr
label serve`` in its own process on a free loopback port, the secret link, three
images labeled with the keyboard (one with a note, one undone and relabeled),
then the project's SQLite database is read back. Screenshots of the rater
and status pages go to the test's temporary folder, and also to
``SKAL_CXR_SCREENSHOT_DIR`` when it is set.
"""

import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _browser import free_port
from PIL import Image
from playwright import sync_api

from skal_cxr.labeling import init_project

CLASSES = ["normal", "moderate", "severe"]
N_IMAGES = 12


@pytest.fixture(scope="module", params=["folder", "dicomweb"])
def project(request, tmp_path_factory):
    """A project over 12 phantom CXRs with one rater.

    ``folder``: the films saved as 16-bit PNGs; ``dicomweb``: the same films as
    12-bit DICOM CR in a real Orthanc (``tests/pacs``), the project made from
    a DICOMweb query; the server is stopped before the page is served, since
    a project keeps its own copies.
    """
    from skal_cxr.datasets import make_cxr_phantoms

    root = tmp_path_factory.mktemp("labeling")
    X, _ = make_cxr_phantoms(N_IMAGES, image_size=128, random_state=0)
    stored = np.round(np.asarray(X) * 4095).astype(np.uint16)  # 12 bits, as from a detector
    path = root / "chest_xray_study"
    if request.param == "folder":
        images = root / "images"
        images.mkdir()
        for i, x in enumerate(stored):
            Image.fromarray(x).save(images / f"cxr_{i:02d}.png")
        project = init_project(
            path, images, CLASSES, labels_per_image=1, query_size=6, image_size=32
        )
    else:
        project = _dicomweb_project(path, stored, root / "orthanc")
    return path, project.add_rater("dr_a")


def _dicomweb_project(path, stored, folder):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pacs"))
    from _orthanc import OrthancServer, make_cr_films, orthanc_missing

    if orthanc_missing():
        pytest.skip(orthanc_missing())
    pytest.importorskip("dicomweb_client")
    from skal_cxr.labeling import init_dicomweb_project

    films = make_cr_films(np.zeros((N_IMAGES, 1, 1), np.uint8), N_IMAGES // 2, 2)
    for ds, x in zip(films, stored):
        ds.Rows, ds.Columns = x.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelData = x.tobytes()
    server = OrthancServer(folder).start()
    try:
        server.upload(films)
        os.environ["SKAL_CXR_TEST_PACS"] = f"{server.username}:{server.password}"
        return init_dicomweb_project(
            path,
            server.dicomweb_url,
            CLASSES,
            query="Modality=CR",
            auth="basic",
            credentials_env="SKAL_CXR_TEST_PACS",
            labels_per_image=1,
            query_size=6,
            image_size=32,
        )
    finally:
        os.environ.pop("SKAL_CXR_TEST_PACS", None)
        server.stop()


@pytest.fixture(scope="module")
def server(project):
    path, token = project
    port = free_port()
    log = open(path.parent / "serve.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skal_cxr.cli",
            "label",
            "serve",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a loaded CI machine imports torch slowly
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("server did not start:\n" + (path.parent / "serve.log").read_text())
            time.sleep(0.2)
        yield base, token, path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, errors


def _screenshot(page, tmp_path, name):
    page.screenshot(path=str(tmp_path / name))
    folder = os.environ.get("SKAL_CXR_SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / name))


def _shown_image(page):
    """The image id on screen once the page is ready for a key press."""
    page.wait_for_selector(".class-button:not([disabled])", timeout=30_000)
    return page.get_attribute("#image", "data-image-id")


def _standing_labels(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT l.id, l.image_id, r.name, l.label, l.seconds, l.note FROM labels l "
            "JOIN raters r ON r.id = l.rater_id ORDER BY l.id"
        ).fetchall()
    return rows


@pytest.mark.slow
def test_label_three_images_with_the_keyboard(server, page, tmp_path):
    base, token, path = server
    page.goto(f"{base}/#token={token}")
    first = _shown_image(page)
    # the token left the address bar, and the page greets the rater
    assert "token" not in page.url
    assert page.text_content("#rater") == "dr_a"
    assert page.locator(".class-button").all_text_contents() == [
        f"{i + 1} {c}" for i, c in enumerate(CLASSES)
    ]
    # the prediction stays hidden by default (it biases raters)
    assert page.is_hidden("#prediction")
    # the image is drawn at its own resolution, with contrast
    drawn = page.evaluate("window.__viewer.sourceStats()")
    assert (drawn["width"], drawn["height"]) == (128, 128)
    assert drawn["max"] - drawn["min"] > 100

    # window/level: dragging right widens the window, dragging down raises the level
    before = page.text_content("#wl")
    box = page.locator("#image").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 100, y + 40, steps=4)
    page.mouse.up()
    wl = page.locator("#wl")  # redrawn on the next frame
    sync_api.expect(wl).not_to_have_text(before)
    w0, c0 = map(int, re.findall(r"-?\d+", before))
    w1, c1 = map(int, re.findall(r"-?\d+", wl.text_content()))
    assert w1 > w0 and c1 > c0
    page.keyboard.press("r")
    sync_api.expect(wl).to_have_text(before)

    page.keyboard.press("2")  # first image: moderate
    second = _shown_image(page)
    assert second != first
    page.keyboard.press("n")  # a note, then back to the keys
    page.keyboard.type("rotated 1")  # typing digits must not label
    page.keyboard.press("Escape")
    page.keyboard.press("3")  # second image: severe, with the note
    third = _shown_image(page)
    page.keyboard.press("Control+z")  # undo brings the second image back
    sync_api.expect(page.locator("#image")).to_have_attribute("data-image-id", second)
    assert _shown_image(page) == second
    page.keyboard.press("1")  # relabel it: normal
    assert _shown_image(page) == third
    page.keyboard.press("3")  # third image: severe
    fourth = _shown_image(page)
    assert fourth not in (first, second, third)
    assert page.text_content("#batch-text").startswith("3 of 6")
    _screenshot(page, tmp_path, "labeling_rater.png")

    rows = _standing_labels(path / "project.sqlite")
    standing = {}
    for _, image_id, rater, label, seconds, note in rows:
        assert rater == "dr_a"
        standing[str(image_id)] = (label, seconds, note)
    assert {k: v[0] for k, v in standing.items()} == {
        first: "moderate",
        second: "normal",
        third: "severe",
    }
    assert all(v[1] is not None and v[1] > 0 for v in standing.values())
    # append-only: the undone label and its withdrawal are both kept
    assert [r[3] for r in rows] == ["moderate", "severe", None, "normal", "severe"]
    assert rows[1][5] == "rotated 1"

    page.goto(f"{base}/status")  # same tab: the token is kept
    page.wait_for_selector("#raters tr")
    assert page.locator("#raters tr").all_text_contents() == ["dr_a3"]
    _screenshot(page, tmp_path, "labeling_status.png")


@pytest.mark.slow
def test_unknown_token_is_refused(server, page):
    base, _, _ = server
    page.goto(f"{base}/#token=not-a-rater")
    page.wait_for_selector("#message.visible")
    assert "not valid" in page.text_content("#message")
    assert page.locator(".class-button").count() == 0
