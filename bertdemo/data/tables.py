"""Reading a user's table file: encoding and delimiter detection, and finding the text and label columns.

This module only turns bytes into a pandas DataFrame of strings and names its columns; cleaning,
splitting and the data report live beside it in ``bertdemo.data``.
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from pathlib import Path

import pandas as pd

from bertdemo.limits import Limits

SNIFF_BYTES = 256 * 1024  # the encoding guess looks at this many bytes: bounded, whatever the file's size
MOSTLY_LONG = 0.5  # a file is refused when more than this share of its rows has a cell over max_cell_chars; fewer
# long texts are cut to the limit and counted in the data report

TEXT_NAMES = (
    "text", "sentence", "sentences", "review", "reviews", "content", "comment", "comments", "document", "doc",
    "body", "message", "tweet", "question", "utterance", "query", "headline", "title", "description",
    "review_text", "comment_text", "text_a", "sentence1", "input", "prompt", "abstract", "post", "文本", "内容", "评论", "句子",
)
LABEL_NAMES = (
    "label", "labels", "class", "classes", "category", "categories", "sentiment", "target", "intent", "topic",
    "tag", "y", "gold_label", "gold", "polarity", "emotion", "stars", "rating", "coarse_label", "output",
    "标签", "类别", "分类", "情感",
)


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    """Decode bytes as UTF-8 (with or without BOM), GB18030 or Windows-1252; return (text, encoding)."""
    if raw.startswith(b"\xff\xfe") or raw.startswith(b"\xfe\xff"):
        return raw.decode("utf-16"), "utf-16"
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    # GB18030 decodes many Latin-1 byte runs too (an accented letter followed by an ASCII letter is a valid
    # pair), so only trust it when the high bytes look like Chinese: GB2312-range pairs. A plain decoder
    # race (charset-normalizer) guesses wrong on short CSV cells, which is the common case here.
    if _looks_like_gbk(raw):
        try:
            return raw.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def _looks_like_gbk(raw: bytes) -> bool:
    """True when the non-ASCII bytes pair up as Chinese: mostly GB2312 pairs (both bytes 0xA1-0xFE).

    GBK extension pairs (trail byte 0x40-0xFE) are allowed, but only count when real GB2312 pairs
    dominate: a Latin-1 "ö" or a cp1252 curly quote followed by an ASCII letter is such a pair too.
    """
    first = re.search(rb"[\x80-\xff]", raw)
    if first is None:
        return False
    raw = raw[first.start():first.start() + SNIFF_BYTES]  # bounded: the guess needs a sample, not the whole file
    high = gb2312 = paired = 0
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b < 0x80:
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < n else 0
        if 0xA1 <= b <= 0xFE and 0xA1 <= nxt <= 0xFE:
            gb2312 += 1
        elif not (0x81 <= b <= 0xFE and 0x40 <= nxt <= 0xFE and nxt != 0x7F):
            high += 1
            i += 1
            continue
        paired += 1
        high += 2
        i += 2
    return high > 0 and paired * 2 / high >= 0.95 and gb2312 * 2 >= 0.6 * high


def read_table(path: str | Path, limits: Limits | None = None) -> pd.DataFrame:
    """Read a CSV/TSV file into a DataFrame of strings (empty cells become NaN).

    Detects the encoding (UTF-8 with or without BOM, UTF-16, GB18030/GBK, Windows-1252/Latin-1) and the
    delimiter (comma, tab, semicolon, pipe). Refuses, with a ``ValueError`` saying how to fix it, a file over the
    size or row limits (``bertdemo.limits``, checked before the costly steps), one whose rows are mostly cells over
    ``max_cell_chars``, a binary file, duplicate or blank column names, and ragged rows. Cells are returned whole:
    the rows' cleaning cuts a text over the limit. Messages name the file, never the folder it is in.
    """
    limits = limits or Limits.current()
    path = Path(path)
    name = shown(path.name)
    raw = _read_bytes(path, name, limits)
    text, encoding = _decode(raw, path)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ValueError(f"{name} has no content. Export a CSV with a header row and labeled rows.")
    if text.count("\n") > 2 * limits.max_rows + 1:  # an upper bound on the rows, known before parsing them
        raise ValueError(f"{name} has about {text.count(chr(10)):,} lines; at most {limits.max_rows:,} rows are read "
                         f"{limits.hint('max_rows')}. Sample fewer rows into a smaller file.")
    delimiter = _sniff_delimiter(text, path)
    _check_header(text, delimiter, name, limits)
    df = _parse(text, delimiter, name)
    if df.empty:
        raise ValueError(f"{name} has a header ({', '.join(shown(c, 30) for c in df.columns[:10])}) but no rows. "
                         "Add labeled rows.")
    _check_size(df, name, limits)
    df.attrs["source"] = path.name
    df.attrs["encoding"] = encoding
    df.attrs["delimiter"] = delimiter
    return df


def shown(value, limit: int = 60) -> str:
    """A name from a user's file, cut to ``limit`` characters for a message."""
    value = str(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _read_bytes(path: Path, name: str, limits: Limits) -> bytes:
    if not path.exists():
        raise ValueError(f"File not found: {name}. Check the path, or upload the file again.")
    if path.is_dir():
        raise ValueError(f"{name} is a folder, not a file. Choose a .csv or .tsv file.")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{name} is empty. Export a CSV with a header row and at least a few labeled rows.")
    if size > limits.max_file_mb * 2**20:
        raise ValueError(f"{name} is {size / 2**20:.0f} MB; files up to {limits.max_file_mb:g} MB are read "
                         f"{limits.hint('max_file_mb')}. Sample fewer rows into a smaller CSV.")
    raw = path.read_bytes()
    if raw[:4] == b"PK\x03\x04":
        raise ValueError(f"{name} is a ZIP or Excel (.xlsx) file, not text. In Excel use "
                         "File > Save As > 'CSV UTF-8 (Comma delimited)' and upload that.")
    utf16 = raw.startswith(b"\xff\xfe") or raw.startswith(b"\xfe\xff")
    if not utf16 and b"\x00" in raw:
        where = raw.index(b"\x00")
        what = "looks like a binary file" if where < 8192 else f"has a NUL byte at byte {where:,}"
        raise ValueError(f"{name} {what}, not a CSV/TSV text file. Save your table as CSV (comma-separated, "
                         "UTF-8) and upload that.")
    return raw


def _check_header(text: str, delimiter: str, name: str, limits: Limits) -> None:
    """Duplicate and blank column names, seen before pandas renames them ("text.1", "Unnamed: 1")."""
    first = text.split("\n", 1)[0]
    if len(first) > limits.max_cell_chars:
        raise ValueError(f"{name}'s first line is {len(first):,} characters long: it does not look like a header row "
                         "of column names. Check the file's encoding and delimiter, or export it again as CSV UTF-8.")
    try:
        header = next(csv.reader([first], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return
    names = [h.strip() for h in header]
    blank = [i + 1 for i, h in enumerate(names) if not h]
    if blank and len(names) > 1:
        raise ValueError(f"{name}: column {', '.join(map(str, blank[:5]))} of the header has no name. Give every "
                         "column a name (e.g. text, label), or delete the empty column.")
    repeated = sorted({h for h in names if names.count(h) > 1})
    if repeated:
        raise ValueError(f"{name} has columns with the same name: {', '.join(repr(shown(r, 30)) for r in repeated)}. "
                         "Rename them so every column header is different.")


def _parse(text: str, delimiter: str, name: str) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # pandas only warns when a row has one field too many (an unquoted comma in a text): that
            # would silently turn the text's tail into a label, so it is an error here.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                             na_values=[""], index_col=False, on_bad_lines="error")
    except (pd.errors.ParserError, pd.errors.ParserWarning, csv.Error) as err:
        raise ValueError(f"{name} is not a well-formed CSV/TSV ({shown(_first_line(err), 200)}). Check that every "
                         "row has the same number of columns and that texts containing the delimiter are quoted.") from err
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{name} has no columns. Export a CSV with a header row.") from err
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _check_size(df: pd.DataFrame, name: str, limits: Limits) -> None:
    """Too many rows, or a file that is mostly over-long cells. A few long cells are not refused here: the rows'
    cleaning cuts such texts to the limit and reports them (``bertdemo.data.clean.cut_texts``)."""
    if len(df) > limits.max_rows:
        raise ValueError(f"{name} has {len(df):,} rows; at most {limits.max_rows:,} are read "
                         f"{limits.hint('max_rows')}. Sample fewer rows into a smaller file.")
    lengths = pd.DataFrame({c: df[c].fillna("").str.len() for c in df.columns})  # (rows, columns)
    long_rows = (lengths > limits.max_cell_chars).any(axis=1)
    if long_rows.sum() > MOSTLY_LONG * len(df):
        column = lengths.max().idxmax()  # the column holding the longest cell
        row = int(lengths[column].idxmax()) + 2
        raise ValueError(f"{name}: {int(long_rows.sum()):,} of {len(df):,} rows have a cell over "
                         f"{limits.max_cell_chars:,} characters (the longest: column {shown(column, 30)!r}, row {row}, "
                         f"{int(lengths[column].max()):,} characters); cells of up to {limits.max_cell_chars:,} are "
                         f"read {limits.hint('max_cell_chars')}. When most of a file is such cells it is probably "
                         "read with the wrong delimiter or quotes, or it holds whole documents: split them into "
                         "passages.")


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _sniff_delimiter(text: str, path: Path) -> str:
    sample = "\n".join(text[:65536].split("\n", 50)[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        # One-column files and some quoted files defeat the sniffer; the extension is the next best hint.
        header = sample.split("\n", 1)[0]
        if path.suffix.lower() in (".tsv", ".tab") or "\t" in header:
            return "\t"
        return ","


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def guess_columns(df: pd.DataFrame, text_col: str | None = None, label_col: str | None = None) -> tuple[str, str]:
    """Return (text_col, label_col): given names are checked, missing ones are found by name.

    Raises ``ValueError`` that lists the columns found when a column can't be found.
    """
    columns = list(df.columns)
    listed = _listed(columns)
    for given, what in ((text_col, "text"), (label_col, "label")):
        if given is not None and given not in columns:
            raise ValueError(f"No column named {shown(given, 40)!r} for the {what}. Columns found: {listed}. "
                             f"Pick one of these as the {what} column.")
    if text_col is None:
        text_col = _find(columns, TEXT_NAMES, exclude=label_col)
    if label_col is None:
        label_col = _find(columns, LABEL_NAMES, exclude=text_col)
    if (text_col is None or label_col is None) and len(columns) == 2:
        # Two unnamed-looking columns: the text is the one with the longer cells.
        a, b = columns
        la = df[a].fillna("").str.len().mean()
        lb = df[b].fillna("").str.len().mean()
        guess_text, guess_label = (a, b) if la >= lb else (b, a)
        text_col = text_col or (guess_text if guess_text != label_col else guess_label)
        label_col = label_col or (guess_label if guess_label != text_col else guess_text)
    if text_col is None:
        raise ValueError(f"Could not find the text column. Columns found: {listed}. Name it 'text' "
                         "(or sentence/review/content…), or choose it explicitly (--text-col in the CLI).")
    if label_col is None:
        raise ValueError(f"Could not find the label column. Columns found: {listed}. Name it 'label' "
                         "(or class/category/sentiment/target…), or choose it explicitly (--label-col in the CLI).")
    if text_col == label_col:
        raise ValueError(f"The text and label columns are both {shown(text_col, 40)!r}. Choose two different columns.")
    return text_col, label_col


def _listed(columns: list[str], most: int = 20) -> str:
    """Column names for a message: each cut short, at most ``most`` of them."""
    names = ", ".join(repr(shown(c, 40)) for c in columns[:most])
    return names + (f" and {len(columns) - most} more" if len(columns) > most else "")


def _find(columns: list[str], names: tuple[str, ...], exclude: str | None) -> str | None:
    normalised = {_norm(c): c for c in columns if c != exclude}
    for name in names:
        if name in normalised:
            return normalised[name]
    return None


def guess_text_column(table: pd.DataFrame, text_col: str | None = None) -> str:
    """The text column of a file that may have no labels (batch prediction, unlabeled imports): the given one,
    else found by name as for labeled files, else the only column."""
    if text_col is not None:
        if text_col not in table.columns:
            raise ValueError(f"No column named {shown(text_col, 40)!r} for the text. Columns found: "
                             f"{_listed(list(table.columns))}. Pick one of these as the text column.")
        return text_col
    try:
        return guess_columns(table)[0]
    except ValueError:
        pass
    found = _find(list(table.columns), TEXT_NAMES, exclude=None)
    if found is not None:
        return found
    if len(table.columns) == 1:
        return table.columns[0]
    raise ValueError(f"Could not find the text column. Columns found: {_listed(list(table.columns))}. "
                     "Name the text column 'text'.")
