"""CSV that a spreadsheet opens as plain text.

Statistics and evaluations are opened in spreadsheets, which run a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula (tab and carriage return can hide such a start). A case named
``=HYPERLINK(...)`` would become a live link (CSV injection). Following the OWASP advice, such a
text cell gets a leading single quote, which spreadsheets show as text; a number keeps its sign.
Python's ``csv`` module quotes for CSV's own syntax only, hence this module. JSON outputs keep
the raw text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def inert(cell: object) -> object:
    """``cell`` as a spreadsheet may show it without running anything."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document (``\\n`` line ends) of ``header`` and ``rows``, every text cell inert."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([inert(c) for c in header])
    for row in rows:
        w.writerow([inert(c) for c in row])
    return buf.getvalue()
