"""Fixtures of the Label Studio backend's tests."""

import pytest
from _ls_tasks import make_backend_dir

# run by Label Studio's own Python, where label-studio-sdk is installed (not collected)
collect_ignore = ["_ls_sdk_driver.py"]


@pytest.fixture
def backend_dir(tmp_path):
    """``(folder, document_root, tasks)``: a backend folder with fast settings, 12 tasks."""
    return make_backend_dir(tmp_path)
