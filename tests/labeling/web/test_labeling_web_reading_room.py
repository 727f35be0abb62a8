"""Adjudication, related films, progressive transfer in a real browser (Playwright, Chromium).

Two raters label the same film differently through their pages, the
adjudicator's page then shows the film with both labels and notes and a key
decides; the status page shows the agreement. A patient's films are shown
side by side, oldest to newest. A film larger than the screen comes first as
a display-size 16-bit PNG, and at full resolution on zoom.
"""

import sqlite3

import pytest
from _browser import Server, screenshot, write_films
from playwright import sync_api

from skal_cxr.labeling import init_project

CLASSES = ["normal", "moderate", "severe"]
READY = ".class-button:not([disabled])"


def _shown(page):
    page.wait_for_selector(READY, timeout=30_000)
    page.wait_for_function("() => !window.__viewer.state().busy")
    return page.evaluate("window.__viewer.state().imageId")


@pytest.mark.slow
def test_two_raters_disagree_and_the_adjudicator_decides(tmp_path, new_page):
    write_films(tmp_path / "films", 6, width=200, height=240)
    project = init_project(
        tmp_path / "study",
        tmp_path / "films",
        CLASSES,
        labels_per_image=2,
        query_size=4,
        image_size=16,
        consensus="adjudicate",
    )
    tokens = {n: project.add_rater(n) for n in ("dr_a", "dr_b")}
    tokens["dr_c"] = project.add_rater("dr_c", role="adjudicator")
    srv = Server(tmp_path / "study").start()
    try:
        a, b, c = new_page(), new_page(), new_page()
        a.goto(f"{srv.base}/#token={tokens['dr_a']}")
        disputed = _shown(a)
        a.keyboard.press("n")
        a.keyboard.type("small effusion only")
        a.keyboard.press("Escape")
        a.keyboard.press("1")  # dr_a: normal
        b.goto(f"{srv.base}/#token={tokens['dr_b']}")
        assert _shown(b) == disputed  # the same film, second label
        b.keyboard.press("n")
        b.keyboard.type("consolidation right lower zone")
        b.keyboard.press("Escape")
        b.keyboard.press("3")  # dr_b: severe
        _shown(b)

        c.goto(f"{srv.base}/#token={tokens['dr_c']}")
        assert _shown(c) == disputed
        sync_api.expect(c.locator("#review")).to_be_visible()
        items = c.locator("#review-labels li").all_text_contents()
        assert len(items) == 2
        assert items[0].startswith("dr_a: normal") and "small effusion only" in items[0]
        assert items[1].startswith("dr_b: severe") and "consolidation" in items[1]
        assert c.is_disabled("#skip")
        screenshot(c, tmp_path, "labeling_adjudication.png")
        c.keyboard.press("2")  # dr_c decides: moderate
        c.wait_for_function("(id) => window.__viewer.state().imageId !== id", arg=disputed)
        sync_api.expect(c.locator("#review")).to_be_hidden()  # back to ordinary labeling

        with sqlite3.connect(
            f"file:{tmp_path / 'study' / 'project.sqlite'}?mode=ro", uri=True
        ) as conn:
            rows = conn.execute(
                "SELECT a.image_id, r.name, a.label FROM adjudications a "
                "JOIN raters r ON r.id = a.rater_id"
            ).fetchall()
            (seconds,) = conn.execute("SELECT seconds FROM adjudications").fetchone()
        assert rows == [(int(disputed), "dr_c", "moderate")]
        assert seconds > 0  # the page sends the time dr_c spent on the film, as for a label
        ids, codes = project.labeled_set()
        assert dict(zip(ids.tolist(), codes.tolist())) == {int(disputed): 1}

        c.goto(f"{srv.base}/status")
        c.wait_for_selector("#pairs tr")
        row = c.locator("#pairs > tr").first.locator(":scope > td")
        assert row.nth(0).text_content() == "dr_a / dr_b"
        assert row.nth(1).text_content() == "1" and row.nth(2).text_content() == "0 %"
        assert "adjudicated: 1" in c.text_content("#adjudication")
        screenshot(c, tmp_path, "labeling_status_agreement.png")
    finally:
        srv.stop()


def test_a_large_film_comes_display_size_first_then_full(tmp_path, new_page):
    write_films(tmp_path / "films", 2, width=1100, height=1320)
    project = init_project(
        tmp_path / "study", tmp_path / "films", CLASSES, query_size=2, image_size=16
    )
    token = project.add_rater("dr_a")
    srv = Server(tmp_path / "study").start()
    try:
        page = new_page(900, 700)  # a view under 1024 px: films come at 1024
        requests = []
        page.on("request", lambda r: requests.append(r.url) if "/pixels" in r.url else None)
        page.goto(f"{srv.base}/#token={token}")
        shown = _shown(page)
        st = page.evaluate("window.__viewer.state()")
        assert st["partial"] and (st["imageWidth"], st["imageHeight"]) == (1100, 1320)
        assert st["sentWidth"] == round(1100 * 1024 / 1320)  # longest side 1024
        first = [u for u in requests if f"/images/{shown}/" in u]
        assert len(first) == 1 and "format=png" in first[0] and "max_size=1024" in first[0]
        page.keyboard.press("o")  # 1:1 needs every pixel
        page.wait_for_function("() => !window.__viewer.state().partial", timeout=30_000)
        full = page.evaluate("window.__viewer.state()")
        assert full["sentWidth"] == 1100 and full["scale"] == pytest.approx(1 / full["dpr"])
        assert full["center"] == st["center"]  # same window
        urls = [u for u in requests if f"/images/{shown}/" in u]
        assert len(urls) == 2 and "max_size" not in urls[1]
        stats = page.evaluate("window.__viewer.sourceStats()")
        assert (stats["width"], stats["height"]) == (1100, 1320) and stats["max"] == 255
    finally:
        srv.stop()


def test_related_films_side_by_side_oldest_to_newest(tmp_path, new_page):
    write_films(tmp_path / "films", 6, width=200, height=240)
    lines = ["filename,patient,date"]
    visits = {0: ("p1", "2024-03-01"), 1: ("p1", "2023-11-20"), 2: ("p1", "2024-06-15")}
    for i in range(6):
        patient, date = visits.get(i, (f"q{i}", "2024-01-01"))
        lines.append(f"film_{i:02d}.png,{patient},{date}")
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    project = init_project(
        tmp_path / "study",
        tmp_path / "films",
        CLASSES,
        csv=tmp_path / "list.csv",
        group_column="patient",
        date_column="date",
        query_size=6,
        image_size=16,
        cold_start="random",
    )
    token = project.add_rater("dr_a")
    srv = Server(tmp_path / "study").start()
    try:
        page = new_page(1366, 768)
        page.goto(f"{srv.base}/#token={token}")
        shown = _shown(page)
        # label until a film of patient p1 is on screen
        for _ in range(6):
            if shown in ("1", "2", "3"):
                break
            page.keyboard.press("1")
            page.wait_for_function("(id) => window.__viewer.state().imageId !== id", arg=shown)
            shown = _shown(page)
        assert shown in ("1", "2", "3")
        page.keyboard.press("c")
        page.wait_for_selector("#related .related-film img[src]")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#related img')]"
            ".every((i) => i.complete && i.naturalWidth > 0)"
        )
        figures = page.locator("#related .related-film")
        assert [figures.nth(i).get_attribute("data-image-id") for i in range(3)] == [
            "2",
            "1",
            "3",
        ]  # oldest to newest
        captions = page.locator("#related figcaption").all_text_contents()
        assert [c.split(" ")[0] for c in captions] == ["2023-11-20", "2024-03-01", "2024-06-15"]
        assert page.locator("#related .current").get_attribute("data-image-id") == shown
        boxes = [figures.nth(i).bounding_box() for i in range(3)]
        assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]  # side by side
        screenshot(page, tmp_path, "labeling_related.png")
        page.keyboard.press("Escape")
        sync_api.expect(page.locator("#related")).to_be_hidden()
    finally:
        srv.stop()
