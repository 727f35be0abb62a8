"""The instances a DICOMweb store left out of its pool, each with its reason.

A store folder (see ``_dicomweb_store``) keeps them in ``skipped.json``:
instances the server lists but no longer sends, instances without pixel
data, instances that vanished from the store and the server, and the films
a labeling project refuses to decode (too large, unreadable).
"""

from pathlib import Path

from ._cache import _atomic_write_json, _read_json

__all__ = ["SKIPPED", "SKIP_KINDS", "record_skipped", "skipped_instances"]

_FORMAT = 1  # of skipped.json
SKIPPED = "skipped.json"
#: Kinds of skipped instances; ``vanished`` ones are retried when the server lists them.
SKIP_KINDS = ("vanished", "no image", "too large", "undecodable")


def skipped_instances(store_dir):
    """The instances a store left out of its pool, each with its reason.

    Parameters
    ----------
    store_dir : path-like
        The store folder.

    Returns
    -------
    skipped : dict
        ``{sop: {"kind": ..., "reason": ...}}``, ``kind`` one of
        ``SKIP_KINDS``; ``too large`` entries also hold ``pixels``.
    """
    return dict((_read_json(Path(store_dir) / SKIPPED) or {}).get("instances", {}))


def _write_skipped(store_dir, skipped):
    path = Path(store_dir) / SKIPPED
    if skipped or path.exists():
        _atomic_write_json(path, {"format": _FORMAT, "instances": skipped})


def record_skipped(store_dir, add=None, remove=()):
    """Record instances left out of the pool (``add``: ``{sop: entry}``), forget ``remove``."""
    skipped = skipped_instances(store_dir)
    skipped.update(add or {})
    for sop in remove:
        skipped.pop(sop, None)
    _write_skipped(store_dir, skipped)
    return skipped
