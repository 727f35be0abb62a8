"""An on-disk cache of decoded, resized images: one memory-mapped uint8 array.

Layout of a cache folder (``g`` is a generation number)::

    cache.json            state: image size, the complete generation, a build in progress
    images-<g>.u8         raw uint8 array of shape (n_images, height, width), C order
    index-<g>.json        one entry per row: file, sha256, size, mtime, inode and
                          ctime, original size, DICOM window, error (written when the
                          build completes)
    parts-<g>/chunk-<k>.json   entries of chunk k, written once its rows are on disk

A build decodes images chunk by chunk in parallel workers; each worker writes
its rows into the memory map, flushes them, then commits the chunk by writing
its entries to a temporary file, syncing it and renaming it into place. A
chunk is therefore either committed with its rows on disk, or absent and
redone: a build killed at any point (even by SIGKILL) resumes where it
stopped. A new request (other files, or files changed since) builds a new
generation, copying the rows of unchanged files from the previous one and
decoding only new or changed files; the previous generation is deleted when
the new one is complete.

Change detection: the SHA-256 of every file's bytes is recorded at build. A
file counts as unchanged without being read again only while its size,
modification time, inode number and status-change time (``st_ctime``) are
all the recorded ones; any difference (an edit, a copy with ``cp -p`` or
``rsync -a``, a restored backup, ``touch``) has its bytes hashed again, and
only the same SHA-256 keeps its row. ``st_ctime`` cannot be set back by any
ordinary tool (``os.utime`` sets it to now), so a same-size edit whose
modification time was restored is still caught. What it cannot catch is
an edit made with the clock set back or written to the raw disk:
``verify=True`` hashes every file again.
"""

import hashlib
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from .._atomic import atomic_write
from .._image_checks import is_positive_int
from ._image_io import (
    _read_pillow,
    check_image_size,
    is_dicom,
    max_image_pixels,
    read_dicom,
    read_dicom_header,
    resize_image,
)

__all__ = ["ImageCache", "build_image_cache"]

_FORMAT = 1
_STATE = "cache.json"


def _atomic_write_json(path, obj):
    """Write JSON so that ``path`` holds either the old or the complete new content."""
    atomic_write(path, json.dumps(obj))


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class ImageCache:
    """A complete image cache folder, opened read-only.

    Made by :func:`build_image_cache`, which returns one; ``ImageCache(dir)``
    opens the last complete build of a folder.

    Parameters
    ----------
    cache_dir : str or path-like

    Attributes
    ----------
    images : numpy.memmap of shape (n_images, height, width), dtype uint8
        The images in the order of the files of the build, pixel values
        ``round(255 * v)`` of the decoded ``v`` in ``[0, 1]``. Rows of
        files that failed to decode are 0.
    index : list of dict
        One entry per row: ``file`` (absolute path), ``sha256`` (of the
        file's bytes), ``bytes``, ``mtime_ns``, ``ino``, ``ctime_ns``,
        ``original_size`` ``[height, width]``,
        ``window`` (DICOM only: ``"center/width"`` of the window applied,
        ``"voi_lut"``, or ``"min-max"`` when the file has neither) and
        ``error`` (``None``, or why the file could not be read).
    files : ndarray of str
        ``index[i]["file"]`` for every row.
    errors : dict
        ``{file: reason}`` for the files that could not be read.
    image_size : tuple of (int, int)

    Raises
    ------
    FileNotFoundError
        When the folder holds no complete build.
    """

    def __init__(self, cache_dir):
        self.cache_dir = Path(cache_dir)
        state = _read_json(self.cache_dir / _STATE)
        if not state or state.get("complete") is None:
            raise FileNotFoundError(f"{self.cache_dir} holds no complete image cache.")
        generation = state["complete"]
        self.image_size = tuple(state["image_size"])
        self.index = _read_json(self.cache_dir / f"index-{generation}.json")
        if self.index is None:
            raise FileNotFoundError(f"{self.cache_dir}: index-{generation}.json is missing.")
        self.files = np.array([e["file"] for e in self.index], dtype=str)
        self.errors = {e["file"]: e["error"] for e in self.index if e["error"]}
        self.images = _open_images(
            self.cache_dir, generation, len(self.index), self.image_size, "r"
        )
        self.generation = generation

    def __len__(self):
        return len(self.index)

    def __repr__(self):
        return (
            f"ImageCache({str(self.cache_dir)!r}, n_images={len(self)}, "
            f"image_size={self.image_size})"
        )


def _images_path(cache_dir, generation):
    return Path(cache_dir) / f"images-{generation}.u8"


def _open_images(cache_dir, generation, n, image_size, mode):
    if n == 0:
        return np.zeros((0, *image_size), dtype=np.uint8)
    return np.memmap(
        _images_path(cache_dir, generation), dtype=np.uint8, mode=mode, shape=(n, *image_size)
    )


def build_image_cache(
    files, cache_dir, image_size, *, n_jobs=None, chunk_size=512, verify=False, verbose=False
):
    """Decode and resize images once into a memory-mapped on-disk cache.

    Images are read as by :func:`~skal_cxr.datasets.load_image_folder`
    (PNG / JPEG / 16-bit / DICOM with its window, scaled to ``[0, 1]``),
    resized bilinearly to ``image_size`` and stored as ``uint8``. Building is

    - parallel: chunks of ``chunk_size`` images are decoded by ``n_jobs``
      threads (:class:`joblib.Parallel`), with a tqdm progress bar. Reading,
      hashing, decoding and resizing release the GIL, so threads scale with
      the cores and need no worker processes to start (each would import
      torch); ``with joblib.parallel_config(backend="loky"):`` runs the
      chunks in processes instead, for decoders that hold the GIL;
    - resumable: every finished chunk is committed atomically, so a build
      that is interrupted, even killed, continues where it stopped when
      called again with the same files;
    - incremental: calling it again with more files, or after files
      changed, decodes only new or changed files; with nothing changed it
      returns at once;
    - change-detecting: a file whose size, modification time, inode or
      status-change time differs from the recorded one is hashed again
      (SHA-256 of its bytes), and its row is kept only if the hash is the
      recorded one. A same-size edit with its time stamp restored (``cp
      -p``, ``rsync -a``, a backup restore) is therefore decoded again, never
      served stale. ``verify=True`` hashes every file, whatever its status.

    Files that cannot be read do not stop the build: their row is 0 and
    their reason is in :attr:`ImageCache.errors`.

    Labeling projects and other callers use the cache like this: build it
    once for their files, keep the returned :attr:`ImageCache.files` order,
    and read ``cache.images[rows]`` (or wrap it in
    :class:`~skal_cxr.datasets.ImageRows`) to hand pools to
    :class:`~skal_cxr.MCDropoutCNN` without loading them into memory.

    Parameters
    ----------
    files : sequence of str or path-like
        Image files, in the order of the rows; made absolute. Must be
        distinct.
    cache_dir : str or path-like
        Cache folder (created). One folder holds one image size.
    image_size : int or tuple of (int, int)
        Working size ``(height, width)`` of the stored images.
    n_jobs : int, default=None
        Worker threads; ``None`` means 1, ``-1`` all cores.
    chunk_size : int, default=512
        Images per committed chunk.
    verify : bool, default=False
        Hash every file again (reading all of them) instead of trusting
        unchanged file status; a file whose content differs from the
        recorded hash is decoded again.
    verbose : bool, default=False
        Show a progress bar.

    Returns
    -------
    cache : ImageCache

    Raises
    ------
    ValueError
        For duplicate files, an invalid ``image_size`` or ``chunk_size``, or a
        folder that holds a cache of another image size.

    Examples
    --------
    >>> from skal_cxr.datasets import build_image_cache
    >>> cache = build_image_cache(paths, "cache/", image_size=64, n_jobs=-1)  # doctest: +SKIP
    >>> cache.images.shape, cache.images.dtype  # doctest: +SKIP
    ((100000, 64, 64), dtype('uint8'))
    """
    image_size = check_image_size(image_size)
    if image_size is None:
        raise ValueError("build_image_cache needs an image_size (the working size).")
    if not is_positive_int(chunk_size):
        # scikit-learn's message, imported only then: a labeling server checks its
        # project's cache in the thread that makes rounds, among raters' requests
        from .._validation import check_int

        check_int(chunk_size, "chunk_size")
    chunk_size = int(chunk_size)
    files = [os.path.abspath(os.fspath(f)) for f in files]
    repeated = [f for f, count in Counter(files).items() if count > 1]
    if repeated:
        raise ValueError(f"files must be distinct; repeated: {repeated[:5]}.")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    state = _read_json(cache_dir / _STATE) or {}
    if state.get("format", _FORMAT) != _FORMAT:
        raise ValueError(f"{cache_dir} holds an image cache of another format version.")
    if state.get("image_size") and tuple(state["image_size"]) != image_size:
        raise ValueError(
            f"{cache_dir} holds images of size {tuple(state['image_size'])}, not "
            f"{image_size}; use another cache_dir for another size."
        )
    request = hashlib.sha256(json.dumps([list(image_size), files]).encode()).hexdigest()

    previous = None
    if state.get("complete") is not None:
        try:
            previous = ImageCache(cache_dir)
        except FileNotFoundError:
            previous = None
    if previous is not None and state.get("request") == request and _still_valid(previous, verify):
        return previous

    building = state.get("building")
    if building and building["request"] == request:
        generation = building["generation"]  # resume
    else:
        if building:
            _remove_generation(cache_dir, building["generation"])
        generation = max([state.get("complete") or 0, (building or {}).get("generation", 0)]) + 1
        state.update(
            format=_FORMAT,
            image_size=list(image_size),
            building={"generation": generation, "request": request},
        )
        _atomic_write_json(cache_dir / _STATE, state)
    n = len(files)
    parts = cache_dir / f"parts-{generation}"
    parts.mkdir(exist_ok=True)
    path = _images_path(cache_dir, generation)
    if n and (not path.exists() or path.stat().st_size != n * image_size[0] * image_size[1]):
        with open(path, "wb") as f:  # sparse: rows are written by the workers
            f.truncate(n * image_size[0] * image_size[1])

    prev_by_file = {}
    if previous is not None:
        prev_by_file = {
            e["file"]: (row, e) for row, e in enumerate(previous.index) if not e["error"]
        }
    chunks = [
        (k, start, min(start + chunk_size, n)) for k, start in enumerate(range(0, n, chunk_size))
    ]
    todo = [c for c in chunks if not (parts / f"chunk-{c[0]:06d}.json").exists()]
    prev_gen = None if previous is None else previous.generation
    prev_n = 0 if previous is None else len(previous)
    max_pixels = max_image_pixels()  # this thread's limit, passed to the worker threads
    jobs = (
        delayed(_build_chunk)(
            str(cache_dir),
            generation,
            k,
            start,
            n,
            image_size,
            files[start:stop],
            [prev_by_file.get(f) for f in files[start:stop]],
            prev_gen,
            prev_n,
            verify,
            max_pixels,
        )
        for k, start, stop in todo
    )
    bar = tqdm(
        total=n,
        initial=n - sum(stop - start for _, start, stop in todo),
        desc="Caching images",
        unit="img",
        disable=not verbose,
    )
    with bar:
        parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator_unordered")
        for count in parallel(jobs):
            bar.update(count)

    index = []
    for k, _, _ in chunks:
        index.extend(_read_json(parts / f"chunk-{k:06d}.json"))
    _atomic_write_json(cache_dir / f"index-{generation}.json", index)
    old = state.get("complete")
    state.update(complete=generation, request=request, building=None)
    _atomic_write_json(cache_dir / _STATE, state)
    shutil.rmtree(parts, ignore_errors=True)
    if old is not None and old != generation:
        _remove_generation(cache_dir, old)
    return ImageCache(cache_dir)


def _remove_generation(cache_dir, generation):
    shutil.rmtree(Path(cache_dir) / f"parts-{generation}", ignore_errors=True)
    for name in (f"images-{generation}.u8", f"index-{generation}.json"):
        try:
            (Path(cache_dir) / name).unlink()
        except FileNotFoundError:
            pass


def _status(st):
    """The file status fields that must all match for a file to count as unchanged."""
    return {
        "bytes": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ino": st.st_ino,
        "ctime_ns": st.st_ctime_ns,
    }


def _same_status(entry, st):
    return all(entry.get(k) == v for k, v in _status(st).items())


def file_sha256(path):
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _still_valid(cache, verify):
    """Whether every cached file still holds the bytes the cache was built from.

    A file whose status differs from the recorded one (or every file, with
    ``verify``) is hashed; when all hashes match, the new status is written
    to the index so that the next check is cheap again.
    """
    refreshed = False
    for e in cache.index:
        try:
            st = os.stat(e["file"])
        except OSError:
            if e["bytes"] is None:  # it was missing and still is
                continue
            return False
        if e["bytes"] is None:
            return False  # missing at build, there now
        if _same_status(e, st) and not verify:
            continue
        try:
            if e["sha256"] is None or file_sha256(e["file"]) != e["sha256"]:
                return False
        except OSError:
            return False
        if not _same_status(e, st):
            e.update(_status(st))
            refreshed = True
    if refreshed:  # best effort: a read-only cache stays valid, it is only re-hashed next time
        try:
            _atomic_write_json(cache.cache_dir / f"index-{cache.generation}.json", cache.index)
        except OSError:
            pass
    return True


def _build_chunk(
    cache_dir,
    generation,
    k,
    start,
    n,
    image_size,
    files,
    previous,
    prev_gen,
    prev_n,
    verify=False,
    max_pixels=None,
):
    """Decode (or copy) one chunk's rows, flush them, then commit the chunk's entries."""
    out = _open_images(cache_dir, generation, n, image_size, "r+")
    prev = None if prev_gen is None else _open_images(cache_dir, prev_gen, prev_n, image_size, "r")
    entries = []
    for i, (path, old) in enumerate(zip(files, previous)):
        entry, image = _cache_one(path, image_size, old, prev, verify, max_pixels)
        out[start + i] = 0 if image is None else image
        entries.append(entry)
    if isinstance(out, np.memmap):
        out.flush()
    del out, prev
    _atomic_write_json(Path(cache_dir) / f"parts-{generation}" / f"chunk-{k:06d}.json", entries)
    return len(files)


def _cache_one(path, image_size, old, prev, verify=False, max_pixels=None):
    """``(entry, uint8 image or None)`` of one file, reusing ``old`` when unchanged."""
    entry = {
        "file": path,
        "sha256": None,
        "bytes": None,
        "mtime_ns": None,
        "ino": None,
        "ctime_ns": None,
        "original_size": None,
        "window": None,
        "error": None,
    }
    try:
        st = os.stat(path)
        entry.update(_status(st))
        if old is not None and not verify and _same_status(old[1], st):
            return {**old[1], "file": path}, np.asarray(prev[old[0]])
        entry["sha256"] = file_sha256(path)
        if old is not None and old[1]["sha256"] == entry["sha256"]:
            return {**old[1], **_status(st), "file": path, "sha256": entry["sha256"]}, np.asarray(
                prev[old[0]]
            )
    except OSError as exc:
        entry["error"] = f"file not found or unreadable: {path} ({exc.strerror or exc})"
        return entry, None
    try:
        if is_dicom(path):
            image = read_dicom(path, max_pixels=max_pixels)
            entry["window"] = _dicom_window(path)
        else:
            image = _read_pillow(path, max_pixels=max_pixels)
    except ImportError:
        raise
    except Exception as exc:  # corrupt files fail in many ways
        entry["error"] = f"unreadable image {path}: {type(exc).__name__}: {exc}"
        return entry, None
    entry["original_size"] = list(image.shape)
    image = resize_image(image, image_size)
    return entry, np.rint(image * 255).astype(np.uint8)


def _dicom_window(path):
    """The VOI transform :func:`read_dicom` applies, as recorded in the index."""
    import pydicom

    ds = read_dicom_header(path)
    if "VOILUTSequence" in ds:
        return "voi_lut"
    if "WindowCenter" in ds and "WindowWidth" in ds:
        first = lambda v: float(v[0] if isinstance(v, pydicom.multival.MultiValue) else v)  # noqa: E731
        return f"{first(ds.WindowCenter):g}/{first(ds.WindowWidth):g}"
    return "min-max"
