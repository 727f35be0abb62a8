"""A folder of images described by a CSV file with one or more raters' labels."""

import hashlib
import math
from collections import Counter
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.utils import Bunch
from tqdm.auto import tqdm

from .._lazy import _release
from ._agreement import CONSENSUS, agreement, consensus_codes
from ._cache import build_image_cache, file_sha256
from ._csv import read_csv_table
from ._image_io import check_image_size, read_image
from ._paths import repeated_files, resolve_image_name

__all__ = ["load_image_folder"]

_ON_ERROR = ("raise", "skip")
_DUPLICATES = ("raise", "keep_first")
# Cells read as a missing value (compared case-insensitively), unless they
# name one of the given ``classes``: spreadsheet and pandas spellings of NA.
MISSING = frozenset({"", "nan", "-nan", "na", "n/a", "#n/a", "<na>", "null", "none"})


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
    duplicates="raise",
    encoding=None,
    delimiter=None,
    n_jobs=None,
    verbose=False,
    cache_dir=None,
    verify_cache=False,
):
    """Load images listed in a CSV file, with labels from one or more raters.

    Each CSV row names an image file (relative to ``image_dir``) and gives
    its label, either as one or several rater columns (``label_columns``)
    or as a numeric score (``score_column``) cut into classes by ``bins``.

    Nothing is silently wrong: file names must stay inside ``image_dir``
    (no absolute path, no ``..``, no symbolic link leading out); a file
    listed twice, under any spelling or link, or two files with identical
    pixels are an error (``duplicates``), since they would leak between
    the pool and the test set; labels are matched ignoring case and
    surrounding spaces, numbers as numbers (``1`` and ``1.0`` are one
    class), and a missing cell (empty, ``NaN``, ``NA``, ``null``...) is a
    bad row, never a class.

    Images are PNG, JPEG or anything else Pillow reads, converted to
    grayscale and divided by their integer type's maximum (255 or 65535),
    or DICOM (``.dcm``/``.dicom`` or a file with the ``DICM`` marker), read
    with pydicom: modality LUT (rescale slope / intercept), VOI LUT or
    window, ``MONOCHROME1`` inverted, then min-max scaled to ``[0, 1]``.

    Parameters
    ----------
    csv_path : str or path-like
        CSV file with a header row, read with the :mod:`csv` module. A row
        with more or fewer fields than the header is a bad row.
    image_dir : str or path-like
        Folder the file names are relative to; no file outside it is read.
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
        is an error. Ratings match a class ignoring case and surrounding
        spaces, and numerically when both are numbers. Without ``bins``,
        ``None`` takes the sorted distinct ratings: numbers (ints when all
        are whole) when they all are, else strings spelled as most rows
        spell them (give ``classes`` when the alphabetical order is not
        the severity order, or to use a word such as ``"none"`` that
        otherwise reads as missing). With ``bins``, ``classes`` names the
        ``len(bins) + 1`` bins and ``None`` uses the codes ``0 .. len(bins)``.
    group_column : str, default=None
        Column with a group id per image (a patient), returned as
        ``groups`` for :func:`patient_train_test_split`.
    image_size : int or tuple of (int, int), default=None
        Resize every image to this ``(height, width)``. ``None`` requires
        all images to have the same size.
    on_error : {"raise", "skip"}, default="raise"
        What to do with bad rows (missing, unreadable or corrupt image,
        empty file name or one leaving ``image_dir``, label not among
        ``classes``, missing label or score, non-numeric score, missing
        group, wrong number of fields). ``"raise"`` checks every row, then
        raises one ``ValueError`` listing all of them; ``"skip"`` loads the
        other rows and reports each bad one in ``skipped``. Problems with
        the whole file (undecodable, empty, missing or repeated columns)
        and mixed image sizes always raise.
    duplicates : {"raise", "keep_first"}, default="raise"
        Rows naming the same file (``a.png``, ``./a.png``, a link to it) or
        files with identical pixels (after ``image_size``). ``"raise"``
        lists them in one ``ValueError`` whatever ``on_error``;
        ``"keep_first"`` keeps the first good row of each image and reports
        the others in ``skipped`` (noting when their labels differ).
    encoding : str, default=None
        Encoding of the CSV file. ``None`` reads UTF-8, and UTF-8, UTF-16
        or UTF-32 with a byte-order mark; any other file raises, naming the
        first undecodable byte (pass ``encoding="cp1252"`` for a Windows
        export, or save it as UTF-8).
    delimiter : str, default=None
        Field separator. ``None`` takes the first of ``,`` ``;`` tab and
        ``|`` whose header holds the needed columns.
    n_jobs : int, default=None
        Number of parallel jobs reading images (:class:`joblib.Parallel`,
        threads by default; a ``joblib.parallel_backend`` context can pick
        processes); ``None`` means 1, ``-1`` all processors.
    verbose : bool, default=False
        Show a progress bar while reading images.
    cache_dir : str or path-like, default=None
        Decode the images once into this on-disk cache
        (:func:`~skal_cxr.datasets.build_image_cache`, with ``n_jobs``
        threads) and return them memory-mapped instead of in
        memory: ``images`` is then a read-only :class:`numpy.memmap` of
        ``uint8`` (pixel values ``round(255 * v)``), which every estimator
        and strategy of skal_cxr reads batch by batch. Needs
        ``image_size``. Loading again reuses the cache, decoding only new
        or changed files (a file whose size, modification time, inode or
        status-change time differs is hashed again; a changed SHA-256 is
        decoded again); an interrupted build resumes.
    verify_cache : bool, default=False
        With ``cache_dir``: hash every file again instead of trusting an
        unchanged file status (``build_image_cache(verify=True)``).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With the keys:

        images : ndarray of shape (n_images, H, W), dtype float32
            Pixel values in ``[0, 1]``; with ``cache_dir``, a
            :class:`numpy.memmap` of ``uint8``.
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
        sha256 : ndarray of shape (n_images,) of str
            SHA-256 of each image file's bytes (the data, whatever the
            cache holds).
        skipped : list of (int, str, str)
            ``(line, filename, reason)`` of each skipped row (bad rows with
            ``on_error="skip"``, repeated images with
            ``duplicates="keep_first"``); ``line`` is the row's line number
            in the CSV file (the header is line 1).

    Raises
    ------
    ValueError
        For bad rows with ``on_error="raise"`` (all listed in one message),
        duplicates with ``duplicates="raise"``, an undecodable or empty
        CSV, missing columns, invalid parameters, or images of different
        sizes without ``image_size``.

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
        label_columns, score_column, consensus, bins, classes, on_error, duplicates, image_size
    )
    label_columns, bins, image_size = params
    csv_path, image_dir = Path(csv_path), Path(image_dir)
    if not image_dir.is_dir():
        raise ValueError(f"image_dir {image_dir} is not a folder.")
    needed = [image_column, *label_columns] + ([group_column] if group_column else [])
    _, rows, problems = read_csv_table(csv_path, needed, encoding=encoding,
                                       delimiter=delimiter)

    lines = [line for line, _ in rows]
    errors = {line: [reason] for line, reason in problems.items()}  # line -> reasons
    filenames = [row[image_column].strip() for _, row in rows]
    raw = [[row[c].strip() for c in label_columns] for _, row in rows]
    rater_codes, scores, classes = _encode_ratings(raw, lines, label_columns, bins, classes,
                                                   errors)
    groups = None
    if group_column:
        groups = [row[group_column].strip() for _, row in rows]
        for line, group in zip(lines, groups):
            if _is_missing(group):
                errors.setdefault(line, []).append(
                    _missing("group", group) + f" in column {group_column!r}"
                )
    paths = _resolve_paths(lines, filenames, image_dir, errors)
    if cache_dir is not None:
        if image_size is None:
            raise ValueError("cache_dir needs image_size: the cache stores one working size.")
        cache, images, hashes = _cache_images(lines, paths, image_size, cache_dir, n_jobs,
                                              verbose, errors, verify_cache)
    else:
        images, hashes = _read_images(lines, paths, image_size, n_jobs, verbose, errors)
    release = None
    if cache_dir is not None:  # the check reads every row: keep them out of this process's RSS
        release = lambda: _release(cache.images, 0, len(cache.images))  # noqa: E731
    repeated = _find_duplicates(lines, filenames, paths, images, rater_codes, errors, release)

    def listed(reasons):
        return [(line, name, "; ".join(reasons[line]))
                for line, name in zip(lines, filenames) if line in reasons]

    if repeated and duplicates == "raise":
        for line, reason in repeated.items():
            errors.setdefault(line, []).append(reason)
        raise ValueError(_error_message(csv_path, listed(errors), len(rows), duplicates=True))
    if errors and on_error == "raise":
        raise ValueError(_error_message(csv_path, listed(errors), len(rows)))
    for line, reason in repeated.items():
        errors.setdefault(line, []).append(reason)
    skipped = listed(errors)
    keep = np.array([line not in errors for line in lines], dtype=bool)
    if not keep.any():
        raise ValueError(
            f"No image of {csv_path} could be loaded: all {len(rows)} rows were skipped "
            f"(first: {skipped[0]})."
        )
    if cache_dir is not None:
        stacked = _cached_rows(cache, [p for p, k in zip(paths, keep) if k], n_jobs, verbose)
    else:
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
        sha256=np.array([h or "" for h in hashes], dtype=str)[keep],
        skipped=skipped,
    )


def _check_params(label_columns, score_column, consensus, bins, classes, on_error, duplicates,
                  image_size):
    if consensus not in CONSENSUS:
        raise ValueError(f"consensus must be one of {CONSENSUS}; got {consensus!r}.")
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be one of {_ON_ERROR}; got {on_error!r}.")
    if duplicates not in _DUPLICATES:
        raise ValueError(f"duplicates must be one of {_DUPLICATES}; got {duplicates!r}.")
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
        keys = [_label_key(str(c)) for c in classes]
        if len(set(keys)) != len(keys) or not keys:
            raise ValueError(
                f"classes must be distinct labels (ignoring case and surrounding spaces, "
                f"numbers by value); got {list(classes)}."
            )
    return label_columns, bins, check_image_size(image_size)


def _is_missing(value):
    return value.strip().casefold() in MISSING


def _missing(what, value):
    return f"empty {what}" if not value.strip() else f"missing {what} {value!r}"


def _label_key(value):
    """What makes two spellings one label: the number, or the case-folded words."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return number  # 1 == 1.0 as dict keys
    return " ".join(value.split()).casefold()


def _encode_ratings(raw, lines, columns, bins, classes, errors):
    """Class codes ``(n_rows, n_raters)`` (-1 where bad), raw scores and the classes."""
    n_rows, n_raters = len(raw), len(columns)
    codes = np.full((n_rows, n_raters), -1, dtype=np.int64)
    if bins is not None:
        scores = np.full((n_rows, n_raters), np.nan)
        for i, (line, values) in enumerate(zip(lines, raw)):
            for j, (col, v) in enumerate(zip(columns, values)):
                if _is_missing(v):
                    errors.setdefault(line, []).append(
                        _missing("score", v) + f" in column {col!r}"
                    )
                    continue
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

    inferred = classes is None
    if inferred:
        classes = _infer_classes(raw)
    else:
        classes = np.asarray(classes)
    lookup = {_label_key(str(c)): k for k, c in enumerate(classes.tolist())}
    for i, (line, values) in enumerate(zip(lines, raw)):
        for j, (col, v) in enumerate(zip(columns, values)):
            code = lookup.get(_label_key(v))
            if code is not None:
                codes[i, j] = code
            elif _is_missing(v):
                hint = f" (give classes if {v!r} is a label)" if inferred and v.strip() else ""
                errors.setdefault(line, []).append(
                    _missing("label", v) + f" in column {col!r}{hint}"
                )
            else:
                errors.setdefault(line, []).append(
                    f"unknown label {v!r} in column {col!r} (classes: {classes.tolist()})"
                )
    if len(classes) == 0:
        raise ValueError(f"No labels found in the column(s) {columns}.")
    return codes, None, classes


def _infer_classes(raw):
    """Sorted distinct labels: numbers when all are, else the commonest spellings."""
    spellings = {}  # key -> Counter of spellings
    for values in raw:
        for v in values:
            if not _is_missing(v):
                spellings.setdefault(_label_key(v), Counter())[v] += 1
    keys = list(spellings)
    if all(isinstance(k, float) for k in keys):
        numbers = sorted(keys)
        if all(k.is_integer() for k in numbers):
            return np.asarray([int(k) for k in numbers], dtype=np.int64)
        return np.asarray(numbers)
    names = [spellings[k].most_common(1)[0][0] for k in keys]
    return np.asarray(sorted(names, key=lambda name: (name.casefold(), name)))


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


def _load_one(path, image_size):
    """``(image, reason, sha256)`` of one file; ``image`` is None where ``reason`` says why."""
    if not path.is_file():
        return None, f"file not found: {path}", None
    try:
        sha = file_sha256(path)
        return read_image(path, image_size), None, sha
    except ImportError:
        raise
    except Exception as exc:  # corrupt files fail in many ways
        return None, f"unreadable image {path}: {type(exc).__name__}: {exc}", None


def _read_images(lines, paths, image_size, n_jobs, verbose, errors):
    todo = [i for i, path in enumerate(paths) if path is not None]
    images, hashes = [None] * len(paths), [None] * len(paths)
    # Threads: Pillow and pydicom decode mostly outside the GIL, and worker
    # processes would each import torch (through skal_cxr) before reading.
    results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(
        delayed(_load_one)(paths[i], image_size) for i in todo
    )
    results = tqdm(results, total=len(todo), desc="Reading images", disable=not verbose)
    for i, (image, reason, sha) in zip(todo, results):
        if reason is not None:
            errors.setdefault(lines[i], []).append(reason)
        images[i], hashes[i] = image, sha
    return images, hashes


def _cache_images(lines, paths, image_size, cache_dir, n_jobs, verbose, errors, verify):
    """Build the cache of the valid paths; per-row memmap views and hashes (``None`` where bad)."""
    unique = list(dict.fromkeys(str(p) for p in paths if p is not None))
    cache = build_image_cache(unique, cache_dir, image_size, n_jobs=n_jobs, verify=verify,
                              verbose=verbose)
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
        return build_image_cache(paths, cache.cache_dir, cache.image_size, n_jobs=n_jobs,
                                 verbose=verbose).images
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


def _error_message(csv_path, skipped, n_rows, duplicates=False):
    listed = [f"  line {line} ({name or '<no file name>'}): {reason}"
              for line, name, reason in skipped]
    fix = ("\nRemove the repeated rows, or pass duplicates='keep_first' to keep the first "
           "row of each image (the others are then listed in the result's `skipped`)."
           if duplicates else
           "\nFix them, or pass on_error='skip' to load the other rows "
           "(the bad ones are then listed in the result's `skipped`).")
    return (
        f"{len(skipped)} of {n_rows} rows of {csv_path} could not be loaded:\n"
        + "\n".join(listed) + fix
    )
