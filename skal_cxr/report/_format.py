"""The one formatter of numbers in reports and benchmark tables."""

import math

__all__ = ["format_value", "MISSING"]

#: What :func:`format_value` shows for a missing value (None or NaN).
MISSING = "–"


def format_value(value, digits=3, *, spec=None, missing=MISSING):
    """A value as a table cell: fixed decimals for floats, a dash when missing.

    Parameters
    ----------
    value : object
        ``None`` and a float NaN are missing; a Python float (numpy's
        ``float64`` included) is shown with ``digits`` decimals; anything
        else (an int, a string) as ``str(value)``.
    digits : int, default=3
        Decimals of a float.
    spec : str or None, default=None
        A format specification (``".2g"``, ``"+.4f"``) applied to every
        value that is not missing, ints included, instead of ``digits``.
    missing : str, default="–"
        Shown for a missing value (an en dash).

    Returns
    -------
    text : str

    Examples
    --------
    >>> from skal_cxr.report import format_value
    >>> format_value(0.91234), format_value(0.5, 1), format_value(40), format_value(None)
    ('0.912', '0.5', '40', '–')
    >>> format_value(float("nan"), missing="n/a"), format_value(0.012345, spec=".2g")
    ('n/a', '0.012')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if spec is not None:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
