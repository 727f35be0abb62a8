"""Reading one image file (PNG, JPEG, DICOM, ...) as a float32 array in [0, 1].

Decoding memory is bounded: an image of more than :func:`max_image_pixels`
pixels is refused from its header, before any pixel is decoded. The limit is
50 megapixels unless :func:`image_limits` (a context manager, per thread
and task like :func:`sklearn.config_context`) or the ``SKAL_CXR_MAX_PIXELS``
environment variable says otherwise; every decoder also takes it as a
``max_pixels`` argument. A chest radiograph is at most about 4300 x 4300
(18.5 megapixels).

:func:`dicom_values` is the one DICOM decoder: the training images
(:func:`read_dicom`) and the labeling page's display pixels
(:func:`skal_cxr.labeling.store._image_files.display_pixels`) both start from it.
"""

import contextvars
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from .._image_checks import check_image_size

__all__ = [
    "read_image",
    "read_dicom",
    "dicom_values",
    "read_dicom_header",
    "resize_image",
    "is_dicom",
    "check_image_size",
    "max_image_pixels",
    "image_limits",
    "check_pixel_limit",
]

#: Default of :func:`max_image_pixels`.
DEFAULT_MAX_PIXELS = 50_000_000
MAX_PIXELS_ENV = "SKAL_CXR_MAX_PIXELS"

# set by image_limits(): per thread and asyncio task, never through os.environ
_MAX_PIXELS = contextvars.ContextVar("skal_cxr_max_pixels", default=None)


def _check_limit(max_pixels, name="max_pixels"):
    try:
        limit = int(max_pixels)
    except (TypeError, ValueError):
        limit = 0
    if limit <= 0 or limit != max_pixels:
        raise ValueError(f"{name}={max_pixels!r} is not a positive whole number of pixels.")
    return limit


@contextmanager
def image_limits(max_pixels=None):
    """Set the largest image decoded inside a ``with`` block.

    Like :func:`sklearn.config_context`: the setting holds in this thread
    (or asyncio task) until the block ends, and is restored after it. The
    package's own parallel readers pass it on to their worker threads.

    Parameters
    ----------
    max_pixels : int or None, default=None
        Largest ``height x width x frames`` decoded; ``None`` keeps the
        current limit.

    Yields
    ------
    max_pixels : int
        The limit in force inside the block.

    Examples
    --------
    >>> from skal_cxr.datasets import image_limits, max_image_pixels
    >>> with image_limits(max_pixels=1_000_000):
    ...     max_image_pixels()
    1000000
    """
    if max_pixels is None:
        yield max_image_pixels()
        return
    token = _MAX_PIXELS.set(_check_limit(max_pixels))
    try:
        yield _MAX_PIXELS.get()
    finally:
        _MAX_PIXELS.reset(token)


def max_image_pixels():
    """The largest image (height x width, in pixels) that is decoded.

    Returns
    -------
    max_pixels : int
        The limit of the innermost :func:`image_limits` block; outside any,
        ``SKAL_CXR_MAX_PIXELS`` from the environment when set (a positive
        integer), else 50,000,000. Larger images are refused before
        decoding, which would need 4 bytes (float32) per pixel and more.
    """
    limit = _MAX_PIXELS.get()
    if limit is not None:
        return limit
    value = os.environ.get(MAX_PIXELS_ENV)
    if value is None or not value.strip():
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ValueError(f"{MAX_PIXELS_ENV}={value!r} is not a positive whole number of pixels.")
    return limit


def check_pixel_limit(path, height, width, frames=1, *, max_pixels=None):
    """Refuse an image larger than the limit, before decoding it.

    Parameters
    ----------
    path : path-like
        The file, named in the message.
    height, width : int
        Its size, from its header.
    frames : int, default=1
        Its number of frames.
    max_pixels : int or None, default=None
        The limit; ``None`` for :func:`max_image_pixels`.

    Raises
    ------
    ValueError
        When ``height * width * frames`` exceeds the limit.
    """
    limit = max_image_pixels() if max_pixels is None else max_pixels
    if height * width * frames > limit:
        raise ValueError(
            f"{path}: {width} x {height} pixels{f' x {frames} frames' if frames > 1 else ''} "
            f"is more than the limit of {limit:,} pixels; not decoded (raise the limit "
            f"with {MAX_PIXELS_ENV} or --max-pixels if this really is one radiograph)."
        )


DICOM_SUFFIXES = (".dcm", ".dicom")
_UINT16_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def read_image(path, image_size=None, *, max_pixels=None):
    """Read a grayscale image scaled to ``[0, 1]``.

    Parameters
    ----------
    path : str or path-like
        A DICOM file (see :func:`read_dicom`) or any image Pillow reads.
        Pillow images are converted to grayscale (RGB with ITU-R 601-2 luma,
        alpha dropped) and divided by the maximum of their integer type:
        255 for 8-bit, 65535 for 16-bit images.
    image_size : tuple of (int, int) or None, default=None
        Output ``(height, width)``; resized bilinearly (with antialiasing
        when shrinking). ``None`` keeps the stored size.
    max_pixels : int or None, default=None
        Largest image decoded; ``None`` for :func:`max_image_pixels`.

    Returns
    -------
    image : ndarray of shape (H, W), dtype float32

    Raises
    ------
    ValueError
        Naming the file, for an image larger than :func:`max_image_pixels`
        (checked before decoding) or one that cannot be a radiograph.
    """
    path = Path(path)
    if is_dicom(path):
        image = read_dicom(path, max_pixels=max_pixels)
    else:
        image = _read_pillow(path, max_pixels=max_pixels)
    return resize_image(image, image_size)


def resize_image(image, image_size):
    """Resize a float image in ``[0, 1]`` bilinearly (antialiased when shrinking).

    The package's one resizer (``skal_cxr._resize``), which
    :class:`~skal_cxr.CXRPreprocessor` also uses; the result is clipped to
    ``[0, 1]`` against floating-point rounding.
    """
    if image_size is not None and image.shape != tuple(image_size):
        from .._resize import resize_images  # torch, imported when an image is resized

        image = np.clip(resize_images(image, image_size), 0.0, 1.0)
    return image


def is_dicom(path):
    """Whether ``path`` has a DICOM suffix or the ``DICM`` magic at byte 128."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _read_pillow(path, max_pixels=None):
    with warnings.catch_warnings():
        # Pillow warns above 89 megapixels; the limit here is checked just below
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except Image.DecompressionBombError as exc:  # above twice Pillow's own limit
            raise ValueError(f"{path}: {exc}; not decoded.") from None
    with img:
        frames = getattr(img, "n_frames", 1)
        check_pixel_limit(path, img.height, img.width, frames, max_pixels=max_pixels)
        img.load()
        mode = img.mode
        if mode in _UINT16_MODES:
            return (np.asarray(img).astype(np.float32) / 65535.0).astype(np.float32)
        if mode == "I":  # 32-bit integer container, used by Pillow for 16-bit data
            arr = np.asarray(img)
            if arr.min() < 0 or arr.max() > 65535:
                raise ValueError(
                    f"32-bit integer image with values outside 0..65535 "
                    f"({arr.min()}..{arr.max()}); cannot scale it to [0, 1]."
                )
            return (arr.astype(np.float32) / 65535.0).astype(np.float32)
        if mode == "F":
            raise ValueError("floating-point images have no known range; save as 8 or 16 bit.")
        if mode != "L":
            img = img.convert("L")
        return (np.asarray(img).astype(np.float32) / 255.0).astype(np.float32)


def _pixel_luts():
    """pydicom's colour, modality and VOI lookup functions (any pydicom version)."""
    try:
        from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import (
            apply_color_lut,
            apply_modality_lut,
            apply_voi_lut,
        )
    return apply_color_lut, apply_modality_lut, apply_voi_lut


def _pydicom():
    try:
        import pydicom
    except ImportError as exc:  # an optional dependency
        raise ImportError(
            "Reading DICOM files needs pydicom: pip install pydicom "
            "(or pip install skal-cxr[dicom])."
        ) from exc
    return pydicom


def read_dicom_header(path):
    """A DICOM file's attributes, without its pixel data.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dataset : pydicom.Dataset
    """
    return _pydicom().dcmread(path, stop_before_pixels=True)


def dicom_values(path, *, max_pixels=None):
    """Decode a DICOM image's values before any display window.

    The one DICOM decoder of the package. Refuses, naming the file, a file
    without pixel data, colour and multi-frame images, a ``RescaleSlope``
    of 0 (every pixel the same value) and images larger than the limit
    (checked from ``Rows``, ``Columns`` and ``NumberOfFrames`` before
    decoding). A ``PALETTE COLOR`` image is shown through its palette and
    converted to grayscale (ITU-R 601-2 luma); any other has the modality
    LUT (``RescaleSlope`` / ``RescaleIntercept``) applied.

    Parameters
    ----------
    path : str or path-like
    max_pixels : int or None, default=None
        Largest image decoded; ``None`` for :func:`max_image_pixels`.

    Returns
    -------
    dataset : pydicom.Dataset
        The file's attributes (with its pixel data).
    values : ndarray of shape (H, W)
        Palette luma (float64), or the values after the modality LUT (the
        dtype pydicom gives: integers without a rescale).
    photometric : str
        ``PhotometricInterpretation`` in capitals (``"MONOCHROME1"``, ...).
    """
    pydicom = _pydicom()
    apply_color_lut, apply_modality_lut, _ = _pixel_luts()
    ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        raise ValueError("DICOM file has no pixel data.")
    if int(getattr(ds, "SamplesPerPixel", 1)) != 1:
        raise ValueError(f"DICOM image is not grayscale ({ds.PhotometricInterpretation}).")
    check_pixel_limit(
        path,
        int(ds.get("Rows", 0) or 0),
        int(ds.get("Columns", 0) or 0),
        int(ds.get("NumberOfFrames", 1) or 1),
        max_pixels=max_pixels,
    )
    photometric = str(getattr(ds, "PhotometricInterpretation", "")).upper()
    if photometric != "PALETTE COLOR" and "RescaleSlope" in ds and float(ds.RescaleSlope) == 0:
        raise ValueError(
            f"{path}: RescaleSlope is 0, which makes every pixel the same "
            "value; fix the file's RescaleSlope."
        )
    arr = ds.pixel_array
    if arr.ndim != 2:
        raise ValueError(f"DICOM image is not a single 2-D frame (shape {arr.shape}).")
    if photometric == "PALETTE COLOR":
        rgb = np.asarray(apply_color_lut(arr, ds), dtype=np.float64)
        return ds, rgb @ np.array([0.299, 0.587, 0.114]), photometric
    # as pydicom gives it (an integer array indexes a VOI lookup table)
    return ds, apply_modality_lut(arr, ds), photometric


def read_dicom(path, *, max_pixels=None):
    """Read a DICOM image as displayed, min-max scaled to ``[0, 1]``.

    Decodes with :func:`dicom_values` (modality LUT, or the palette of a
    ``PALETTE COLOR`` image), then applies the VOI LUT or window
    (``WindowCenter`` / ``WindowWidth``; the first window when several are
    given), inverts ``MONOCHROME1`` so that dense tissue is bright, and maps
    the minimum to 0 and the maximum to 1 (a constant image becomes 0).
    The files :func:`dicom_values` refuses are refused, naming the file.

    Parameters
    ----------
    path : str or path-like
    max_pixels : int or None, default=None
        Largest image decoded; ``None`` for :func:`max_image_pixels`.

    Returns
    -------
    image : ndarray of shape (H, W), dtype float32
    """
    ds, arr, photometric = dicom_values(path, max_pixels=max_pixels)
    if photometric != "PALETTE COLOR":
        apply_voi_lut = _pixel_luts()[2]
        arr = np.asarray(apply_voi_lut(arr, ds, index=0), dtype=np.float64)
    if photometric == "MONOCHROME1":
        arr = arr.max() - arr
    lo, span = arr.min(), arr.max() - arr.min()
    if span == 0:
        return np.zeros(arr.shape, dtype=np.float32)
    return ((arr - lo) / span).astype(np.float32)
