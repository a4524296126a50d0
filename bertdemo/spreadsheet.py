"""CSV files that are safe to open in a spreadsheet: every CSV the app writes for people (batch predictions,
labeling exports, a run's training data) goes through ``write_csv``.

Spreadsheet apps run a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula
(OWASP: CSV injection), so such cells — header cells included — get a leading apostrophe, which the spreadsheet
shows as text and hides.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(value):
    """``value`` with a leading apostrophe if it is a string a spreadsheet would run; anything else as it is."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names are defused."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(defuse)
    safe.columns = [defuse(str(c)) for c in safe.columns]
    return safe


def write_csv(frame: pd.DataFrame, dest: str | Path) -> Path:
    """Write ``frame`` as a UTF-8 CSV with every cell and header defused; return the path."""
    dest = Path(dest)
    # RFC 4180's CRLF rows: Python's csv writer quotes a cell only for the characters of its line terminator, so
    # with pandas' "\n" a text holding a lone "\r" was written bare and split its row in two
    safe_frame(frame).to_csv(dest, index=False, encoding="utf-8", lineterminator="\r\n")
    return dest
