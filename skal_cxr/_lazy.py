"""Images read lazily from an array on disk (a memory map), batch by batch.

A pool of 100k chest X-rays at 224 px is 5 GB as ``uint8`` and four times that
as ``float32``: it must stay on disk. :class:`ImageRows` is a read-only,
array-like view of some rows of a memory-mapped image array: indexing it reads
only the rows asked for. :class:`~skal_cxr._lazy_dataset.LazyImageDataset`
(apart, with torch) is the torch ``Dataset`` through which
:class:`~skal_cxr.MCDropoutCNN` reads such arrays, converting one batch at a
time to ``float32`` in ``[0, 1]``.
"""

import mmap

import numpy as np

__all__ = [
    "ImageRows",
    "is_lazy_images",
    "take_rows",
]


class ImageRows:
    """Read-only view of some rows of an image array, read on demand.

    Indexing with an int, a slice or an array of positions reads those
    images from ``images`` (a :class:`numpy.memmap`, typically
    :attr:`~skal_cxr.datasets.ImageCache.images`) and returns an ndarray of
    shape ``(k, 1, H, W)`` in the stored dtype; :meth:`subset` returns
    another view without reading anything. ``np.asarray(rows)`` reads every
    row (an explicit full copy). Pickled views of a memory map reopen the file
    instead of carrying its contents, so they travel cheaply to joblib and
    Dask workers that see the same file system.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, 1, H, W)
        Usually a :class:`numpy.memmap` of ``uint8`` images.
    rows : array-like of int or None, default=None
        Positions in ``images`` of the rows of this view; ``None`` is all.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.datasets import ImageRows
    >>> rows = ImageRows(np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2), [3, 1])
    >>> rows.shape, rows[1:].ravel().tolist()
    ((2, 1, 2, 2), [4, 5, 6, 7])
    """

    def __init__(self, images, rows=None):
        if images.ndim == 4:
            if images.shape[1] != 1:
                raise ValueError(f"images must be single-channel; got shape {images.shape}.")
        elif images.ndim != 3:
            raise ValueError(
                f"images must have shape (N, H, W) or (N, 1, H, W); got {images.shape}."
            )
        self.images = images
        self.rows = np.arange(len(images)) if rows is None else np.asarray(rows, dtype=np.intp)
        if self.rows.ndim != 1:
            raise ValueError("rows must be one-dimensional.")
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= len(images)):
            raise IndexError(f"rows must lie in 0 .. {len(images) - 1}.")

    @property
    def shape(self):
        return (len(self.rows), 1, *self.images.shape[-2:])

    @property
    def dtype(self):
        return self.images.dtype

    @property
    def ndim(self):
        return 4

    def __len__(self):
        return len(self.rows)

    def __repr__(self):
        return f"ImageRows(shape={self.shape}, dtype={self.dtype})"

    def subset(self, positions):
        """The view of ``self[positions]``, without reading any image.

        Parameters
        ----------
        positions : array-like of int
            Positions in this view.

        Returns
        -------
        view : ImageRows
            The same images, rows ``positions`` of this view.
        """
        return ImageRows(self.images, self.rows[np.asarray(positions, dtype=np.intp)])

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self[[key]][0]
        rows = self.rows[key]
        if rows.ndim == 0:
            rows = rows[np.newaxis]
        # Read in file order (sequential I/O), then put back in the order asked.
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), 1, *self.images.shape[-2:]), dtype=self.images.dtype)
        out[order] = self.images[rows[order]].reshape(len(rows), 1, *self.images.shape[-2:])
        if len(rows):
            _release(self.images, rows.min(), rows.max() + 1)
        return out

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __reduce__(self):
        source = _memmap_source(self.images)
        if source is None:
            return ImageRows, (np.asarray(self.images), self.rows)
        return _reopen, (*source, self.rows)


def _memmap_source(array):
    """``(filename, dtype, shape)`` when ``array`` is a whole read-only file map."""
    if not isinstance(array, np.memmap) or not array.filename or array.offset != 0:
        return None
    if not isinstance(array.base, mmap.mmap) or not array.flags.c_contiguous:
        return None
    return str(array.filename), array.dtype.str, array.shape


def _release(array, start, stop):
    """Drop the pages of rows ``start:stop`` of a file map from this process.

    They stay in the kernel's page cache (a later read is a cheap minor
    fault), but no longer count in the resident set size, which therefore
    stays flat however much of a pool has been read.
    """
    if _memmap_source(array) is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    row_bytes = array.itemsize * int(np.prod(array.shape[1:]))
    first = start * row_bytes // mmap.PAGESIZE * mmap.PAGESIZE
    try:
        array.base.madvise(mmap.MADV_DONTNEED, first, stop * row_bytes - first)
    except (OSError, ValueError):
        pass


def _reopen(filename, dtype, shape, rows):
    return ImageRows(np.memmap(filename, dtype=np.dtype(dtype), mode="r", shape=shape), rows)


def take_rows(X, index):
    """``X[index]``, as a view (read nothing) when ``X`` is an :class:`ImageRows`."""
    return X.subset(index) if isinstance(X, ImageRows) else X[index]


def is_lazy_images(X):
    """Whether ``X`` should be read lazily: an :class:`ImageRows` or a memory map."""
    return isinstance(X, (ImageRows, np.memmap))
