"""Loading a simulation's data and splitting it into pool, validation and test."""

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from .._lazy import ImageRows, take_rows
from .._validation import check_images, encode_labels, labels_1d, mark_checked
from ..datasets._sources import FOLDER_OPTIONS
from ..exceptions import ConfigError, DataError

__all__ = ["SimulationData", "DataError", "FOLDER_OPTIONS", "load_simulation_data"]


@dataclass
class SimulationData:
    """Pool, validation and test split of a simulation.

    Images are ``(N, 1, H, W)`` float32 in ``[0, 1]``, or
    :class:`~skal_cxr.datasets.ImageRows` views of an image cache (read
    lazily as uint8); labels are integer
    codes indexing ``class_names``. ``X_val`` is ``None`` when there is no
    validation split. ``sources`` (image folders) holds the SHA-256 of every
    loaded file's bytes, in loading order: the data the splits were made of.
    """

    X_pool: np.ndarray
    y_pool: np.ndarray
    X_val: object
    y_val: object
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    ordinal: bool
    split: str
    agreement: object = None
    sources: object = None

    def summary(self):
        """Sizes of the splits, JSON-serialisable."""
        return {
            "n_pool": int(len(self.y_pool)),
            "n_val": 0 if self.y_val is None else int(len(self.y_val)),
            "n_test": int(len(self.y_test)),
            "classes": list(self.class_names),
            "ordinal": bool(self.ordinal),
            "split": self.split,
            "image_shape": list(self.X_pool.shape[1:]),
            "pool_class_counts": np.bincount(self.y_pool, minlength=len(self.class_names)).tolist(),
            "test_class_counts": np.bincount(self.y_test, minlength=len(self.class_names)).tolist(),
            **({} if self.agreement is None else {"agreement": self.agreement}),
            "data_fingerprint": self.fingerprint(),
        }

    def fingerprint(self):
        """SHA-256 of every split's images and labels (shapes, dtypes and bytes).

        Stored in ``config.json``: a resumed simulation checks that its data
        are the very data the records were computed on, not only of the same
        sizes. With ``sources`` (an image folder), the images enter through
        their files' content hashes instead of their decoded pixels: the
        fingerprint describes the files, whether or not an image cache
        decoded them.
        """
        digest = hashlib.sha256()
        if self.sources is not None:
            digest.update(b"sources:" + "\n".join(map(str, self.sources)).encode() + b";")
        for name in ("X_pool", "y_pool", "X_val", "y_val", "X_test", "y_test"):
            array = getattr(self, name)
            if array is None:
                digest.update(f"{name}:none;".encode())
                continue
            if not hasattr(array, "shape"):
                array = np.asarray(array)
            first = np.asarray(array[:1])  # lazy rows (a memory map) are read in blocks
            if self.sources is not None and name.startswith("X"):
                # the files' hashes stand for the pixels (uint8 from a cache or float32)
                digest.update(f"{name}:{tuple(array.shape)};".encode())
                continue
            digest.update(f"{name}:{first.dtype.str}{tuple(array.shape)};".encode())
            rows = max(1, (1 << 24) // max(1, first.nbytes))  # ~16 MB at a time
            for start in range(0, len(array), rows):
                digest.update(np.ascontiguousarray(array[start : start + rows]).data)
        return digest.hexdigest()


def _stratify_or_none(y, n_take):
    counts = np.bincount(y)
    counts = counts[counts > 0]
    if counts.min() >= 2 and n_take >= len(counts) and len(y) - n_take >= len(counts):
        return y
    return None


def _split(index, y, size, random_state, groups=None):
    """``(rest, taken)`` index arrays; ``size`` is a fraction; by group if given."""
    if size <= 0:
        return index, index[:0]
    if groups is not None:
        from ..datasets import patient_train_test_split

        rest, taken = patient_train_test_split(
            index, groups=groups[index], test_size=size, random_state=random_state
        )
        return np.sort(rest), np.sort(taken)
    n_take = int(np.ceil(size * len(index)))
    rest, taken = train_test_split(
        index,
        test_size=size,
        random_state=random_state,
        stratify=_stratify_or_none(y[index], n_take),
    )
    return np.sort(rest), np.sort(taken)


def _three_way(X, y, spec, groups=None):
    index = np.arange(len(y))
    rs = spec["random_state"]
    rest, test = _split(index, y, spec["test_size"], rs, groups)
    val_frac = spec["val_size"] / (1 - spec["test_size"]) if spec["val_size"] else 0
    pool, val = _split(rest, y, val_frac, rs, groups)
    if len(pool) == 0 or len(test) == 0:
        raise DataError(f"the data ({len(y)} images) are too few to split into pool and test.")
    X_val = take_rows(X, val) if len(val) else None
    y_val = y[val] if len(val) else None
    return take_rows(X, pool), y[pool], X_val, y_val, take_rows(X, test), y[test]


def _load_phantoms(spec):
    from ..datasets import PHANTOM_CLASS_NAMES, make_cxr_phantoms
    from ..datasets._agreement import agreement

    try:
        made = make_cxr_phantoms(
            spec["n_samples"],
            image_size=spec["image_size"],
            n_classes=spec["n_classes"],
            weights=spec["weights"],
            label_noise=spec["label_noise"],
            n_raters=spec["n_raters"],
            rater_noise=spec["rater_noise"],
            random_state=spec["random_state"],
        )
    except (TypeError, ValueError) as exc:
        raise DataError(f"cannot make the phantoms: {exc}") from exc
    X, y = made[:2]
    agreed = None
    if spec["n_raters"] is not None:  # consensus of simulated raters, and how they agreed
        agreed = _plain(agreement(made[2], spec["n_classes"]))
    parts = _three_way(check_images(X), np.asarray(y, dtype=np.int64), spec)
    names = list(PHANTOM_CLASS_NAMES[spec["n_classes"]])
    return SimulationData(
        *parts, class_names=names, ordinal=True, split="stratified", agreement=agreed
    )


def _class_codes(y, where):
    """Labels of a single-label classification file as int64 codes ``0..k-1``."""
    try:
        y = labels_1d(y)
    except ValueError:
        raise ConfigError(
            f"{where}: labels of shape {np.shape(y)} are multi-label; the simulator needs one "
            "class per image."
        ) from None
    if y.size and y.min() < 0:
        raise ConfigError(f"{where}: labels must be class codes >= 0; found {y.min()}.")
    return y.astype(np.int64)


_MEDMNIST_CLASSES = {"pneumoniamnist": ["normal", "pneumonia"]}


def _load_medmnist(spec):
    from ..datasets import load_medmnist

    splits = {}
    try:
        for split in ("train", "val", "test"):
            X, y = load_medmnist(spec["name"], split=split, root=spec["root"], download=False)
            splits[split] = (check_images(X), y)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read MedMNIST {spec['name']!r}: {exc}") from exc
    splits = {k: (X, _class_codes(y, f"{spec['name']} {k}")) for k, (X, y) in splits.items()}
    X_pool, y_pool = splits["train"]
    if spec["max_pool"] is not None and spec["max_pool"] < len(y_pool):
        keep, _ = train_test_split(
            np.arange(len(y_pool)),
            train_size=int(spec["max_pool"]),
            random_state=spec["random_state"],
            stratify=y_pool,
        )
        keep = np.sort(keep)
        X_pool, y_pool = X_pool[keep], y_pool[keep]
    n_classes = int(max(y.max() for _, y in splits.values())) + 1
    names = _MEDMNIST_CLASSES.get(spec["name"], [str(c) for c in range(n_classes)])
    return SimulationData(
        X_pool,
        y_pool,
        *splits["val"],
        *splits["test"],
        class_names=names,
        ordinal=n_classes == 2,
        split="dataset",
    )


def _load_folder(spec):
    from ..datasets import load_image_folder

    try:
        bunch = load_image_folder(
            spec["csv"], spec["image_dir"], **{k: spec[k] for k in FOLDER_OPTIONS}
        )
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read the image folder: {exc}") from exc
    target = np.asarray(bunch.target)
    classes = getattr(bunch, "classes", None)
    _warn_if_order_guessed(spec, classes)
    if classes is None:
        classes = spec["classes"] if spec["classes"] is not None else np.unique(target)
    try:
        y = encode_labels(target, classes)
    except ValueError as exc:
        raise DataError(str(exc)) from exc
    groups = None
    if spec["group_column"] is not None and getattr(bunch, "groups", None) is not None:
        groups = np.asarray(bunch.groups)
    # a cache is read lazily: the splits are views of its memory map
    X = ImageRows(bunch.images) if spec["cache_dir"] else check_images(bunch.images)
    parts = _three_way(X, y, spec, groups)
    names = [str(c) for c in np.asarray(classes).tolist()]
    ordinal = any(spec[k] is not None for k in ("score_column", "bins", "classes"))
    return SimulationData(
        *parts,
        class_names=names,
        ordinal=ordinal,
        split="patient" if groups is not None else "stratified",
        agreement=_plain(getattr(bunch, "agreement", None)),
        sources=np.asarray(bunch.sha256),
    )


def _plain(summary):
    """An agreement summary with plain Python numbers (JSON-serialisable)."""
    if summary is None:
        return None
    return {
        k: (int(v) if isinstance(v, (int, np.integer)) else float(v)) for k, v in summary.items()
    }


def _warn_if_order_guessed(spec, classes):
    """Several raters' text labels without ``classes``: their order was guessed."""
    columns = spec["label_columns"]
    n_raters = 1 if columns is None or isinstance(columns, str) else len(columns)
    if spec["classes"] is not None or spec["bins"] is not None or classes is None:
        return
    names = [str(c) for c in np.asarray(classes).tolist()]
    if n_raters > 1 and not all(n.lstrip("-").replace(".", "", 1).isdigit() for n in names):
        warnings.warn(
            f"the ordinal order of the labels was taken alphabetically ({', '.join(names)}): "
            "consensus ties go to the later label and macro MAE uses this order; give "
            "classes (--classes) from least to most severe.",
            UserWarning,
            stacklevel=3,
        )


_LOADERS = {"phantoms": _load_phantoms, "medmnist": _load_medmnist, "folder": _load_folder}


def load_simulation_data(spec):
    """Load the data described by a resolved data specification and split it.

    * ``phantoms``: generated with ``spec["random_state"]``, then split
      stratified into test (``test_size``), validation (``val_size``, both
      fractions of all images) and pool.
    * ``medmnist``: the file's own train (pool, optionally subsampled to
      ``max_pool`` stratified), val and test splits.
    * ``folder``: split like the phantoms, by patient with
      :func:`~skal_cxr.datasets.patient_train_test_split` when the CSV has
      a ``group_column`` (no patient is in two splits).

    Parameters
    ----------
    spec : dict
        See :func:`~skal_cxr.simulation.resolve_config`.

    Returns
    -------
    data : SimulationData

    Raises
    ------
    DataError
        When the files cannot be read or the data cannot be split.
    """
    data = _LOADERS[spec["source"]](spec)
    if len(np.unique(data.y_pool)) < 2:
        raise DataError("the pool holds fewer than two classes.")
    _check_split_covers_classes(data.y_test, data.class_names, "test")
    if data.y_val is not None:
        _check_split_covers_classes(data.y_val, data.class_names, "validation")
    # checked here once: every round's evaluation reads them without a second scan
    mark_checked(data.X_val)
    mark_checked(data.X_test)
    return data


def _check_split_covers_classes(y, class_names, split):
    """Per-class metrics (AUROC, operating points) need every class in the split."""
    counts = np.bincount(y, minlength=len(class_names))
    missing = [str(c) for c, n in zip(class_names, counts) if n == 0]
    if missing:
        raise DataError(
            f"the {split} split ({len(y)} images) has no image of class(es) {missing}: "
            f"too small for {len(class_names)} classes; use more images or a larger "
            f"{'test_size' if split == 'test' else 'val_size'}."
        )
