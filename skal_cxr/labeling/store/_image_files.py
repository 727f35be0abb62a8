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
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ...datasets._csv import read_csv_table
from ...datasets._folder_labels import _is_missing
from ...datasets._image_io import (
    _pixel_luts,
    check_pixel_limit,
    dicom_values,
    is_dicom,
    read_dicom_header,
)
from ...datasets._paths import repeated_files, resolve_image_name
from ...datasets._sources import IMAGE_SUFFIXES

__all__ = [
    "IMAGE_SUFFIXES",
    "find_images",
    "file_sha256",
    "display_pixels",
    "window_png",
    "pixels_png16",
    "film_context",
    "HEADER_TAGS",
    "header_values",
]

#: DICOM attributes the page's film panel shows by default (keywords).
HEADER_TAGS = ("ViewPosition", "PatientAge", "PatientSex", "StudyDate", "Modality")


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
        files = [p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        found, outside = [], []
        for p in files:
            if p.is_file():
                (found if _inside(p, image_dir) else outside).append(
                    p.relative_to(image_dir).as_posix()
                )
        found.sort()
        if outside:
            outside.sort()
            warnings.warn(
                f"left out {len(outside)} image file(s) that link outside {image_dir} "
                f"(first: {outside[0]!r} -> {os.path.realpath(image_dir / outside[0])}).",
                stacklevel=2,
            )
        rows = [(name, None) for name in found]
        where = [repr(name) for name in found]
    else:
        # (any common encoding and delimiter; rows of the wrong length are problems)
        table = read_csv_table(csv_path, [image_column] + ([group_column] if group_column else []))
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
            raise ValueError(
                f"{len(problems)} rows of {csv_path} are unusable:\n  " + "\n  ".join(problems[:20])
            )
    repeated = repeated_files([image_dir / name for name, _ in rows])
    if repeated:
        listed = [f"{where[i]} is the same file as {where[j]}" for i, j in repeated.items()]
        raise ValueError(
            f"files listed more than once (a link and its target are one file): "
            f"{'; '.join(listed[:10])}{' ...' if len(listed) > 10 else ''}. List each "
            "image once (remove the link, or give a CSV naming one of them)."
        )
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
    ds, arr, photometric = dicom_values(path)
    if photometric == "PALETTE COLOR":  # shown through its palette, as the model sees it
        return arr, [], False
    windows = []
    if "VOILUTSequence" in ds:  # a lookup table: apply it, then show its full range
        apply_voi_lut = _pixel_luts()[2]
        arr = apply_voi_lut(arr, ds, index=0, prefer_lut=True)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        from pydicom.multival import MultiValue

        def values(v):
            return list(v) if isinstance(v, MultiValue) else [v]

        names = (
            values(ds.WindowCenterWidthExplanation) if "WindowCenterWidthExplanation" in ds else []
        )
        for k, (c, w) in enumerate(zip(values(ds.WindowCenter), values(ds.WindowWidth))):
            name = str(names[k]).strip() if k < len(names) else ""
            windows.append((float(c), float(w), name or f"window {k + 1}"))
    return np.asarray(arr), windows, photometric == "MONOCHROME1"


def _shifted(arr, lo, hi, scale, mono1):
    """``round((v - lo) * scale)`` as uint16 (``hi - v`` for ``MONOCHROME1``).

    Integer values whose range fits 16 bits are shifted in integer
    arithmetic: the same values as the float formula, an order of magnitude
    faster on a 15-Mpx film (no float64 copy of it).
    """
    if arr.dtype.kind in "ui" and scale == 1.0:
        wide = np.int64 if arr.dtype.itemsize > 2 or arr.dtype.kind == "i" else arr.dtype
        if mono1:
            return np.subtract(int(hi), arr, dtype=wide).astype(np.uint16)
        return np.subtract(arr, int(lo), dtype=wide).astype(np.uint16)
    arr = np.asarray(arr, dtype=np.float64)
    if mono1:
        arr = lo + hi - arr
    return np.round((arr - lo) * scale).astype(np.uint16)


def display_pixels(path, presets=False):
    """Display pixels of an image for client-side window / level.

    Parameters
    ----------
    path : path-like
    presets : bool, default=False
        Also return every window of the file.

    Returns
    -------
    pixels : ndarray of shape (H, W), dtype uint16
        Stored values (after the DICOM modality LUT, and VOI LUT when the
        file has one) shifted so that the minimum is 0, scaled down only when
        their range exceeds 65535. ``MONOCHROME1`` is inverted (bright = dense).
    center, width : float
        The default window in the units of ``pixels``: the file's first
        WindowCenter / WindowWidth pair, else the data range.
    windows : list of dict
        Only with ``presets=True``: every WindowCenter / WindowWidth pair of
        the file (DX files often carry several, e.g. normal, harder, softer),
        as ``name`` (its WindowCenterWidthExplanation, else "window K"),
        ``center`` and ``width`` in the units of ``pixels``; empty for other
        files and for files with a VOI LUT (already applied).
    """
    windows, mono1 = [], False
    if is_dicom(path):
        arr, windows, mono1 = _dicom_pixels(path)
    else:
        with Image.open(path) as img:
            check_pixel_limit(path, img.height, img.width, getattr(img, "n_frames", 1))
            img.load()
            if img.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "I;16N"):
                img = img.convert("L")
            arr = np.asarray(img)
    lo, hi = float(arr.min()), float(arr.max())
    if mono1:
        windows = [(lo + hi - c, w, name) for c, w, name in windows]
    scale = 65535.0 / (hi - lo) if hi - lo > 65535 else 1.0
    pixels = _shifted(arr, lo, hi, scale, mono1)
    windows = [
        {"name": name, "center": float((c - lo) * scale), "width": float(max(w * scale, 1.0))}
        for c, w, name in windows
    ]
    if windows:
        center, width = windows[0]["center"], windows[0]["width"]
    else:
        center, width = (hi - lo) * scale / 2, max((hi - lo) * scale, 1.0)
    if presets:
        return pixels, float(center), float(width), windows
    return pixels, float(center), float(width)


def window_png(pixels, center, width):
    """8-bit PNG bytes of ``pixels`` through the linear window ``(center, width)``."""
    low = center - width / 2
    out = np.clip((pixels.astype(np.float64) - low) / width, 0.0, 1.0)
    buf = io.BytesIO()
    Image.fromarray(np.round(out * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def pixels_png16(pixels, max_size=None, text=None):
    """Lossless greyscale PNG bytes of display pixels, optionally made smaller.

    16 bits per pixel, or 8 when every value fits (an 8-bit source).

    Parameters
    ----------
    pixels : ndarray of shape (H, W), dtype uint16
        As from :func:`display_pixels`.
    max_size : int or None, default=None
        Longest side of the result. A larger image is reduced by area
        averaging (Pillow's box filter: each output pixel is the mean of the
        stored pixels it covers, no aliasing); ``None`` keeps every pixel.

    Returns
    -------
    png : bytes
        The PNG file (zlib level 1: about as small as level 6 for radiographs,
        several times faster to write).
    size : (int, int)
        Width and height of the PNG.
    """
    h, w = pixels.shape
    if max_size is not None and max(h, w) > max_size:
        scale = max_size / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = Image.fromarray(pixels.astype(np.float32), mode="F").resize(
            size, Image.Resampling.BOX
        )
        pixels = np.clip(np.round(np.asarray(small)), 0, 65535).astype(np.uint16)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buf = io.BytesIO()
    # values that fit in 8 bits (an 8-bit source) go as an 8-bit PNG: half the bytes
    dtype = np.uint8 if pixels.size and int(pixels.max()) <= 255 else np.uint16
    Image.fromarray(np.ascontiguousarray(pixels, dtype=dtype)).save(
        buf, format="PNG", compress_level=1, pnginfo=info
    )
    return buf.getvalue(), (pixels.shape[1], pixels.shape[0])


def film_context(image_dir, rows, csv_path=None, image_column="filename", date_column=None):
    """Patient and study date of each image: ``[(patient, date), ...]`` in ``rows`` order.

    The CSV's patient (already in ``rows``) and ``date_column`` come first;
    a DICOM file without them gives its ``PatientID`` and ``StudyDate``
    (header only, the pixels are not read). Missing values are ``None``.
    """
    dates = {}
    if csv_path is not None and date_column is not None:
        table = read_csv_table(csv_path, [image_column, date_column])
        for _, row in table.rows:
            value = row[date_column].strip()
            dates[row[image_column].strip()] = None if _is_missing(value) else value
    out = []
    for rel, patient in rows:
        date = dates.get(rel)
        path = Path(image_dir) / rel
        if (patient is None or date is None) and is_dicom(path):
            ds = read_dicom_header(path)
            patient = patient or (str(ds.get("PatientID", "")).strip() or None)
            date = date or (str(ds.get("StudyDate", "")).strip() or None)
        out.append((patient, date))
    return out


def header_values(path, tags=HEADER_TAGS):
    """``[{"keyword", "name", "value"}, ...]`` of the DICOM attributes ``tags`` present.

    Empty for files that are not DICOM. Values are as written in the file
    (``PatientAge`` ``"067Y"``, ``StudyDate`` ``"20240301"``).
    """
    if not is_dicom(path):
        return []
    ds = read_dicom_header(path)
    from pydicom.datadict import dictionary_description

    out = []
    for keyword in tags:
        value = ds.get(keyword)
        if value is None or str(value).strip() == "":
            continue
        try:
            name = dictionary_description(keyword)
        except KeyError:
            name = keyword
        out.append({"keyword": keyword, "name": name, "value": str(value)})
    return out
