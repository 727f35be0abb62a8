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

from .._lazy_names import lazy_names

#: Public name -> the module that defines it, loaded on first use (:pep:`562`).
_LAZY = {
    "ImageRows": ".._lazy",
    "get_data_home": "._base",
    "ImageCache": "._cache",
    "build_image_cache": "._cache",
    "AUTH_SCHEMES": "._dicomweb",
    "DicomwebError": "._dicomweb",
    "dicomweb_session": "._dicomweb",
    "parse_dicomweb_query": "._dicomweb",
    "DicomwebPool": "._dicomweb_store",
    "build_dicomweb_cache": "._dicomweb_store",
    "fetch_dicomweb": "._dicomweb_store",
    "load_image_folder": "._image_folder",
    "image_limits": "._image_io",
    "max_image_pixels": "._image_io",
    "BUNDLED_SHA256": "._medmnist",
    "MEDMNIST_MD5": "._medmnist",
    "bundled_path": "._medmnist",
    "fetch_medmnist": "._medmnist",
    "load_medmnist": "._medmnist",
    "load_pneumoniamnist": "._medmnist",
    "PHANTOM_CLASS_NAMES": "._phantoms",
    "make_cxr_phantoms": "._phantoms",
    "patient_train_test_split": "._split",
}

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

__getattr__, __dir__ = lazy_names(__name__, _LAZY)
