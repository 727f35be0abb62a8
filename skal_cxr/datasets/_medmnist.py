"""MedMNIST chest X-ray files (``.npz``): load, and download with a checksum."""

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from .._validation import labels_1d
from ._base import get_data_home

__all__ = [
    "load_medmnist",
    "load_pneumoniamnist",
    "bundled_path",
    "MEDMNIST_MD5",
    "MEDMNIST_URL",
    "BUNDLED_SHA256",
]

MEDMNIST_URL = "https://zenodo.org/records/10519652/files/{name}.npz?download=1"

# MD5 checksums of the MedMNIST v2 files in Zenodo record 10519652, as listed in
# the ``INFO`` dict of the official ``medmnist`` package (medmnist/info.py).
MEDMNIST_MD5 = {
    "pneumoniamnist": "28209eda62fecd6e6a2d98b1501bb15f",
    "pneumoniamnist_64": "8f4eceb4ccffa70c672198ea285246c6",
    "pneumoniamnist_128": "05b46931834c231683c68f40c47b2971",
    "pneumoniamnist_224": "d6a3c71de1b945ea11211b03746c1fe1",
    "chestmnist": "02c8a6516a18b556561a56cbdd36c4a8",
    "chestmnist_64": "9de6cd0b934ebb5b7426cfba5efbae16",
    "chestmnist_128": "db107e5590b27930b62dbaf558aebee3",
    "chestmnist_224": "45bd33e6f06c3e8cdb481c74a89152aa",
}

SPLITS = ("train", "val", "test")

#: MedMNIST files shipped inside the package (``skal_cxr/datasets/data/``) and
#: their SHA-256. PneumoniaMNIST (28x28): MedMNIST v2 (Yang et al., Scientific
#: Data 2023), derived from Kermany et al. (Cell 2018); CC BY 4.0, see NOTICE.
#: The train split's rows are shuffled (seed 0) compared with the official
#: file; images, labels and split membership are the official ones.
BUNDLED_SHA256 = {
    "pneumoniamnist": "d0bfa3330f26554c4117328b1117f52bfb3746404b0594c58f37a09b4314d396",
}


def bundled_path(name="pneumoniamnist"):
    """Path of a MedMNIST file shipped with skal_cxr.

    Parameters
    ----------
    name : str, default="pneumoniamnist"
        A key of ``BUNDLED_SHA256``.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> from skal_cxr.datasets import bundled_path
    >>> bundled_path().name
    'pneumoniamnist.npz'
    """
    if name not in BUNDLED_SHA256:
        raise ValueError(
            f"{name!r} is not shipped with skal_cxr (shipped: {sorted(BUNDLED_SHA256)}); "
            "use load_medmnist(name, download=True)."
        )
    return Path(__file__).resolve().parent / "data" / f"{name}.npz"


def load_pneumoniamnist(split="train"):
    """Load PneumoniaMNIST (28x28) from the copy shipped with skal_cxr; no network.

    Pediatric chest X-rays, normal (0) vs pneumonia (1): train 4,708 images
    (1,214 / 3,494), val 524 (135 / 389), test 624 (234 / 390). From
    MedMNIST v2 (Yang et al., Scientific Data 2023), derived from Kermany
    et al. (Cell 2018), licensed CC BY 4.0: cite both when you use it.

    Parameters
    ----------
    split : {"train", "val", "test", "all"}, default="train"

    Returns
    -------
    X : ndarray of shape (n_images, 28, 28), dtype uint8
    y : ndarray of shape (n_images,), dtype int64

    See Also
    --------
    load_medmnist : other MedMNIST files and sizes (checksummed download).

    Examples
    --------
    >>> from skal_cxr.datasets import load_pneumoniamnist
    >>> X, y = load_pneumoniamnist("test")
    >>> X.shape, y.tolist().count(1)
    ((624, 28, 28), 390)
    """
    path = bundled_path("pneumoniamnist")
    return load_medmnist("pneumoniamnist", split=split, root=path.parent)


def load_medmnist(name="pneumoniamnist", split="train", root=None, download=False):
    """Load a split of a MedMNIST dataset stored as ``{root}/{name}.npz``.

    The file has the MedMNIST layout: arrays ``{split}_images`` and
    ``{split}_labels`` for the splits ``"train"``, ``"val"`` and ``"test"``.

    Parameters
    ----------
    name : str, default="pneumoniamnist"
        File name without ``.npz``; for example ``"pneumoniamnist"`` (28x28)
        or ``"pneumoniamnist_64"`` (64x64). Only names in ``MEDMNIST_MD5``
        can be downloaded; any file with the layout can be loaded.
    split : {"train", "val", "test", "all"}, default="train"
        ``"all"`` concatenates train, val and test, in this order.
    root : str or path-like, default=None
        Folder holding the file; ``None`` uses :func:`get_data_home`, and
        falls back to the copy shipped with skal_cxr (``BUNDLED_SHA256``,
        see :func:`load_pneumoniamnist`) when the file is not there.
    download : bool, default=False
        Download the official file into ``root`` when it is missing (it is
        checked against its MD5 checksum). An existing file is never
        downloaded again.

    Returns
    -------
    X : ndarray of shape (n_images, H, W), dtype uint8
        Grayscale images (colour datasets keep their channel axis last).
    y : ndarray of shape (n_images,), dtype int64
        Labels; multi-label datasets (ChestMNIST) keep shape
        ``(n_images, n_labels)``.

    Raises
    ------
    FileNotFoundError
        If the file is missing and ``download=False``; the message says where
        it looked and how to get the file.
    ValueError
        For an unknown split, a file without the MedMNIST layout, or a
        downloaded file whose checksum does not match.

    Examples
    --------
    >>> from skal_cxr.datasets import load_medmnist
    >>> X, y = load_medmnist("pneumoniamnist", split="test")  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((624, 28, 28), (624,))
    """
    if split not in SPLITS + ("all",):
        raise ValueError(f"split must be one of {SPLITS + ('all',)}; got {split!r}.")
    explicit_root = root is not None
    root = get_data_home(root)
    path = root / f"{name}.npz"
    if not path.is_file() and not explicit_root and name in BUNDLED_SHA256:
        path = bundled_path(name)
    if not path.is_file():
        if not download:
            raise FileNotFoundError(_missing_message(name, path))
        fetch_medmnist(name, root)
    splits = SPLITS if split == "all" else (split,)
    X, y = [], []
    with np.load(path) as data:
        for s in splits:
            images, labels = _read_split(data, s, path)
            X.append(images)
            y.append(labels)
    if len(splits) == 1:
        return X[0], y[0]
    return np.concatenate(X), np.concatenate(y)


def _missing_message(name, path):
    how = (
        f"call load_medmnist({name!r}, download=True), or download {MEDMNIST_URL.format(name=name)}"
        if name in MEDMNIST_MD5
        else "download it from the MedMNIST release (https://zenodo.org/records/10519652)"
    )
    return (
        f"MedMNIST file {path.name} not found: looked for {path}. Put the file in "
        f"{path.parent} (or pass root=..., or set the SKAL_CXR_DATA environment "
        f"variable to its folder); to get it, {how}."
    )


def _read_split(data, split, path):
    keys = (f"{split}_images", f"{split}_labels")
    missing = [k for k in keys if k not in data.files]
    if missing:
        raise ValueError(
            f"{path} does not have the MedMNIST npz layout: missing {missing}; "
            f"it holds {sorted(data.files)}."
        )
    images, labels = data[keys[0]], data[keys[1]]
    if images.ndim not in (3, 4) or len(images) != len(labels):
        raise ValueError(
            f"{path}: {keys[0]} must be (n_images, H, W[, C]) with one label row per "
            f"image; got shapes {images.shape} and {labels.shape}."
        )
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) and not (
        np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels))
    ):
        raise ValueError(
            f"{path}: {keys[1]} must hold integer class codes; got "
            f"{labels.dtype} values such as {labels.ravel()[:3].tolist()}."
        )
    labels = labels.astype(np.int64)
    try:
        labels = labels_1d(labels)  # an (n, 1) column too
    except ValueError:
        pass  # multi-label: one row of codes per image
    return images, labels


def fetch_medmnist(name, root=None):
    """Download the official MedMNIST file ``name`` into ``root``.

    The file is written to a temporary file in ``root``, checked against its
    MD5 checksum from ``MEDMNIST_MD5`` and only then moved to
    ``{root}/{name}.npz``; a mismatch deletes the download.

    Parameters
    ----------
    name : str
        A key of ``MEDMNIST_MD5``.
    root : str or path-like, default=None
        Target folder, created if needed; ``None`` uses :func:`get_data_home`.

    Returns
    -------
    path : pathlib.Path
        The downloaded file.
    """
    if name not in MEDMNIST_MD5:
        raise ValueError(
            f"Cannot download {name!r}: known MedMNIST files are "
            f"{sorted(MEDMNIST_MD5)}. Put other files in the data folder yourself."
        )
    root = get_data_home(root)
    root.mkdir(parents=True, exist_ok=True)
    url = MEDMNIST_URL.format(name=name)
    target = root / f"{name}.npz"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".part", dir=root)
    tmp = Path(tmp)
    try:
        md5 = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                md5.update(chunk)
                out.write(chunk)
        expected = MEDMNIST_MD5[name]
        if md5.hexdigest() != expected:
            raise ValueError(
                f"Checksum mismatch for {url}: MD5 {md5.hexdigest()}, expected "
                f"{expected}. The partial download was deleted; try again."
            )
        shutil.move(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
