"""Current and prior side by side, and no silent stall at 1:1 (Playwright, Chromium).

A film with other films of its patient opens 2-up: the current film on the
left, the most recent prior on the right, each with its own window/level,
zoom and pan, linked by default (what is done to one is done to the other)
and unlinkable. A zoom past the display-size copy shows a loading indicator
and the scale of what is drawn until the full film is on screen.
"""

import pytest
from _browser import Server, screenshot, write_films
from playwright import sync_api

from skal_cxr.labeling import init_project

CLASSES = ["normal", "moderate", "severe"]
READY = ".class-button:not([disabled])"
# patient p1: image 1 (2024-03-01), 2 (2023-11-20), 3 (2024-06-15); ids count from 1
PRIOR_OF = {"1": "2", "2": "3", "3": "1"}  # the oldest film's "prior" is the newest other


def _shown(page):
    page.wait_for_selector(READY, timeout=30_000)
    page.wait_for_function("() => !window.__viewer.state().busy")
    return page.evaluate("window.__viewer.state().imageId")


def _patient_project(tmp_path):
    write_films(tmp_path / "films", 6, width=600, height=720)
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
    return project, project.add_rater("dr_a")


def _until_patient(page):
    shown = _shown(page)
    for _ in range(6):
        if shown in PRIOR_OF:
            return shown
        page.keyboard.press("1")
        page.wait_for_function("(id) => window.__viewer.state().imageId !== id", arg=shown)
        shown = _shown(page)
    raise AssertionError("no film of patient p1 was shown")


def _zoom(st):
    return st["scale"] / st["fitScale"]


#: Records the size changes of both viewports (``window.__resizes``), for failure messages.
_WATCH_RESIZES = """() => { window.__resizes = [];
  for (const id of ["canvas-wrap", "prior-wrap"]) {
    new ResizeObserver((entries) => window.__resizes.push(
      [id, Math.round(performance.now()), entries[0].contentRect.width,
       entries[0].contentRect.height])).observe(document.getElementById(id));
  } }"""


def _until(page, condition, arg=None):
    """``wait_for_function``; on a timeout, what both viewers show and every resize."""
    try:
        page.wait_for_function(condition, arg=arg)
    except sync_api.TimeoutError:
        seen = page.evaluate(
            "() => ({now: Math.round(performance.now()), current: window.__viewer.state(),"
            " prior: window.__viewer.prior(), resizes: window.__resizes})"
        )
        raise AssertionError(f"timed out waiting for {condition}: {seen}") from None


@pytest.mark.slow
@pytest.mark.parametrize("size", [(1366, 768), (2560, 1440)])
def test_current_and_prior_side_by_side_linked_and_unlinked(tmp_path, new_page, size):
    project, token = _patient_project(tmp_path)
    srv = Server(tmp_path / "study").start()
    try:
        page = new_page(*size)
        page.goto(f"{srv.base}/#token={token}")
        page.evaluate(_WATCH_RESIZES)
        shown = _until_patient(page)
        _until(page, "() => window.__viewer.prior().viewer.imageId !== null")
        prior = page.evaluate("window.__viewer.prior()")
        assert prior["shown"] and prior["linked"] and prior["priorId"] == PRIOR_OF[shown]
        assert len(prior["films"]) == 2  # the patient's two other films
        cur_box = page.locator("#image").bounding_box()
        pri_box = page.locator("#prior").bounding_box()
        assert cur_box["x"] + cur_box["width"] <= pri_box["x"]  # current left, prior right
        assert abs(cur_box["width"] - pri_box["width"]) <= 2
        assert "image " + PRIOR_OF[shown] in page.text_content("#prior-id")
        name = f"labeling_priors_{size[0]}x{size[1]}.png"
        screenshot(page, tmp_path, name)

        # linked: a zoom of the current film zooms the prior (once both films are drawn:
        # on a loaded machine a key pressed while a film still loads could be lost)
        _until(
            page,
            "() => window.__viewer.state().loadingFull !== true"
            " && window.__viewer.prior().viewer.loadingFull !== true",
        )
        page.keyboard.press("+")
        _until(
            page,
            "() => { const s = window.__viewer.state();"
            " return Math.abs(s.scale / s.fitScale - 1.25) < 1e-6; }",
        )
        page.keyboard.press("+")
        _until(
            page,
            "() => { const s = window.__viewer.prior().viewer;"
            " return Math.abs(s.scale / s.fitScale - 1.5625) < 1e-6; }",
        )
        cur, pri = (
            page.evaluate("window.__viewer.state()"),
            page.evaluate("window.__viewer.prior().viewer"),
        )
        assert _zoom(cur) == pytest.approx(1.5625, rel=1e-6)
        assert _zoom(pri) == pytest.approx(_zoom(cur), rel=1e-6)

        # window/level on the prior (click it, then keys and a drag) changes the current too
        page.click("#prior", position={"x": 20, "y": 20})
        assert page.evaluate("window.__viewer.prior().active") == "prior"
        page.keyboard.press("Shift+Digit4")  # bone on both
        _until(page, "() => window.__viewer.state().preset === 'bone'")
        assert page.evaluate("window.__viewer.prior().viewer.preset") == "bone"
        before = page.evaluate("window.__viewer.state().width")
        box = page.locator("#prior").bounding_box()
        page.mouse.move(box["x"] + 100, box["y"] + 100)
        page.mouse.down()
        page.mouse.move(box["x"] + 180, box["y"] + 100, steps=4)  # right: wider
        page.mouse.up()
        _until(page, "(w) => window.__viewer.state().width > w", arg=before)
        assert page.evaluate("window.__viewer.prior().viewer.preset") is None
        page.keyboard.press("-")  # zoom out on the prior: the current follows
        _until(
            page,
            "() => { const s = window.__viewer.state();"
            " return Math.abs(s.scale / s.fitScale - 1.25) < 1e-6; }",
        )

        # unlinked (L): the prior alone changes
        page.keyboard.press("l")
        sync_api.expect(page.locator("#link-toggle")).to_have_attribute("aria-pressed", "false")
        cur = page.evaluate("window.__viewer.state()")
        page.keyboard.press("+")
        page.keyboard.press("ArrowRight")
        _until(
            page,
            "(z) => { const s = window.__viewer.prior().viewer;"
            " return Math.abs(s.scale / s.fitScale - z) < 1e-6; }",
            arg=1.5625,
        )
        after = page.evaluate("window.__viewer.state()")
        assert _zoom(after) == pytest.approx(_zoom(cur)) and after["width"] == cur["width"]
        # the button links again: the prior takes the current film's view
        page.click("#link-toggle")
        _until(
            page,
            "() => Math.abs(window.__viewer.prior().viewer.scale"
            " / window.__viewer.prior().viewer.fitScale - 1.25) < 1e-6",
        )

        # B shows the next prior, D goes back to one viewport
        page.keyboard.press("b")
        _until(page, "(id) => window.__viewer.prior().viewer.imageId !== id", arg=PRIOR_OF[shown])
        page.keyboard.press("d")
        sync_api.expect(page.locator("#prior-wrap")).to_be_hidden()
        wide = page.locator("#image").bounding_box()
        assert wide["width"] > cur_box["width"] * 1.8
    finally:
        srv.stop()


def test_a_film_without_other_films_keeps_one_viewport(tmp_path, new_page):
    write_films(tmp_path / "films", 2, width=200, height=240)
    project = init_project(
        tmp_path / "study", tmp_path / "films", CLASSES, query_size=2, image_size=16
    )
    token = project.add_rater("dr_a")
    srv = Server(tmp_path / "study").start()
    try:
        page = new_page(1366, 768)
        page.goto(f"{srv.base}/#token={token}")
        _shown(page)
        page.wait_for_timeout(300)
        assert not page.evaluate("window.__viewer.prior().shown")
        sync_api.expect(page.locator("#prior-wrap")).to_be_hidden()
        assert page.is_disabled("#prior-toggle")
    finally:
        srv.stop()


def test_one_to_one_shows_loading_and_the_true_scale_until_the_full_film(tmp_path, new_page):
    write_films(tmp_path / "films", 2, width=1100, height=1320)
    project = init_project(
        tmp_path / "study", tmp_path / "films", CLASSES, query_size=2, image_size=16
    )
    token = project.add_rater("dr_a")
    srv = Server(tmp_path / "study").start()
    try:
        page = new_page(900, 700)  # films come display-size (1024) first
        held = []
        page.route(lambda url: "/pixels" in url and "max_size" not in url, lambda r: held.append(r))
        page.goto(f"{srv.base}/#token={token}")
        _shown(page)
        sync_api.expect(page.locator("#loading")).to_be_hidden()
        page.keyboard.press("o")
        page.wait_for_function("() => window.__viewer.state().loadingFull")
        sync_api.expect(page.locator("#loading")).to_be_visible()
        text = page.text_content("#zoom")
        sent = page.evaluate("window.__viewer.state().sentWidth")
        # what is drawn is the copy, 1100 / sent times larger than 1:1
        assert text.startswith(f"{round(100 * 1100 / sent)} % of a {sent}-px copy")
        assert "loading the full film" in text
        while not held:  # the full film's request, held back until now
            page.wait_for_timeout(50)
        while held:
            held.pop().continue_()
        page.wait_for_function("() => !window.__viewer.state().partial", timeout=30_000)
        sync_api.expect(page.locator("#loading")).to_be_hidden()
        assert page.text_content("#zoom").startswith("100 %")
    finally:
        srv.stop()
