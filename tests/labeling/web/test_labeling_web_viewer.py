"""The reading view of the rater page in a real browser (Playwright + Debian's Chromium).

Zoom, pan, magnifier and flips are checked on the drawn pixels: each test
film (600x720, 12-bit) has a bright frame ``FRAME`` pixels wide and a bright
marker square in its top-left corner, so the width of the frame on the
screen is the drawn scale, and the marker's side shows a flip. The state the
page exposes on ``window.__viewer`` gives the geometry to compare with.
Screenshots go to the test's temporary folder, and to
``SKAL_CXR_SCREENSHOT_DIR`` when it is set.
"""

import json
import sqlite3

import numpy as np
import pytest
from _browser import FRAME, MARKER, Server, screenshot, write_films
from playwright import sync_api

from skal_cxr.labeling import init_project

CLASSES = ["normal", "moderate", "severe"]
READY = ".class-button:not([disabled])"


def _project(root, n=10, **options):
    write_films(root / "films", n)
    settings = {"labels_per_image": 1, "query_size": 6, "image_size": 16, **options}
    project = init_project(root / "study", root / "films", CLASSES, **settings)
    return root / "study", project.add_rater("dr_a")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path, token = _project(tmp_path_factory.mktemp("viewer"))
    srv = Server(path).start()
    try:
        yield srv, token
    finally:
        srv.stop()


def _open(page, base, token):
    page.goto(f"{base}/#token={token}")
    page.wait_for_selector(READY, timeout=30_000)
    return _state(page)


def _state(page):
    # one animation frame first: the page redraws on the next frame
    return page.evaluate("""() => new Promise((resolve) => requestAnimationFrame(
        () => requestAnimationFrame(() => resolve(window.__viewer.state()))))""")


def _bright_runs(page, selector, y_css, threshold=240):
    """Runs ``[(start, length), ...]`` in device pixels of bright pixels on one row."""
    return page.evaluate(
        """([selector, y, threshold]) => {
        const c = document.querySelector(selector);
        const row = Math.round(y * c.height / c.clientHeight);
        const d = c.getContext('2d').getImageData(0, row, c.width, 1).data;
        const runs = [];
        let start = -1;
        for (let x = 0; x <= c.width; x++) {
            const on = x < c.width && d[4 * x] >= threshold;
            if (on && start < 0) start = x;
            if (!on && start >= 0) { runs.push([start, x - start]); start = -1; }
        }
        return runs;
    }""",
        [selector, y_css, threshold],
    )


def _frame_width_on_screen(page, st):
    """Device pixels of the film's left frame on the middle row of the canvas."""
    x0, y_mid = page.evaluate("(h) => window.__viewer.toScreen(0, h / 2)", st["imageHeight"])
    runs = _bright_runs(page, "#image", y_mid)
    left = min(runs, key=lambda r: abs(r[0] - x0 * st["dpr"]))
    return left[1]


def test_zoom_pan_flip_change_the_drawn_scale(server, new_page, tmp_path):
    srv, token = server
    page = new_page(1366, 768)
    st = _open(page, srv.base, token)
    assert st["fit"] and st["imageWidth"] == 600 and st["imageHeight"] == 720
    assert st["scale"] == pytest.approx(st["fitScale"])
    # the frame is drawn FRAME image pixels wide at the fit scale
    assert _frame_width_on_screen(page, st) == pytest.approx(FRAME * st["scale"], abs=1.5)

    page.keyboard.press("+")
    zoomed = _state(page)
    assert zoomed["scale"] == pytest.approx(1.25 * st["scale"])
    assert not zoomed["fit"]
    page.keyboard.press("o")  # 1:1: one image pixel per device pixel
    one = _state(page)
    assert one["scale"] * one["dpr"] == pytest.approx(1.0)
    page.keyboard.press("f")
    assert _state(page)["scale"] == pytest.approx(st["scale"])

    # the wheel zooms about the pointer: the image point under it stays put
    cv = st["canvas"]
    px, py = cv["x"] + cv["width"] * 0.3, cv["y"] + cv["height"] * 0.4
    page.mouse.move(px, py)
    before = page.evaluate(
        "([x, y]) => window.__viewer.toImage(x, y)", [px - cv["x"], py - cv["y"]]
    )
    page.mouse.wheel(0, -400)
    page.wait_for_function("(s) => window.__viewer.state().scale > s * 1.5", arg=st["scale"])
    wheeled = _state(page)
    after = page.evaluate("([x, y]) => window.__viewer.toImage(x, y)", [px - cv["x"], py - cv["y"]])
    assert after == pytest.approx(before, abs=0.5)
    # measured on the pixels: the frame is wider on the screen by the same factor
    page.keyboard.press("f")
    page.keyboard.press("+")
    page.keyboard.press("+")
    z2 = _state(page)
    assert z2["scale"] == pytest.approx(1.5625 * st["scale"])
    assert _frame_width_on_screen(page, z2) == pytest.approx(FRAME * z2["scale"], abs=1.5)
    assert wheeled["scale"] > st["scale"]

    # Shift+drag pans by the drag, and leaves the window alone
    cx, cy = cv["x"] + cv["width"] / 2, cv["y"] + cv["height"] / 2
    page.keyboard.down("Shift")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy - 30, steps=3)
    page.mouse.up()
    page.keyboard.up("Shift")
    panned = _state(page)
    assert panned["panX"] - z2["panX"] == pytest.approx(60, abs=1)
    assert panned["panY"] - z2["panY"] == pytest.approx(-30, abs=1)
    assert (panned["center"], panned["width"]) == (z2["center"], z2["width"])
    # a plain drag is still window/level, and does not pan
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 80, cy + 40, steps=3)
    page.mouse.up()
    wl = _state(page)
    assert (wl["panX"], wl["panY"]) == (panned["panX"], panned["panY"])
    assert wl["width"] > panned["width"] and wl["center"] > panned["center"]
    # pan mode: a plain drag pans
    page.keyboard.press("p")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 50, cy, steps=3)
    page.mouse.up()
    pm = _state(page)
    assert pm["panMode"] and pm["panX"] - wl["panX"] == pytest.approx(-50, abs=1)
    assert pm["width"] == wl["width"]
    page.keyboard.press("p")

    # space resets the view; h flips: the side marker moves to the right edge
    page.keyboard.press("Space")
    reset = _state(page)
    assert reset["fit"] and reset["center"] == st["center"] and reset["width"] == st["width"]
    d = reset["drawn"]
    y_marker = d["y"] - cv["y"] + (FRAME + MARKER / 2) * reset["scale"]
    dpr = reset["dpr"]

    def marker_side():
        _state(page)  # after the next frame
        runs = [
            r
            for r in _bright_runs(page, "#image", y_marker)
            if r[1] >= MARKER * reset["scale"] * dpr * 0.8
        ]
        assert len(runs) == 1, runs
        middle = (runs[0][0] + runs[0][1] / 2) / dpr + cv["x"]
        return "left" if middle < d["x"] + d["width"] / 2 else "right"

    assert marker_side() == "left"
    page.keyboard.press("h")
    assert _state(page)["flipH"]
    assert marker_side() == "right"
    screenshot(page, tmp_path, "viewer_flipped.png")
    page.keyboard.press("h")
    assert marker_side() == "left"

    # zoomed out past 1/2: drawn from the 2x2-averaged level, at the same scale
    for _ in range(4):
        page.keyboard.press("-")
    small = _state(page)
    assert small["level"] == 1 and small["scale"] * small["dpr"] < 0.5
    x0, y_mid = page.evaluate("(h) => window.__viewer.toScreen(0, h / 2)", small["imageHeight"])
    runs = _bright_runs(page, "#image", y_mid, threshold=200)
    extent = (runs[-1][0] + runs[-1][1] - runs[0][0]) / small["dpr"]
    assert extent == pytest.approx(small["imageWidth"] * small["scale"], abs=2)
    assert runs[0][0] / small["dpr"] == pytest.approx(x0, abs=1.5)


def test_magnifier_draws_full_resolution_pixels(server, new_page, tmp_path):
    srv, token = server
    page = new_page(1366, 768)
    st = _open(page, srv.base, token)
    assert not st["loupe"]["on"]
    page.keyboard.press("m")
    # the pointer on the film's left frame, half-way down
    x0, y0 = page.evaluate("(h) => window.__viewer.toScreen(2, h / 2)", st["imageHeight"])
    cv = st["canvas"]
    page.mouse.move(cv["x"] + x0 + 20, cv["y"] + y0)
    page.mouse.move(cv["x"] + x0, cv["y"] + y0)
    page.wait_for_selector("#loupe:not([hidden])")
    for power in (3, 4, 2):
        lo = _state(page)["loupe"]
        assert lo["visible"] and lo["power"] == power
        assert lo["scale"] == pytest.approx(st["scale"] * power)
        size = page.evaluate("document.getElementById('loupe').clientHeight")
        runs = _bright_runs(page, "#loupe", size / 2)
        # the frame, FRAME source pixels wide, drawn at the loupe's scale
        widths = [r[1] for r in runs if r[1] > 2]
        assert widths, runs
        assert max(widths) == pytest.approx(FRAME * lo["scale"] * st["dpr"], abs=2)
        if power == 3:
            screenshot(page, tmp_path, "viewer_loupe.png")
            page.keyboard.press("]")
        elif power == 4:
            page.keyboard.press("[")
            page.keyboard.press("[")
    page.keyboard.press("m")
    sync_api.expect(page.locator("#loupe")).to_be_hidden()


@pytest.mark.parametrize("width,height", [(768, 1024), (1366, 768), (2560, 1440)])
def test_image_fills_the_viewport(server, new_page, tmp_path, width, height):
    srv, token = server
    page = new_page(width, height)
    st = _open(page, srv.base, token)
    screenshot(page, tmp_path, f"viewer_{width}x{height}.png")
    d = st["drawn"]
    iw, ih = st["imageWidth"], st["imageHeight"]
    # the largest this film could be drawn in the whole window, at its aspect ratio
    largest = min(width / iw, height / ih) ** 2 * iw * ih
    assert d["width"] * d["height"] >= 0.7 * largest, (d, largest)
    assert d["x"] >= 0 and d["y"] >= 0
    assert d["x"] + d["width"] <= width + 0.5 and d["y"] + d["height"] <= height + 0.5
    # every class button and skip are on the screen without scrolling
    for locator in page.locator(".class-button, #skip").all():
        box = locator.bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0
        assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height


def test_resizing_the_window_refits_the_film(server, new_page):
    srv, token = server
    page = new_page(1366, 768)
    wide = _open(page, srv.base, token)
    page.keyboard.press("p")  # pan mode alone keeps the fit
    page.set_viewport_size({"width": 768, "height": 1024})
    page.wait_for_function(
        "(w) => window.__viewer.state().canvas.width !== w", arg=wide["canvas"]["width"]
    )
    tall = _state(page)
    assert tall["fit"] and tall["scale"] == pytest.approx(tall["fitScale"])
    assert tall["drawn"]["width"] == pytest.approx(tall["canvas"]["width"], abs=1) or tall["drawn"][
        "height"
    ] == pytest.approx(tall["canvas"]["height"], abs=1)
    assert tall["scale"] != pytest.approx(wide["scale"])


def test_resizing_the_window_keeps_a_zoomed_view(server, new_page):
    """Zoomed and panned, a resize keeps the zoom relative to the fit and the point in view."""
    srv, token = server
    page = new_page(1366, 768)
    wide = _open(page, srv.base, token)
    page.keyboard.press("+")
    page.keyboard.press("+")
    box = page.locator("#image").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.press("p")  # pan mode: a drag pans
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 + 30, steps=3)
    page.mouse.up()
    before = page.evaluate("window.__viewer.view()")
    assert before["zoom"] == pytest.approx(1.5625) and not before["fit"]
    page.set_viewport_size({"width": 768, "height": 1024})
    page.wait_for_function(
        "(w) => window.__viewer.state().canvas.width !== w", arg=wide["canvas"]["width"]
    )
    after = page.evaluate("window.__viewer.view()")
    assert after["zoom"] == pytest.approx(1.5625, rel=1e-9)
    assert (after["px"], after["py"]) == pytest.approx((before["px"], before["py"]), rel=1e-9)
    assert not after["fit"]


def test_r_steps_through_the_files_windows(server, new_page):
    """A file with several WindowCenter/Width pairs (X-Window-Presets): R steps through them."""
    srv, token = server
    page = new_page()
    presets = [
        {"name": "NORMAL", "center": 2047.5, "width": 4095.0},
        {"name": "HARDER", "center": 1500.0, "width": 1000.0},
    ]

    def with_presets(route):
        response = route.fetch()
        headers = {**response.headers, "x-window-presets": json.dumps(presets)}
        route.fulfill(response=response, headers=headers)

    page.route("**/pixels?*", with_presets)
    first = _open(page, srv.base, token)
    assert first["filePresets"] == 2 and first["presetName"] == "NORMAL"
    page.keyboard.press("r")
    st = _state(page)
    assert (st["presetName"], st["center"], st["width"]) == ("HARDER", 1500.0, 1000.0)
    assert "HARDER" in page.text_content("#wl")
    page.keyboard.press("r")
    assert _state(page)["presetName"] == "NORMAL"


def test_note_placeholder_has_7_to_1_contrast(server, new_page):
    srv, token = server
    page = new_page()
    _open(page, srv.base, token)
    ratio = page.evaluate("""() => {
        const note = document.getElementById('note');
        const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
        const lum = (c) => {
            const [r, g, b] = c.map((v) => { v /= 255;
                return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const ph = getComputedStyle(note, '::placeholder');
        const fg = lum(rgb(ph.color)) * Number(ph.opacity || 1);
        const bg = lum(rgb(getComputedStyle(note).backgroundColor));
        return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    }""")
    assert ratio >= 7.0


def test_link_pasted_into_an_open_tab(server, new_page):
    srv, token = server
    page = new_page()
    page.goto(f"{srv.base}/")
    page.wait_for_selector("#message.visible")
    assert "No rater token" in page.text_content("#message")
    page.evaluate("window.__sameDocument = true")
    page.evaluate("(t) => { window.location.hash = '#token=' + t; }", token)
    page.wait_for_selector(READY, timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert "token" not in page.url
    assert page.text_content("#rater") == "dr_a"
    assert not page.is_visible("#message")


def test_round_0_reserve_is_not_from_a_previous_model(server, new_page):
    srv, token = server
    page = new_page()

    def as_reserve(round_):
        def handle(route):
            body = route.fetch().json()
            body.update(round=round_, from_previous_model=True)
            route.fulfill(json=body)

        return handle

    page.route("**/api/next?*", as_reserve(0))
    _open(page, srv.base, token)
    text = page.text_content("#previous-model")
    assert page.is_visible("#previous-model")
    assert "previous model" not in text and "starting selection" in text
    page.unroute("**/api/next?*")
    page.route("**/api/next?*", as_reserve(3))
    _open(page, srv.base, token)
    assert "round 3 model" in page.text_content("#previous-model")


def test_undo_shows_the_image_again_from_memory(server, new_page):
    srv, token = server
    page = new_page()
    pixel_requests = []
    page.on(
        "request",
        lambda r: pixel_requests.append(r.url.split("/")[-2]) if "/pixels" in r.url else None,
    )
    first = _open(page, srv.base, token)["imageId"]
    page.keyboard.press("1")
    page.wait_for_function(
        "(id) => window.__viewer.state().imageId !== id && !window.__viewer.state().busy", arg=first
    )
    second = _state(page)["imageId"]
    page.keyboard.press("Control+z")
    page.wait_for_function(
        "(id) => window.__viewer.state().imageId === id && !window.__viewer.state().busy", arg=first
    )
    assert pixel_requests.count(first) == 1  # no new request: it came from memory
    page.keyboard.press("2")  # relabel; the second image is cached too
    page.wait_for_function(
        "(id) => window.__viewer.state().imageId === id && !window.__viewer.state().busy",
        arg=second,
    )
    assert pixel_requests.count(second) == 1


@pytest.mark.slow
def test_unreachable_server_banner(tmp_path, new_page):
    path, token = _project(tmp_path, n=4, query_size=4)
    srv = Server(path).start()
    try:
        page = new_page()
        _open(page, srv.base, token)
        assert page.is_hidden("#offline")
        srv.stop()
        page.wait_for_selector("#offline:not([hidden])", timeout=20_000)
        assert "Cannot reach the labeling server" in page.text_content("#offline")
        # the film is dimmed (a 0.2 s CSS transition: wait for it, a loaded machine is slow)
        page.wait_for_function(
            "() => +getComputedStyle(document.getElementById('image')).opacity < 0.5",
            timeout=5_000,
        )
        assert page.locator(".class-button:not([disabled])").count() == 0
        page.keyboard.press("1")  # ignored while offline
        screenshot(page, tmp_path, "viewer_offline.png")
        srv.start()  # the same port again
        page.wait_for_selector("#offline", state="hidden", timeout=20_000)
        page.wait_for_selector(READY, timeout=20_000)
        image_id = _state(page)["imageId"]
        page.keyboard.press("3")
        page.wait_for_function(
            "(id) => window.__viewer.state().imageId !== id", arg=image_id, timeout=20_000
        )
    finally:
        srv.stop()
    with sqlite3.connect(f"file:{path / 'project.sqlite'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT image_id, label FROM labels").fetchall()
    assert rows == [(int(image_id), "severe")]


def _pixel_log(page):
    """The image id of every ``/pixels`` request the page makes, in order."""
    log = []
    page.on("request", lambda r: log.append(r.url.split("/")[-2]) if "/pixels" in r.url else None)
    return log


def _shown_after(page, image_id):
    page.wait_for_function(
        "(id) => { const s = window.__viewer.state(); return s.imageId && s.imageId !== id"
        " && !s.busy; }",
        arg=image_id,
    )
    return _state(page)["imageId"]


def test_the_next_images_are_prefetched(server, new_page):
    """While the rater reads one image, the next two (``ahead``) are fetched and decoded:
    two label keys in a row then show films from memory, with no request for either."""
    srv, token = server
    page = new_page()
    pixel_requests = _pixel_log(page)
    first = _open(page, srv.base, token)["imageId"]
    page.wait_for_function("() => window.__viewer.cache().prefetched === 2")
    assert len(pixel_requests) == 3 and pixel_requests[0] == first
    ahead = pixel_requests[1:]
    page.wait_for_function(
        "(ids) => ids.every((id) => window.__viewer.cache().ids.includes(id))", arg=ahead
    )
    page.keyboard.press("1")
    assert _shown_after(page, first) == ahead[0]
    page.keyboard.press("1")  # at once: before /api/next confirmed the film on screen
    assert _shown_after(page, ahead[0]) == ahead[1]
    assert [pixel_requests.count(i) for i in [first, *ahead]] == [1, 1, 1]
    assert page.evaluate("window.__viewer.cache()")["hits"] >= 2


def test_the_film_after_a_batch_comes_from_memory(tmp_path, new_page):
    """Across the end of a batch too: the reserve films the server holds for the rater
    are fetched while he reads the batch's last ones."""
    path, token = _project(tmp_path, n=8, query_size=3)
    srv = Server(path).start()
    try:
        page = new_page()
        pixel_requests = _pixel_log(page)
        shown = [_open(page, srv.base, token)["imageId"]]
        for _ in range(4):  # 3 batch films, then the reserve
            page.wait_for_function(
                "(n) => window.__viewer.cache().ready.length >= n",
                arg=len(shown) + 2,
            )
            before = list(pixel_requests)
            page.keyboard.press("1")
            shown.append(_shown_after(page, shown[-1]))
            assert shown[-1] in before, f"film {shown[-1]} was not fetched ahead"
            assert pixel_requests.count(shown[-1]) == 1
    finally:
        srv.stop()
    with sqlite3.connect(f"file:{path / 'project.sqlite'}?mode=ro", uri=True) as conn:
        kinds = {
            r[0]: (r[1], r[2]) for r in conn.execute("SELECT image_id, kind, round FROM queue")
        }
    # the batch's three films, then the reserve (or the next batch, if it came first)
    assert [kinds[int(i)] for i in shown[:3]] == [("batch", 0)] * 3
    assert all(kinds[int(i)] != ("batch", 0) for i in shown[3:])


def test_an_unassigned_image_is_403(server, new_page):
    srv, token = server
    page = new_page()
    shown = _open(page, srv.base, token)["imageId"]
    with sqlite3.connect(f"file:{srv.path / 'project.sqlite'}?mode=ro", uri=True) as conn:
        never = [
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM images WHERE id NOT IN (SELECT image_id FROM assignments)"
            )
        ]
    assert never
    codes = page.evaluate(
        """async (ids) => {
        const token = sessionStorage.getItem('skal_cxr.token');
        const out = [];
        for (const id of ids) {
            const r = await fetch(`/api/images/${id}/pixels`,
                                  {headers: {Authorization: `Bearer ${token}`}});
            out.push(r.status);
        }
        return out;
    }""",
        [shown] + never[:2],
    )
    assert codes[0] == 200 and set(codes[1:]) == {403}


def _png(values, bit_depth, filters):
    """A greyscale PNG of ``values`` whose row ``y`` uses filter ``filters[y % len]``."""
    import struct
    import zlib

    h, w = values.shape
    bpp = bit_depth // 8
    rows = values.astype(">u2" if bpp == 2 else "u1").reshape(h, -1).view("u1").reshape(h, -1)
    rows = rows.astype(np.int64)
    out, prev = [], np.zeros(w * bpp, dtype=np.int64)
    for y in range(h):
        cur, kind = rows[y], filters[y % len(filters)]
        a = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        c = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        if kind == 0:
            pred = np.zeros_like(cur)
        elif kind == 1:
            pred = a
        elif kind == 2:
            pred = prev
        elif kind == 3:
            pred = (a + prev) // 2
        else:
            p = a + prev - c
            pa, pb, pc = np.abs(p - a), np.abs(p - prev), np.abs(p - c)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prev, c))
        out.append(bytes([kind]) + ((cur - pred) % 256).astype("u1").tobytes())
        prev = cur

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"".join(out)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("bit_depth", [16, 8])
def test_png_decoder_reads_every_stored_bit(server, new_page, bit_depth):
    """SkalPng.decode gives back the exact stored values, through all five row filters."""
    srv, token = server
    page = new_page()
    page.goto(f"{srv.base}/")  # the page's scripts, no token needed
    rng = np.random.default_rng(bit_depth)
    top = 4095 if bit_depth == 16 else 255
    values = np.clip(np.cumsum(rng.integers(-40, 41, (37, 53)), axis=1) + top // 2, 0, top)
    values[0, :3] = [0, top, 1]
    png = _png(values, bit_depth, filters=[0, 1, 2, 3, 4])
    page.route("**/test-film.png", lambda route: route.fulfill(body=png, content_type="image/png"))
    got = page.evaluate("""async () => {
        const r = await fetch('/test-film.png');
        const img = await SkalPng.decode(await r.arrayBuffer());
        return [img.width, img.height, img.bitDepth, Array.from(img.data)];
    }""")
    assert got[:3] == [53, 37, bit_depth]
    np.testing.assert_array_equal(np.array(got[3]).reshape(37, 53), values)
    # anything else is refused with a clear message
    rgb = png.replace(
        b"IHDR" + png[16:24] + bytes([bit_depth, 0]), b"IHDR" + png[16:24] + bytes([bit_depth, 2])
    )
    page.route("**/test-rgb.png", lambda route: route.fulfill(body=rgb))
    message = page.evaluate("""() => fetch('/test-rgb.png').then((r) => r.arrayBuffer())
        .then((b) => SkalPng.decode(b)).then(() => 'decoded', (e) => e.message)""")
    assert "only non-interlaced 8- or 16-bit greyscale" in message
