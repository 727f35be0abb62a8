"""Corrections, deferrals, revisions and zone scores in a real browser (Playwright, Chromium).

A rater corrects an older label from the "My labels" panel; an adjudicator
defers a dispute with D and a reason (it comes back last, with the reason),
decides the others and revises a decision from the same panel; a Brixia
project shows its six zones over the film, scored with the keys, with the
total and its class. Screenshots go to the test's folder and to
``SKAL_CXR_SCREENSHOT_DIR`` when set (docs/_static/labeling_zones.png).
"""

import json
import sqlite3

import pytest
from _browser import Server, screenshot, write_films
from playwright import sync_api

from skal_cxr.labeling import init_project

CLASSES = ["normal", "moderate", "severe"]
READY = ".class-button:not([disabled])"


def _shown(page, ready=READY):
    page.wait_for_selector(ready, timeout=30_000)
    page.wait_for_function("() => !window.__viewer.state().busy")
    return page.evaluate("window.__viewer.state().imageId")


def _next(page, previous, ready=READY):
    page.wait_for_function("(id) => window.__viewer.state().imageId !== id", arg=previous)
    return _shown(page, ready)


def _rows(path, sql):
    with sqlite3.connect(f"file:{path / 'project.sqlite'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow
def test_a_rater_corrects_an_old_label_and_an_adjudicator_defers_and_revises(tmp_path, new_page):
    write_films(tmp_path / "films", 6, width=200, height=240)
    path = tmp_path / "study"
    project = init_project(
        path,
        tmp_path / "films",
        CLASSES,
        labels_per_image=2,
        query_size=3,
        image_size=16,
        consensus="adjudicate",
    )
    tokens = {n: project.add_rater(n) for n in ("dr_a", "dr_b")}
    tokens["dr_c"] = project.add_rater("dr_c", role="adjudicator")
    srv = Server(path).start()
    try:
        a = new_page()
        a.goto(f"{srv.base}/#token={tokens['dr_a']}")
        films, shown = [], _shown(a)
        for key in "123":
            films.append(shown)
            a.keyboard.press(key)
            shown = _next(a, shown)
        a.click("#mine-box summary")
        items = a.locator("#mine-list li")
        sync_api.expect(items).to_have_count(3)
        assert [items.nth(i).get_attribute("data-image-id") for i in range(3)] == films[::-1]
        oldest = items.nth(2)
        oldest.locator("select").select_option("severe")
        oldest.locator("button.mine-correct").click()
        sync_api.expect(a.locator("#last-action")).to_contain_text(
            f"Corrected image {films[0]}: \u201cnormal\u201d \u2192 \u201csevere\u201d"
        )
        sync_api.expect(a.locator("#mine-list li").first).to_have_attribute(
            "data-image-id", films[0]
        )  # the correction is now the most recent
        rows = _rows(path, "SELECT id, image_id, label, supersedes FROM labels ORDER BY id")
        old = next(r for r in rows if r[1] == int(films[0]))  # its first label
        assert rows[-1][1:] == (int(films[0]), "severe", old[0])  # supersedes that label
        assert old[2] == "normal"  # the old label stays (append-only)

        b = new_page()
        b.goto(f"{srv.base}/#token={tokens['dr_b']}")
        shown = _shown(b)
        for film in films:  # dr_b: normal on all three: all disputed
            assert shown == film
            b.keyboard.press("1")
            shown = _next(b, shown) if film != films[-1] else shown

        c = new_page()
        c.goto(f"{srv.base}/#token={tokens['dr_c']}")
        assert _shown(c) == films[0]
        sync_api.expect(c.locator("#defer")).to_be_visible()
        c.keyboard.press("d")
        c.keyboard.type("wait for the CT report")
        c.keyboard.press("Enter")
        assert _next(c, films[0]) == films[1]
        sync_api.expect(c.locator("#last-action")).to_contain_text("Deferred image")
        c.keyboard.press("2")  # moderate
        assert _next(c, films[1]) == films[2]
        c.keyboard.press("3")  # severe
        assert _next(c, films[2]) == films[0]  # the deferred dispute comes back last
        sync_api.expect(c.locator("#deferred-note")).to_contain_text("wait for the CT report")
        c.click("#mine-box summary")
        decisions = c.locator("#mine-list li.decision")
        sync_api.expect(decisions).to_have_count(2)
        first = decisions.nth(1)  # most recent first: films[1] is the older decision
        assert first.get_attribute("data-image-id") == films[1]
        first.locator("select").select_option("severe")
        first.locator("button.mine-correct").click()
        sync_api.expect(c.locator("#last-action")).to_contain_text(
            f"Corrected image {films[1]}: \u201cmoderate\u201d \u2192 \u201csevere\u201d"
        )
        screenshot(c, tmp_path, "labeling_corrections.png")
        decided = _rows(path, "SELECT image_id, label, supersedes FROM adjudications ORDER BY id")
        assert [(i, lab) for i, lab, _ in decided] == [
            (int(films[1]), "moderate"),
            (int(films[2]), "severe"),
            (int(films[1]), "severe"),
        ]
        assert decided[2][2] is not None
        deferred = _rows(path, "SELECT image_id, reason FROM deferrals")
        assert deferred == [(int(films[0]), "wait for the CT report")]
    finally:
        srv.stop()


@pytest.mark.slow
def test_the_brixia_zones_are_drawn_over_the_film_and_scored_with_keys(tmp_path, new_page):
    write_films(tmp_path / "films", 4, width=300, height=360)
    path = tmp_path / "study"
    project = init_project(
        path,
        tmp_path / "films",
        CLASSES,
        query_size=2,
        image_size=16,
        scoring="brixia",
        bins="0,7,12",
    )
    token = project.add_rater("dr_a")
    srv = Server(path).start()
    try:
        page = new_page(1366, 768)
        page.goto(f"{srv.base}/#token={token}")
        ready = "#zone-box:not([hidden])"
        shown = _shown(page, ready)
        page.wait_for_selector("#zones:not([hidden]) .zone")
        assert page.is_hidden("#classes")  # the class is the binned total, not a key
        zones = page.locator("#zones .zone")
        sync_api.expect(zones).to_have_count(6)
        # the overlay follows the drawn film in a frame of its own: wait until it has
        # (on a loaded machine the preview's draw and the overlay's layout can lag)
        page.wait_for_function(
            "() => { const z = document.querySelector('#zones .zone');"
            " const d = window.__viewer.state().drawn; if (!z || !d) return false;"
            " const r = z.getBoundingClientRect();"
            " return Math.abs(r.x - d.x) < 1.5 && Math.abs(r.y - d.y) < 1.5"
            " && Math.abs(r.width - d.width / 2) < 1.5; }"
        )
        drawn = page.evaluate("window.__viewer.state().drawn")
        box_a = zones.nth(0).bounding_box()  # right upper zone: the viewer's left, top third
        assert box_a["x"] == pytest.approx(drawn["x"], abs=1.5)
        assert box_a["y"] == pytest.approx(drawn["y"], abs=1.5)
        assert box_a["width"] == pytest.approx(drawn["width"] / 2, abs=1.5)
        assert box_a["height"] == pytest.approx(drawn["height"] / 3, abs=1.5)
        box_f = zones.nth(5).bounding_box()  # left lower: the viewer's right, bottom third
        assert box_f["x"] == pytest.approx(drawn["x"] + drawn["width"] / 2, abs=1.5)
        assert box_f["y"] == pytest.approx(drawn["y"] + 2 * drawn["height"] / 3, abs=1.5)
        for key in "1112":
            page.keyboard.press(key)
        page.keyboard.press("Tab")  # skip E for now, then F
        page.keyboard.press("1")
        assert page.is_disabled("#zone-save")  # E is not scored yet
        page.keyboard.press("Shift+Tab")  # back to E
        page.keyboard.press("1")
        assert page.evaluate("window.__zones()")["values"] == [1, 1, 1, 2, 1, 1]
        sync_api.expect(page.locator("#zone-total")).to_have_text("7 of 18")
        sync_api.expect(page.locator("#zone-class")).to_have_text("moderate")
        sync_api.expect(zones.nth(3).locator(".zone-score")).to_have_text("D 2")
        screenshot(page, tmp_path, "labeling_zones.png")
        page.keyboard.press("Enter")
        _next(page, shown, ready)
        rows = _rows(path, "SELECT image_id, label, scores FROM labels")
        assert [(i, lab, json.loads(s)) for i, lab, s in rows] == [
            (int(shown), "moderate", [1, 1, 1, 2, 1, 1])
        ]
        assert page.evaluate("window.__zones()")["values"] == [None] * 6  # a fresh film
        page.click("#mine-box summary")  # correct the scores: the class follows the total
        scores = page.locator("#mine-list li input.mine-scores")
        sync_api.expect(scores).to_have_value("1 1 1 2 1 1")
        scores.fill("3 3 3 3 0 0")
        scores.press("Enter")
        sync_api.expect(page.locator("#last-action")).to_contain_text(
            f"Corrected image {shown}: \u201cmoderate\u201d \u2192 \u201csevere\u201d"
        )
        rows = _rows(path, "SELECT label, scores, supersedes FROM labels ORDER BY id")
        assert [(lab, json.loads(s)) for lab, s, _ in rows][-1] == ("severe", [3, 3, 3, 3, 0, 0])
        assert rows[-1][2] is not None
    finally:
        srv.stop()


def test_the_status_page_names_a_dispute_no_adjudicator_may_decide(tmp_path, new_page):
    write_films(tmp_path / "films", 4, width=120, height=144)
    path = tmp_path / "study"
    project = init_project(
        path,
        tmp_path / "films",
        CLASSES,
        labels_per_image=2,
        query_size=2,
        image_size=16,
        consensus="adjudicate",
    )
    project.add_rater("dr_a")
    token = project.add_rater("dr_c", role="adjudicator")
    image_id = project.next_image("dr_a")["image_id"]
    project.submit_label("dr_a", image_id, "normal")
    assert project.next_image("dr_c")["image_id"] == image_id
    project.submit_label("dr_c", image_id, "severe")
    srv = Server(path).start()
    try:
        page = new_page()
        page.goto(f"{srv.base}/#token={token}")
        page.wait_for_function("() => window.__viewer.state().imageId !== null")
        page.goto(f"{srv.base}/status")
        line = page.locator("#adjudication .stuck")
        sync_api.expect(line).to_have_count(1)
        sync_api.expect(line).to_contain_text(
            f"(image {image_id}) cannot be adjudicated: its only adjudicator, dr_c, labeled it"
        )
        sync_api.expect(line).to_contain_text("skal-cxr label add-rater")
    finally:
        srv.stop()
