"""Finding, hashing and displaying the images of a labeling project.

Images stay where they are. A project registers each one by its path
relative to the image folder and the SHA-256 of its bytes; training reads
them with :func:`skal_cxr.datasets._image_io.read_image` (the loader of
:func:`~skal_cxr.datasets.load_image_folder`), and the web page gets display
pixels: the stored values after the DICOM modality LUT, with the default
window from the VOI LUT or WindowCenter / WindowWidth (else the data range),
``MONOCHROME1`` inverted.
"""

import hashlib
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..datasets._csv import read_csv_table
from ..datasets._image_folder import _is_missing
from ..datasets._image_io import check_pixel_limit, is_dicom
from ..datasets._paths import repeated_files, resolve_image_name

__all__ = ["IMAGE_SUFFIXES", "find_images", "file_sha256", "display_pixels", "window_png"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".tif", ".tiff", ".bmp")


def _inside(path, root):
    real, root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, root]) == root


def find_images(image_dir, csv_path=None, image_column="filename", group_column=None):
    """The images of a project: ``[(relpath, patient or None), ...]``.

    Without ``csv_path``, every file under ``image_dir`` with an image
    suffix (:data:`IMAGE_SUFFIXES`, any case), sorted by path. With it, the
    rows of the CSV in file order; every listed file must exist inside
    ``image_dir`` (no ``..`` or symbolic link out of it). Names follow
    :func:`~skal_cxr.datasets.load_image_folder`'s rule
    (``skal_cxr.datasets._paths``): two names of one file (a symbolic or
    hard link and its target, ``a.png`` and ``./a.png``) are one film, and a
    film registered twice is refused, in the folder scan as in a CSV.

    Raises
    ------
    ValueError
        For a missing folder, column or file, a path outside the folder, a
        file listed twice (under any name), or no image at all.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise ValueError(f"image folder {image_dir} does not exist.")
    if csv_path is None:
        found = sorted(
            p.relative_to(image_dir).as_posix() for p in image_dir.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and _inside(p, image_dir)
        )
        rows = [(name, None) for name in found]
        where = [repr(name) for name in found]
    else:
        # (any common encoding and delimiter; rows of the wrong length are problems)
        table = read_csv_table(csv_path, [image_column] + ([group_column] if group_column
                                                           else []))
        rows, problems, where = [], [], []
        for line, row in table.rows:
            name = row[image_column].strip()
            patient = row[group_column].strip() if group_column else None
            path = image_dir / name
            if line in table.problems:
                problems.append(f"line {line}: {table.problems[line]}")
            elif not name:
                problems.append(f"line {line}: empty file name")
            elif (refused := resolve_image_name(image_dir, name)[1]) is not None:
                problems.append(f"line {line}: {name!r} is outside {image_dir} ({refused})")
            elif not path.is_file():
                problems.append(f"line {line}: file not found: {path}")
            elif group_column and _is_missing(patient):
                problems.append(f"line {line}: missing {group_column!r}")
            else:
                rows.append((Path(os.path.relpath(path, image_dir)).as_posix(), patient))
                where.append(f"line {line} ({name!r})")
        if problems:
            raise ValueError(f"{len(problems)} rows of {csv_path} are unusable:\n  "
                             + "\n  ".join(problems[:20]))
    repeated = repeated_files([image_dir / name for name, _ in rows])
    if repeated:
        listed = [f"{where[i]} is the same file as {where[j]}" for i, j in repeated.items()]
        raise ValueError(
            f"files listed more than once (a link and its target are one file): "
            f"{'; '.join(listed[:10])}{' ...' if len(listed) > 10 else ''}. List each "
            "image once (remove the link, or give a CSV naming one of them).")
    if not rows:
        raise ValueError(f"no images found in {image_dir} (suffixes {', '.join(IMAGE_SUFFIXES)}).")
    return rows


def file_sha256(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _dicom_pixels(path):
    import pydicom

    try:
        from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import (
            apply_color_lut,
            apply_modality_lut,
            apply_voi_lut,
        )

    ds = pydicom.dcmread(path)
    check_pixel_limit(path, int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0),
                      int(ds.get("NumberOfFrames", 1) or 1))
    photometric = str(getattr(ds, "PhotometricInterpretation", "")).upper()
    if photometric != "PALETTE COLOR" and "RescaleSlope" in ds and float(ds.RescaleSlope) == 0:
        raise ValueError(f"{path}: RescaleSlope is 0, which makes every pixel the same value.")
    arr = ds.pixel_array
    if arr.ndim != 2:
        raise ValueError(f"DICOM image is not a single 2-D grayscale frame (shape {arr.shape}).")
    if photometric == "PALETTE COLOR":  # shown through its palette, as the model sees it
        rgb = np.asarray(apply_color_lut(arr, ds), dtype=np.float64)
        return rgb @ np.array([0.299, 0.587, 0.114]), None, False
    arr = apply_modality_lut(arr, ds)
    window = None
    if "VOILUTSequence" in ds:  # a lookup table: apply it, then show its full range
        arr = apply_voi_lut(arr, ds, index=0, prefer_lut=True)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        c, w = ds.WindowCenter, ds.WindowWidth
        c = float(c[0] if isinstance(c, pydicom.multival.MultiValue) else c)
        w = float(w[0] if isinstance(w, pydicom.multival.MultiValue) else w)
        window = (c, w)
    mono1 = str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    return np.asarray(arr, dtype=np.float64), window, mono1


def display_pixels(path):
    """Display pixels of an image for client-side window / level.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    pixels : ndarray of shape (H, W), dtype uint16
        Stored values (after the DICOM modality LUT, and VOI LUT when the
        file has one) shifted so that the minimum is 0, scaled down only when
        their range exceeds 65535. ``MONOCHROME1`` is inverted (bright = dense).
    center, width : float
        The default window in the units of ``pixels``: the DICOM window,
        else the data range.
    """
    window, mono1 = None, False
    if is_dicom(path):
        arr, window, mono1 = _dicom_pixels(path)
    else:
        with Image.open(path) as img:
            check_pixel_limit(path, img.height, img.width, getattr(img, "n_frames", 1))
            img.load()
            if img.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "I;16N"):
                img = img.convert("L")
            arr = np.asarray(img, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if mono1:
        arr = lo + hi - arr
        if window is not None:
            window = (lo + hi - window[0], window[1])
    scale = 65535.0 / (hi - lo) if hi - lo > 65535 else 1.0
    pixels = np.round((arr - lo) * scale).astype(np.uint16)
    if window is None:
        center, width = (hi - lo) * scale / 2, max((hi - lo) * scale, 1.0)
    else:
        center, width = (window[0] - lo) * scale, max(window[1] * scale, 1.0)
    return pixels, float(center), float(width)


def window_png(pixels, center, width):
    """8-bit PNG bytes of ``pixels`` through the linear window ``(center, width)``."""
    low = center - width / 2
    out = np.clip((pixels.astype(np.float64) - low) / width, 0.0, 1.0)
    buf = io.BytesIO()
    Image.fromarray(np.round(out * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
