"""Fixtures of the labeling tests (the helpers live in ``_labeling_fakes``)."""

import pytest
from _labeling_fakes import CLASSES, TINY, write_phantoms


@pytest.fixture(scope="session")
def phantom_folder(tmp_path_factory):
    """``(image_dir, truth)``: truth maps a file name to its class."""
    folder = tmp_path_factory.mktemp("phantoms") / "images"
    labels = write_phantoms(folder)
    return folder, {f"im{i:03d}.png": c for i, c in enumerate(labels)}


@pytest.fixture
def make_project(tmp_path, phantom_folder):
    """``make_project(**options)``: a new tiny project over the phantom folder."""
    from skal_cxr.labeling import init_project

    def make(**options):
        settings = {**TINY, "query_size": 5, **options}
        return init_project(tmp_path / "project", phantom_folder[0], CLASSES, **settings)

    return make


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright, one per test module."""
    from _browser import chromium
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium())
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser):
    """``new_page(width, height)``: a page in a fresh context; no script errors allowed.

    Each page has a context of its own (one rater each).
    """
    contexts, errors = [], []

    def make(width=1366, height=768):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        return page

    yield make
    for context in contexts:
        # A routed request still in flight (a preview fetched ahead) must not raise into
        # the next test's first call on the shared connection.
        for page in context.pages:
            page.unroute_all(behavior="ignoreErrors")
        context.unroute_all(behavior="ignoreErrors")
        context.close()
    assert not errors, errors
