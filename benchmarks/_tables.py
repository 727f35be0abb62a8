"""Markdown tables of the benchmarks' reports.

One helper renders every table, so that each report keeps its own columns
and alignment but none writes the pipes and separators by hand.
"""

__all__ = ["markdown_table", "table_row"]


def table_row(cells):
    """One Markdown table row; an empty cell is written ``| |``.

    Parameters
    ----------
    cells : sequence
        Cell values, written with ``str``.

    Returns
    -------
    line : str
    """
    return "|" + "|".join(f" {c} " if str(c) != "" else " " for c in cells) + "|"


def markdown_table(header, rows, align=None, spaced=False):
    """The lines of a Markdown table.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : iterable of sequence
        One sequence of cells per row (see :func:`table_row`); a ``str`` is
        taken as a row written already.
    align : sequence of str, optional
        Separator of each column (``"---"``, ``"---:"``); ``"---"`` throughout
        by default.
    spaced : bool
        ``| --- | ---: |`` rather than ``|---|---:|``.

    Returns
    -------
    lines : list of str
    """
    align = list(align or ["---"] * len(header))
    separator = table_row(align) if spaced else "|" + "|".join(align) + "|"
    body = [r if isinstance(r, str) else table_row(r) for r in rows]
    return [table_row(header), separator, *body]
