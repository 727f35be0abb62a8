"""Shared fixtures.

Real data is found through one lookup: the ``SKAL_CXR_DATA`` environment
variable, defaulting to ``../shared/data`` beside the repository. Tests that
need a file there skip with the path they looked in.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SKAL_CXR_DATA", str(REPO_ROOT.parent / "shared" / "data"))

# Two cores here: keep torch from oversubscribing them in every test.
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def data_dir():
    return Path(os.environ["SKAL_CXR_DATA"])


@pytest.fixture(scope="session")
def pneumoniamnist_path(data_dir):
    path = data_dir / "pneumoniamnist.npz"
    if not path.is_file():
        pytest.skip(f"PneumoniaMNIST not found at {path} (set SKAL_CXR_DATA)")
    return path


@pytest.fixture(scope="session")
def pneumoniamnist(pneumoniamnist_path):
    with np.load(pneumoniamnist_path) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture
def toy_images():
    """60 16x16 images in 3 classes whose mean intensity encodes the class."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["normal", "moderate", "severe"]), 20)
    level = {"normal": 0.2, "moderate": 0.5, "severe": 0.8}
    X = np.stack([rng.normal(level[c], 0.05, (16, 16)) for c in y]).astype(np.float32)
    return X, y
