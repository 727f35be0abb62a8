"""Datasets for chest X-ray active learning.

- :func:`make_cxr_phantoms`: synthetic CXR-like images with graded severity.
- :func:`load_pneumoniamnist`: PneumoniaMNIST (28x28), shipped with the
  package (MedMNIST v2, Yang et al. 2023; Kermany et al. 2018; CC BY 4.0).
- :func:`load_medmnist`: MedMNIST ``.npz`` files (PneumoniaMNIST, ChestMNIST),
  with an optional checksummed download.
- :func:`load_image_folder`: PNG / JPEG / DICOM images listed in a CSV file
  with one or more raters' labels.
- :func:`patient_train_test_split`: train / test split with no patient in both.
- :func:`build_image_cache`, :class:`ImageCache`, :class:`ImageRows`: images
  decoded once into a memory-mapped on-disk cache, read lazily.
- :func:`fetch_dicomweb`, :func:`build_dicomweb_cache`, :class:`DicomwebPool`:
  the images of a PACS, found with QIDO-RS and retrieved with WADO-RS into a
  local store (resumable, incremental); needs the ``pacs`` extra.
- :func:`image_limits`, :func:`max_image_pixels`: the largest image decoded
  (a context manager, like :func:`sklearn.config_context`).
"""

from .._lazy import ImageRows
from ._base import get_data_home
from ._cache import ImageCache, build_image_cache
from ._dicomweb import AUTH_SCHEMES, DicomwebError, dicomweb_session, parse_dicomweb_query
from ._dicomweb_store import DicomwebPool, build_dicomweb_cache, fetch_dicomweb
from ._image_folder import load_image_folder
from ._image_io import image_limits, max_image_pixels
from ._medmnist import (
    BUNDLED_SHA256,
    MEDMNIST_MD5,
    bundled_path,
    fetch_medmnist,
    load_medmnist,
    load_pneumoniamnist,
)
from ._phantoms import PHANTOM_CLASS_NAMES, make_cxr_phantoms
from ._split import patient_train_test_split

__all__ = [
    "get_data_home",
    "make_cxr_phantoms",
    "PHANTOM_CLASS_NAMES",
    "load_medmnist",
    "load_pneumoniamnist",
    "bundled_path",
    "BUNDLED_SHA256",
    "fetch_medmnist",
    "MEDMNIST_MD5",
    "load_image_folder",
    "patient_train_test_split",
    "build_image_cache",
    "ImageCache",
    "ImageRows",
    "fetch_dicomweb",
    "build_dicomweb_cache",
    "DicomwebPool",
    "DicomwebError",
    "dicomweb_session",
    "parse_dicomweb_query",
    "AUTH_SCHEMES",
    "image_limits",
    "max_image_pixels",
]
