"""Labels of an image folder's CSV: missing values, spellings of one label, rater codes."""

import math
from collections import Counter

import numpy as np

# Cells read as a missing value (compared case-insensitively), unless they
# name one of the given ``classes``: spreadsheet and pandas spellings of NA.
MISSING = frozenset({"", "nan", "-nan", "na", "n/a", "#n/a", "<na>", "null", "none"})


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
                    errors.setdefault(line, []).append(_missing("score", v) + f" in column {col!r}")
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
