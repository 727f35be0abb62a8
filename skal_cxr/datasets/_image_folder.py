"""A folder of images described by a CSV file with one or more raters' labels."""

from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._lazy import _release
from ._agreement import CONSENSUS, agreement, consensus_codes
from ._csv import read_csv_table
from ._folder_files import (
    _cache_images,
    _cached_rows,
    _find_duplicates,
    _read_images,
    _resolve_paths,
    _stack,
)
from ._folder_labels import _encode_ratings, _is_missing, _label_key, _missing
from ._image_io import check_image_size
from ._sources import DUPLICATES as _DUPLICATES
from ._sources import ON_ERROR as _ON_ERROR

__all__ = ["load_image_folder"]


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
    _, rows, problems = read_csv_table(csv_path, needed, encoding=encoding, delimiter=delimiter)

    lines = [line for line, _ in rows]
    errors = {line: [reason] for line, reason in problems.items()}  # line -> reasons
    filenames = [row[image_column].strip() for _, row in rows]
    raw = [[row[c].strip() for c in label_columns] for _, row in rows]
    rater_codes, scores, classes = _encode_ratings(raw, lines, label_columns, bins, classes, errors)
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
        cache, images, hashes = _cache_images(
            lines, paths, image_size, cache_dir, n_jobs, verbose, errors, verify_cache
        )
    else:
        images, hashes = _read_images(lines, paths, image_size, n_jobs, verbose, errors)
    release = None
    if cache_dir is not None:  # the check reads every row: keep them out of this process's RSS
        release = lambda: _release(cache.images, 0, len(cache.images))  # noqa: E731
    repeated = _find_duplicates(lines, filenames, paths, images, rater_codes, errors, release)

    def listed(reasons):
        return [
            (line, name, "; ".join(reasons[line]))
            for line, name in zip(lines, filenames)
            if line in reasons
        ]

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


def _check_params(
    label_columns, score_column, consensus, bins, classes, on_error, duplicates, image_size
):
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


def _error_message(csv_path, skipped, n_rows, duplicates=False):
    listed = [
        f"  line {line} ({name or '<no file name>'}): {reason}" for line, name, reason in skipped
    ]
    fix = (
        "\nRemove the repeated rows, or pass duplicates='keep_first' to keep the first "
        "row of each image (the others are then listed in the result's `skipped`)."
        if duplicates
        else "\nFix them, or pass on_error='skip' to load the other rows "
        "(the bad ones are then listed in the result's `skipped`)."
    )
    return (
        f"{len(skipped)} of {n_rows} rows of {csv_path} could not be loaded:\n"
        + "\n".join(listed)
        + fix
    )
