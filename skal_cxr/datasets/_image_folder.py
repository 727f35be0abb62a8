"""A folder of images described by a CSV file with one or more raters' labels."""

import csv
from collections import Counter
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.utils import Bunch
from tqdm.auto import tqdm

from ._agreement import CONSENSUS, agreement, consensus_codes
from ._image_io import check_image_size, read_image

__all__ = ["load_image_folder"]

_ON_ERROR = ("raise", "skip")


def load_image_folder(
    csv_path,
    image_dir,
    *,
    image_column="filename",
    label_columns=None,
    score_column=None,
    consensus="majority",
    bins=None,
    classes=None,
    group_column=None,
    image_size=None,
    on_error="raise",
    n_jobs=None,
    verbose=False,
):
    """Load images listed in a CSV file, with labels from one or more raters.

    Each CSV row names an image file (relative to ``image_dir``) and gives
    its label, either as one or several rater columns (``label_columns``)
    or as a numeric score (``score_column``) cut into classes by ``bins``.

    Images are PNG, JPEG or anything else Pillow reads, converted to
    grayscale and divided by their integer type's maximum (255 or 65535),
    or DICOM (``.dcm``/``.dicom`` or a file with the ``DICM`` marker), read
    with pydicom: modality LUT (rescale slope / intercept), VOI LUT or
    window, ``MONOCHROME1`` inverted, then min-max scaled to ``[0, 1]``.

    Parameters
    ----------
    csv_path : str or path-like
        CSV file with a header row, read with the :mod:`csv` module.
    image_dir : str or path-like
        Folder the file names are relative to.
    image_column : str, default="filename"
        Column with the image file names.
    label_columns : str or list of str, default=None
        Column(s) holding each rater's label. ``None`` uses a ``"label"``
        column, unless ``score_column`` is given.
    score_column : str, default=None
        Column with a numeric score per image, converted to a class code by
        ``np.digitize(score, bins)``: code ``i`` when
        ``bins[i - 1] <= score < bins[i]``. Exclusive with ``label_columns``.
    consensus : {"majority", "mean", "max"}, default="majority"
        How several raters' labels become one label, on the class codes
        (positions in ``classes``, ordered from least to most severe):

        - ``"majority"``: the most frequent label; a tie goes to the more
          severe label, the one later in ``classes``.
        - ``"mean"``: the mean class code rounded half up; with ``bins``,
          the mean of the numeric ratings is binned instead.
        - ``"max"``: the most severe label.
    bins : array-like of float, default=None
        Increasing bin edges turning numeric ratings into class codes
        ``0 .. len(bins)`` with ``np.digitize`` (see ``score_column``).
        Needed with ``score_column``; with ``label_columns`` each rating
        must then be a number.
    classes : array-like, default=None
        The label set in order of increasing severity; a rating not in it
        is an error. Without ``bins``, ``None`` takes the sorted distinct
        ratings (numerically when they are all numbers: give ``classes``
        when the alphabetical order of string labels is not the severity
        order). With ``bins``, ``classes`` names the ``len(bins) + 1`` bins
        and ``None`` uses the codes ``0 .. len(bins)``.
    group_column : str, default=None
        Column with a group id per image (a patient), returned as
        ``groups`` for :func:`patient_train_test_split`.
    image_size : int or tuple of (int, int), default=None
        Resize every image to this ``(height, width)``. ``None`` requires
        all images to have the same size.
    on_error : {"raise", "skip"}, default="raise"
        What to do with bad rows (missing, unreadable or corrupt image,
        empty file name, label not among ``classes``, non-numeric score,
        empty group). ``"raise"`` checks every row, then raises one
        ``ValueError`` listing all of them; ``"skip"`` loads the other rows
        and reports each bad one in ``skipped``. Problems with the whole
        file (empty, missing columns) and mixed image sizes always raise.
    n_jobs : int, default=None
        Number of parallel jobs reading images (:class:`joblib.Parallel`,
        threads by default; a ``joblib.parallel_backend`` context can pick
        processes); ``None`` means 1, ``-1`` all processors.
    verbose : bool, default=False
        Show a progress bar while reading images.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With the keys:

        images : ndarray of shape (n_images, H, W), dtype float32
            Pixel values in ``[0, 1]``.
        target : ndarray of shape (n_images,)
            Consensus label of each image, taken from ``classes``.
        classes : ndarray of shape (n_classes,)
            The label set, in severity order.
        rater_labels : ndarray of shape (n_images, n_raters)
            Each rater's label (after binning, with ``bins``).
        scores : ndarray of shape (n_images, n_raters) of float, or None
            The numeric ratings before binning, when ``bins`` is given.
        agreement : dict or None
            With two raters or more: ``"fleiss_kappa"``, the mean pairwise
            ``"percent_agreement"``, ``"n_raters"`` and ``"n_items"``,
            computed on the loaded images; ``None`` with one rater.
        groups : ndarray of shape (n_images,) of str, or None
            Patient of each image, from ``group_column``.
        filenames : ndarray of shape (n_images,) of str
            As written in the CSV.
        skipped : list of (int, str, str)
            ``(line, filename, reason)`` of each skipped row; ``line`` is
            the row's line number in the CSV file (the header is line 1).

    Raises
    ------
    ValueError
        For bad rows with ``on_error="raise"`` (all listed in one message),
        an empty CSV, missing columns, invalid parameters, or images of
        different sizes without ``image_size``.

    Examples
    --------
    >>> from skal_cxr.datasets import load_image_folder
    >>> data = load_image_folder(  # doctest: +SKIP
    ...     "labels.csv", "images/", label_columns=["rater1", "rater2", "rater3"],
    ...     classes=["normal", "moderate", "severe"], group_column="patient_id",
    ...     image_size=64,
    ... )
    >>> data.images.shape, data.agreement["fleiss_kappa"]  # doctest: +SKIP
    ((812, 64, 64), 0.61)
    """
    params = _check_params(
        label_columns, score_column, consensus, bins, classes, on_error, image_size
    )
    label_columns, bins, image_size = params
    csv_path, image_dir = Path(csv_path), Path(image_dir)
    header, rows = _read_csv(csv_path)
    needed = [image_column, *label_columns] + ([group_column] if group_column else [])
    missing = [c for c in needed if c not in header]
    if missing:
        raise ValueError(
            f"{csv_path} lacks the column(s) {missing}; its columns are {header}."
        )

    lines = [line for line, _ in rows]
    errors = {}  # line -> reasons, for every problem of every row
    filenames = [row[image_column].strip() for _, row in rows]
    raw = [[row[c].strip() for c in label_columns] for _, row in rows]
    rater_codes, scores, classes = _encode_ratings(raw, lines, label_columns, bins, classes,
                                                   errors)
    groups = None
    if group_column:
        groups = [row[group_column].strip() for _, row in rows]
        for line, group in zip(lines, groups):
            if not group:
                errors.setdefault(line, []).append(f"empty group in column {group_column!r}")
    images = _read_images(lines, filenames, image_dir, image_size, n_jobs, verbose, errors)

    skipped = [(line, name, "; ".join(errors[line]))
               for line, name in zip(lines, filenames) if line in errors]
    if skipped and on_error == "raise":
        raise ValueError(_error_message(csv_path, skipped, len(rows)))
    keep = np.array([line not in errors for line in lines], dtype=bool)
    if not keep.any():
        raise ValueError(
            f"No image of {csv_path} could be loaded: all {len(rows)} rows were skipped "
            f"(first: {skipped[0]})."
        )
    kept_images = [im for im, k in zip(images, keep) if k]
    stacked = _stack(kept_images, np.array(filenames, dtype=str)[keep])

    codes = rater_codes[keep]
    n_classes = len(classes)
    if bins is not None and consensus == "mean":
        target_codes = np.digitize(scores[keep].mean(axis=1), bins).astype(np.int64)
    else:
        target_codes = consensus_codes(codes, n_classes, consensus)
    return Bunch(
        images=stacked,
        target=classes[target_codes],
        classes=classes,
        rater_labels=classes[codes],
        scores=None if scores is None else scores[keep],
        agreement=agreement(codes, n_classes),
        groups=None if groups is None else np.array(groups, dtype=str)[keep],
        filenames=np.array(filenames, dtype=str)[keep],
        skipped=skipped,
    )


def _check_params(label_columns, score_column, consensus, bins, classes, on_error, image_size):
    if consensus not in CONSENSUS:
        raise ValueError(f"consensus must be one of {CONSENSUS}; got {consensus!r}.")
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be one of {_ON_ERROR}; got {on_error!r}.")
    if label_columns is not None and score_column is not None:
        raise ValueError("Give label_columns or score_column, not both.")
    if score_column is not None:
        if bins is None:
            raise ValueError("score_column needs bins to turn scores into classes.")
        label_columns = [score_column]
    elif label_columns is None:
        label_columns = ["label"]
    elif isinstance(label_columns, str):
        label_columns = [label_columns]
    label_columns = list(label_columns)
    if not label_columns or len(set(label_columns)) != len(label_columns):
        raise ValueError(f"label_columns must be distinct column names; got {label_columns}.")
    if bins is not None:
        bins = np.asarray(bins, dtype=float)
        if bins.ndim != 1 or len(bins) == 0 or np.any(np.diff(bins) <= 0):
            raise ValueError(f"bins must be increasing bin edges; got {bins.tolist()}.")
        if classes is not None and len(classes) != len(bins) + 1:
            raise ValueError(
                f"With bins, classes names the {len(bins) + 1} bins; got {len(classes)} "
                f"classes {list(classes)}."
            )
    if classes is not None:
        labels = [str(c) for c in classes]
        if len(set(labels)) != len(labels) or not labels:
            raise ValueError(f"classes must be distinct labels; got {list(classes)}.")
    return label_columns, bins, check_image_size(image_size)


def _read_csv(csv_path):
    """Header and ``(line_number, row_dict)`` pairs; empty or header-only files raise."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        if not header:
            raise ValueError(f"{csv_path} is empty: expected a header row and image rows.")
        rows = []
        for row in reader:  # (the csv module itself skips blank lines)
            rows.append((reader.line_num, {k: (v or "") for k, v in row.items()}))
    if not rows:
        raise ValueError(f"{csv_path} has a header ({header}) but no image rows.")
    return list(header), rows


def _as_numbers(values):
    """The values as ints, else floats, else ``None``."""
    for kind in (int, float):
        try:
            return [kind(v) for v in values]
        except ValueError:
            continue
    return None


def _encode_ratings(raw, lines, columns, bins, classes, errors):
    """Class codes ``(n_rows, n_raters)`` (-1 where bad), raw scores and the classes."""
    n_rows, n_raters = len(raw), len(columns)
    codes = np.full((n_rows, n_raters), -1, dtype=np.int64)
    if bins is not None:
        scores = np.full((n_rows, n_raters), np.nan)
        for i, (line, values) in enumerate(zip(lines, raw)):
            for j, (col, v) in enumerate(zip(columns, values)):
                try:
                    scores[i, j] = float(v)
                except ValueError:
                    scores[i, j] = np.nan
                if not np.isfinite(scores[i, j]):
                    errors.setdefault(line, []).append(
                        f"score {v!r} in column {col!r} is not a number"
                    )
        ok = np.isfinite(scores)
        codes[ok] = np.digitize(scores[ok], bins)
        classes = np.arange(len(bins) + 1) if classes is None else np.asarray(classes)
        return codes, scores, classes

    if classes is None:
        seen = sorted({v for values in raw for v in values if v})
        numbers = _as_numbers(seen)
        if numbers is not None:
            order = np.argsort(numbers, kind="stable")
            classes = np.asarray(numbers)[order]
            seen = [seen[k] for k in order]
        else:
            classes = np.asarray(seen)
        lookup = {s: k for k, s in enumerate(seen)}
    else:
        classes = np.asarray(classes)
        lookup = {str(c): k for k, c in enumerate(classes.tolist())}
    for i, (line, values) in enumerate(zip(lines, raw)):
        for j, (col, v) in enumerate(zip(columns, values)):
            if v in lookup:
                codes[i, j] = lookup[v]
            elif not v:
                errors.setdefault(line, []).append(f"empty label in column {col!r}")
            else:
                errors.setdefault(line, []).append(
                    f"unknown label {v!r} in column {col!r} (classes: {classes.tolist()})"
                )
    if len(classes) == 0:
        raise ValueError(f"No labels found in the column(s) {columns}.")
    return codes, None, classes


def _load_one(path, image_size):
    if not path.is_file():
        return None, f"file not found: {path}"
    try:
        return read_image(path, image_size), None
    except ImportError:
        raise
    except Exception as exc:  # corrupt files fail in many ways
        return None, f"unreadable image {path}: {type(exc).__name__}: {exc}"


def _read_images(lines, filenames, image_dir, image_size, n_jobs, verbose, errors):
    todo = [i for i, name in enumerate(filenames) if name]
    for i, name in enumerate(filenames):
        if not name:
            errors.setdefault(lines[i], []).append("empty file name")
    images = [None] * len(filenames)
    # Threads: Pillow and pydicom decode mostly outside the GIL, and worker
    # processes would each import torch (through skal_cxr) before reading.
    results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(
        delayed(_load_one)(image_dir / filenames[i], image_size) for i in todo
    )
    results = tqdm(results, total=len(todo), desc="Reading images", disable=not verbose)
    for i, (image, reason) in zip(todo, results):
        if reason is not None:
            errors.setdefault(lines[i], []).append(reason)
        images[i] = image
    return images


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


def _error_message(csv_path, skipped, n_rows):
    listed = [f"  line {line} ({name or '<no file name>'}): {reason}"
              for line, name, reason in skipped]
    return (
        f"{len(skipped)} of {n_rows} rows of {csv_path} could not be loaded:\n"
        + "\n".join(listed)
        + "\nFix them, or pass on_error='skip' to load the other rows "
        "(the bad ones are then listed in the result's `skipped`)."
    )
