"""Images of an image folder: paths, duplicates, reading and caching."""

import hashlib
from collections import Counter

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from ._cache import build_image_cache, file_sha256
from ._image_io import max_image_pixels, read_image
from ._paths import repeated_files, resolve_image_name


def _resolve_paths(lines, filenames, image_dir, errors):
    """The real path of each file name, or ``None`` where it is refused (see ``_paths``)."""
    paths = []
    for line, name in zip(lines, filenames):
        path, reason = resolve_image_name(image_dir, name)
        if reason is not None:
            errors.setdefault(line, []).append(reason)
        paths.append(path)
    return paths


def _find_duplicates(lines, filenames, paths, images, rater_codes, errors, release=None):
    """Line -> reason for each good row repeating an earlier good row's file or pixels.

    ``release`` (if given) is called every 1024 rows and at the end: it drops
    the pages of memory-mapped images read so far.
    """
    good = [None if line in errors else path for line, path in zip(lines, paths)]
    same_file = repeated_files(good)  # one rule for links: see datasets._paths
    first_image, repeated = {}, {}
    for i, line in enumerate(lines):
        if release is not None and i % 1024 == 1023:
            release()
        if line in errors:
            continue
        image = images[i]
        digest = (image.shape, hashlib.blake2b(image.tobytes(), digest_size=16).digest())
        if i in same_file:
            j, what = same_file[i], "same file"
        elif digest in first_image:
            j, what = first_image[digest], "same image"
        else:
            first_image[digest] = i
            continue
        reason = f"{what} as line {lines[j]} ({filenames[j]})"
        if not np.array_equal(rater_codes[i], rater_codes[j]):
            reason += ", labelled differently"
        repeated[line] = reason
    if release is not None:
        release()
    return repeated


def _load_one(path, image_size, max_pixels=None):
    """``(image, reason, sha256)`` of one file; ``image`` is None where ``reason`` says why."""
    if not path.is_file():
        return None, f"file not found: {path}", None
    try:
        sha = file_sha256(path)
        return read_image(path, image_size, max_pixels=max_pixels), None, sha
    except ImportError:
        raise
    except Exception as exc:  # corrupt files fail in many ways
        return None, f"unreadable image {path}: {type(exc).__name__}: {exc}", None


def _read_images(lines, paths, image_size, n_jobs, verbose, errors):
    """Images and SHA-256 of the files, in order (``None`` where bad)."""
    todo = [i for i, path in enumerate(paths) if path is not None]
    images, hashes = [None] * len(paths), [None] * len(paths)
    # Threads: Pillow and pydicom decode mostly outside the GIL, and worker
    # processes would each import torch (through skal_cxr) before reading.
    max_pixels = max_image_pixels()  # this thread's limit, passed to the worker threads
    results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(
        delayed(_load_one)(paths[i], image_size, max_pixels) for i in todo
    )
    results = tqdm(results, total=len(todo), desc="Reading images", disable=not verbose)
    for i, (image, reason, sha) in zip(todo, results):
        if reason is not None:
            errors.setdefault(lines[i], []).append(reason)
        images[i], hashes[i] = image, sha
    return images, hashes


def _cache_images(lines, paths, image_size, cache_dir, n_jobs, verbose, errors, verify=False):
    """Build the cache of the valid paths; per-row memmap views and hashes (``None`` where bad)."""
    unique = list(dict.fromkeys(str(p) for p in paths if p is not None))
    cache = build_image_cache(
        unique, cache_dir, image_size, n_jobs=n_jobs, verify=verify, verbose=verbose
    )
    row = {f: i for i, f in enumerate(cache.files.tolist())}
    images, hashes = [], []
    for line, path in zip(lines, paths):
        reason = None if path is None else cache.errors.get(str(path))
        if reason is not None:
            errors.setdefault(line, []).append(reason)
        ok = path is not None and reason is None
        images.append(cache.images[row[str(path)]] if ok else None)
        hashes.append(cache.index[row[str(path)]]["sha256"] if ok else None)
    return cache, images, hashes


def _cached_rows(cache, paths, n_jobs, verbose):
    """The memory map of ``paths``' images, in order; rebuilt when rows were dropped."""
    paths = [str(p) for p in paths]
    if cache.files.tolist() == paths:
        return cache.images
    if len(set(paths)) == len(paths):  # rows were skipped: a cache of the kept files only
        return build_image_cache(
            paths, cache.cache_dir, cache.image_size, n_jobs=n_jobs, verbose=verbose
        ).images
    row = {f: i for i, f in enumerate(cache.files.tolist())}
    return cache.images[[row[p] for p in paths]]  # a file listed twice: rows copied


def _stack(images, filenames):
    shapes = Counter(im.shape for im in images)
    if len(shapes) > 1:
        common = shapes.most_common(1)[0][0]
        odd = [f"{name} {im.shape}" for name, im in zip(filenames, images) if im.shape != common]
        raise ValueError(
            f"Images have different sizes ({dict(shapes)} images per (height, width)); "
            f"most are {common}, but not {odd[:10]}{' ...' if len(odd) > 10 else ''}. "
            "Pass image_size to resize them all."
        )
    return np.stack(images).astype(np.float32, copy=False)
