"""Shared fixtures.

Real data is found through one lookup: the ``SKAL_CXR_DATA`` environment
variable, defaulting to ``../shared/data`` beside the repository. PneumoniaMNIST
falls back to the copy shipped inside the package, so that its tests run in
any clone; the one test that compares the two skips without the shared file,
naming the path it looked in.
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


#: The tests' one tiny MC Dropout network: a few thousand weights, trained for
#: two short epochs on CPU, seeded. A test that needs another setting passes
#: it to the ``tiny_net`` factory, where the difference shows.
TINY_NET_PARAMS = dict(
    max_epochs=2,
    batch_size=16,
    min_train_steps=0,
    module__width=4,
    module__n_blocks=1,
    n_mc_samples=5,
    random_state=0,
    device="cpu",
)


@pytest.fixture(scope="session")
def tiny_net():
    """``tiny_net(**overrides)``: an unfitted tiny :class:`~skal_cxr.MCDropoutCNN`."""
    from skal_cxr import MCDropoutCNN

    def make(**overrides):
        return MCDropoutCNN(**{**TINY_NET_PARAMS, **overrides})

    return make


@pytest.fixture(scope="session")
def data_dir():
    return Path(os.environ["SKAL_CXR_DATA"])


@pytest.fixture(scope="session")
def shared_pneumoniamnist_path(data_dir):
    """The shared PneumoniaMNIST file under ``SKAL_CXR_DATA`` (skips without it)."""
    path = data_dir / "pneumoniamnist.npz"
    if not path.is_file():
        pytest.skip(f"PneumoniaMNIST not found at {path} (set SKAL_CXR_DATA)")
    return path


@pytest.fixture(scope="session")
def pneumoniamnist_path(data_dir):
    """The shared PneumoniaMNIST file, or the copy shipped in the package without it."""
    from skal_cxr.datasets import bundled_path

    path = data_dir / "pneumoniamnist.npz"
    return path if path.is_file() else bundled_path("pneumoniamnist")


def _arrays(path):
    """Every array of an ``.npz`` file, read into memory."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def pneumoniamnist(pneumoniamnist_path):
    return _arrays(pneumoniamnist_path)


@pytest.fixture(scope="session")
def shared_pneumoniamnist(shared_pneumoniamnist_path):
    """The shared file's arrays (skips without it)."""
    return _arrays(shared_pneumoniamnist_path)


@pytest.fixture
def toy_images():
    """60 noisy 16x16 images in 3 classes; a bright bar's position encodes the class."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["normal", "moderate", "severe"]), 20)
    column = {"normal": 2, "moderate": 6, "severe": 10}
    X = rng.normal(0.4, 0.1, (60, 16, 16)).astype(np.float32)
    for i, c in enumerate(y):
        X[i, :, column[c] : column[c] + 4] += 0.4
    return X, y


@pytest.fixture
def write_dicom():
    """A function writing a one-frame grayscale DICOM file of unsigned pixels.

    ``write_dicom(path, pixels, photometric="MONOCHROME2", bits_stored=16,
    **attrs)`` sets any further DICOM attribute given (``RescaleSlope``,
    ``WindowCenter``, ``VOILUTSequence``, ...) and returns ``path``.
    """
    pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    def write(path, pixels, photometric="MONOCHROME2", bits_stored=16, **attrs):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "DX"
        pixels = np.asarray(pixels, dtype=np.uint16)
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
        ds.PixelRepresentation = 0
        for key, value in attrs.items():
            setattr(ds, key, value)
        ds.PixelData = pixels.tobytes()
        ds.save_as(path, enforce_file_format=True)
        return path

    return write
