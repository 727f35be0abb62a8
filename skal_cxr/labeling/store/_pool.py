"""The pool of a project at the training resolution: its on-disk image cache."""

import warnings
from pathlib import Path

from ..._lazy import ImageRows
from ...datasets import build_image_cache
from ...exceptions import LabelingError
from .._settings import CACHE_DIR, cache_dir

__all__ = ["build_pool_cache", "load_pool", "open_pool"]


def build_pool_cache(path, image_size, files, *, n_jobs=None, progress=False):
    """Build (or bring up to date) the image cache of a project's ``files``; return it.

    Resumable and incremental (see :func:`~skal_cxr.datasets.build_image_cache`):
    a build killed at any point goes on where it stopped, and files
    unchanged since the last build are not decoded again.

    Raises
    ------
    LabelingError
        When some files cannot be read (the first 20 are listed).
    """
    cache = build_image_cache(
        files, cache_dir(path, image_size), tuple(image_size), n_jobs=n_jobs, verbose=progress
    )
    if cache.errors:
        listed = list(cache.errors.values())
        raise LabelingError(
            f"{len(listed)} images cannot be read: "
            + "; ".join(listed[:20])
            + (" ..." if len(listed) > 20 else "")
        )
    return cache


def load_pool(path, image_size, image_dir, table):
    """All images at the training resolution, read lazily from the project's image cache.

    Returns an :class:`~skal_cxr.datasets.ImageRows` view of the cache's
    memory map in pool order (image ``i`` is row ``i - 1``): indexing it
    reads only the rows asked for, so training reads the labeled images,
    and scoring streams the pool batch by batch. The cache is built on first
    use and checked (file status, else SHA-256) on every later one. The
    ``pool-*.npy`` files of earlier versions are deleted once it is ready.

    Parameters
    ----------
    path : path-like
        The project folder.
    image_size : (int, int)
        The training resolution.
    image_dir : path-like
        The project's image folder.
    table : list of tuple
        ``(image_id, relpath, sha256, patient)`` of every image, in pool order.

    Returns
    -------
    pool : ImageRows
        The cache's images.
    """
    root = Path(image_dir)
    cache = build_pool_cache(path, image_size, [root / rel for _, rel, _, _ in table])
    changed = [rel for (_, rel, sha, _), entry in zip(table, cache.index) if entry["sha256"] != sha]
    if changed:
        warnings.warn(
            f"{len(changed)} images changed since they were registered (first: "
            f"{changed[0]}); the model sees their new content.",
            stacklevel=3,
        )
    for old in (Path(path) / CACHE_DIR).glob("pool-*x*-*.npy"):
        old.unlink(missing_ok=True)  # the float32 pool of earlier versions
    return ImageRows(cache.images)


def open_pool(path, image_size, n_images):
    """The project's images at the training resolution, from its image cache, read lazily.

    The serving process builds and checks the cache (see
    :func:`~skal_cxr.labeling.store._pool.load_pool`); this only opens its last
    complete build.

    Parameters
    ----------
    path : path-like
        The project folder.
    image_size : sequence of (int, int)
        ``(height, width)`` of the cache.
    n_images : int
        Images of the project: the cache must hold exactly these.

    Returns
    -------
    pool : ImageRows of shape (n_images, 1, H, W), dtype uint8
        Image ``i`` (1-based id) is row ``i - 1``.

    Raises
    ------
    TrainingFailed
        When the cache is missing or holds another number of images.
    """
    from ...datasets import ImageCache
    from .._errors import TrainingFailed

    folder = cache_dir(path, image_size)
    try:
        cache = ImageCache(folder)
    except FileNotFoundError as exc:
        raise TrainingFailed(f"the project's image cache cannot be opened: {exc}") from None
    if len(cache) != n_images:
        raise TrainingFailed(
            f"the image cache {folder} holds {len(cache)} images; the project has {n_images}."
        )
    return ImageRows(cache.images)
