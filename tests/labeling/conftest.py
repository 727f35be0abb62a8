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
