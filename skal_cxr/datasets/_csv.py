"""Reading a CSV table written by any common tool, or saying exactly how to fix it.

Hospital exports come from Excel, PACS tools and scripts: UTF-8 with or
without a byte-order mark, UTF-16 (Excel's "Unicode text"), Windows code
pages, and ``;`` or tab delimiters (Excel in locales with a decimal comma).
Nothing here guesses silently: Unicode files with a byte-order mark are
decoded, other non-UTF-8 files raise with the fix; the delimiter is the one
that yields the needed columns.
"""

import codecs
import csv
import io
from collections import Counter, namedtuple
from pathlib import Path

__all__ = ["read_csv_table", "CSVTable"]

DELIMITERS = (",", ";", "\t", "|")
_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

CSVTable = namedtuple("CSVTable", ["header", "rows", "problems"])
CSVTable.__doc__ = """A parsed CSV file.

header : list of str
    Column names, stripped of surrounding spaces.
rows : list of (int, dict)
    ``(line, {column: value})`` per non-blank row; ``line`` is the line the
    row starts on (the header is line 1). Missing trailing fields are ``""``.
problems : dict of int to str
    Line -> why the row is malformed (a different number of fields than the
    header): such rows are bad rows, not silently padded or cut.
"""


def read_csv_table(csv_path, needed, *, encoding=None, delimiter=None):
    """Read a CSV file with a header row holding the ``needed`` columns.

    Parameters
    ----------
    csv_path : str or path-like
    needed : list of str
        Columns that must be in the header; they also pick the delimiter.
    encoding : str, default=None
        ``None`` reads UTF-8, and UTF-8/16/32 files with a byte-order mark;
        any other file raises, naming the offending byte and the fix.
    delimiter : str, default=None
        ``None`` tries ``,`` ``;`` tab and ``|`` and keeps the first whose
        header holds every ``needed`` column.

    Returns
    -------
    table : CSVTable
        ``(header, rows, problems)``.

    Raises
    ------
    ValueError
        For an undecodable, binary, empty or header-only file, broken
        quoting, repeated or missing columns.
    """
    csv_path = Path(csv_path)
    text = _decode(csv_path, csv_path.read_bytes(), encoding)
    if delimiter is None:
        delimiter = _pick_delimiter(text, needed)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header, rows, problems = None, [], {}
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ValueError(
                f"{csv_path}, line {start}: {exc} (check the quotes of this row)."
            ) from exc
        if not any(f.strip() for f in fields):
            continue  # blank line
        if header is None:
            header = _check_header(csv_path, [f.strip() for f in fields], needed, delimiter)
            continue
        if len(fields) != len(header):
            n = len(fields)
            problems[start] = f"{n} field{'s' if n != 1 else ''}, but the header has {len(header)}"
        fields = fields[: len(header)] + [""] * (len(header) - len(fields))
        rows.append((start, dict(zip(header, fields))))
    if header is None:
        raise ValueError(f"{csv_path} is empty: expected a header row and image rows.")
    if not rows:
        raise ValueError(f"{csv_path} has a header ({header}) but no image rows.")
    return CSVTable(header, rows, problems)


def _decode(csv_path, data, encoding):
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {encoding!r} for {csv_path}.") from exc
        name = encoding
    else:
        name = next((enc for bom, enc in _BOMS if data.startswith(bom)), None)
        if name is None and b"\0" in data:
            raise ValueError(
                f"{csv_path} is not a text CSV file (it holds NUL bytes): save it as "
                "UTF-8 text; if it is UTF-16 without a byte-order mark, pass "
                "encoding='utf-16-le'."
            )
        name = name or "utf-8-sig"
    try:
        text = data.decode(name)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        what = "UTF-8" if encoding is None else encoding
        raise ValueError(
            f"{csv_path} is not {what} (byte 0x{data[exc.start]:02x} on line {line}). "
            "Save it as UTF-8 (Excel: 'CSV UTF-8'), or pass the encoding it was "
            "written in, for example encoding='cp1252' (Windows, Western Europe)."
        ) from exc
    text = text.lstrip("\ufeff")
    if "\0" in text:
        raise ValueError(
            f"{csv_path} is not a text CSV file (it holds NUL bytes after decoding as "
            f"{name}): check its encoding."
        )
    return text


def _first_row(text, delimiter):
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                return [f.strip() for f in fields]
    except csv.Error:
        pass
    return []


def _pick_delimiter(text, needed):
    headers = {d: _first_row(text, d) for d in DELIMITERS}
    for d, header in headers.items():
        if all(c in header for c in needed):
            return d
    # None fits: the one splitting the header most, for the error message
    return max(DELIMITERS, key=lambda d: len(headers[d]))


def _check_header(csv_path, header, needed, delimiter):
    repeated = sorted(c for c, n in Counter(h for h in header if h).items() if n > 1)
    if repeated:
        raise ValueError(
            f"{csv_path} repeats the column(s) {repeated} in its header {header}: "
            "rename them so that each column is read."
        )
    missing = [c for c in needed if c not in header]
    if missing:
        hint = ""
        if len(header) == 1:
            hint = (
                f" Its fields are not separated by {delimiter!r}: pass "
                "delimiter= with the character that separates them."
            )
        raise ValueError(
            f"{csv_path} lacks the column(s) {missing}; its columns are {header}.{hint}"
        )
    return header
