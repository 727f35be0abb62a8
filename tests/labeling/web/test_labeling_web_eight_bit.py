"""8-bit films: sent as their own file (or an 8-bit PNG), decoded by the page, windowed gently.

An 8-bit JPEG or PNG export went as a 16-bit PNG holding 0-255 (about three
times the file's bytes); the window presets, made for raw detector values,
turned a third of such a film white.
"""

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from _browser import Server, write_films  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from skal_cxr.labeling import create_app, init_project  # noqa: E402

CLASSES = ["normal", "moderate", "severe"]


def _eight_bit(folder, kind, mode="L"):
    """The 12-bit test films of ``_browser`` written again as 8-bit ``kind`` files."""
    write_films(folder / "src", 3)
    folder.mkdir(exist_ok=True)
    for path in sorted((folder / "src").glob("*.png")):
        arr = np.asarray(Image.open(path), dtype=np.float64)
        img = Image.fromarray(np.round(arr / 4095 * 255).astype(np.uint8)).convert(mode)
        img.save(folder / f"{path.stem}.{kind}", **({"quality": 90} if kind == "jpg" else {}))
        path.unlink()
    (folder / "src").rmdir()


@pytest.mark.parametrize("kind,media", [("png", "image/png"), ("jpg", "image/jpeg")])
def test_an_8bit_source_is_sent_as_its_own_file(tmp_path, kind, media):
    _eight_bit(tmp_path / "films", kind)
    project = init_project(tmp_path / "p", tmp_path / "films", CLASSES, image_size=16, query_size=3)
    auth = {"Authorization": f"Bearer {project.add_rater('a')}"}
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    image_id = project.next_image("a")["image_id"]
    for query in ("?format=png", "?format=png&max_size=1024"):
        r = client.get(f"/api/images/{image_id}/pixels{query}", headers=auth)
        assert r.status_code == 200 and r.headers["content-type"] == media
        assert r.content == project.image_path(image_id).read_bytes()
        assert r.headers["x-bits-stored"] == "8"
        assert (r.headers["x-image-width"], r.headers["x-full-width"]) == ("600", "600")


def test_an_8bit_film_that_needs_a_transform_goes_as_an_8bit_png(tmp_path):
    _eight_bit(tmp_path / "films", "png", mode="RGB")  # grey in colour: converted to L
    project = init_project(tmp_path / "p", tmp_path / "films", CLASSES, image_size=16, query_size=3)
    auth = {"Authorization": f"Bearer {project.add_rater('a')}"}
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    image_id = project.next_image("a")["image_id"]
    r = client.get(f"/api/images/{image_id}/pixels?format=png", headers=auth)
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.mode == "L" and img.size == (600, 720)
        sent = np.asarray(img)
    source = np.asarray(Image.open(project.image_path(image_id)).convert("L"))
    assert np.array_equal(sent.astype(int), source.astype(int) - int(source.min()))
    assert len(r.content) <= project.image_path(image_id).stat().st_size


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["jpg", "png"])
def test_the_page_shows_an_8bit_film_and_its_presets_keep_it_readable(tmp_path, new_page, kind):
    _eight_bit(tmp_path / "films", kind)
    project = init_project(tmp_path / "p", tmp_path / "films", CLASSES, image_size=16, query_size=3)
    token = project.add_rater("dr_a")
    srv = Server(tmp_path / "p").start()
    try:
        page = new_page(1366, 768)
        page.goto(f"{srv.base}/#token={token}")
        page.wait_for_selector(".class-button:not([disabled])", timeout=30_000)
        image_id = page.evaluate("window.__viewer.state().imageId")
        st = page.evaluate("window.__viewer.state()")
        assert (st["imageWidth"], st["imageHeight"]) == (600, 720) and not st["partial"]
        stats = page.evaluate("window.__viewer.sourceStats()")
        assert stats["bits"] == 8 and stats["max"] == 255  # the frame is white in the file
        source = np.asarray(Image.open(project.image_path(image_id)).convert("L"))
        frame_share = float(np.mean(source >= 250))
        for key, code in (("lung", "Digit2"), ("mediastinum", "Digit3"), ("bone", "Digit4")):
            page.keyboard.press(f"Shift+{code}")
            page.wait_for_function("(k) => window.__viewer.state().preset === k", arg=key)
            white = page.evaluate("window.__viewer.sourceStats().white")
            assert white < frame_share + 0.05, (key, white)
    finally:
        srv.stop()
