"""Reading users' files: encodings, delimiters, bad files."""
from __future__ import annotations

import zipfile

import pytest

from bertdemo.data.tables import guess_columns, read_table
from conftest import write_csv

ZH_ROWS = [("这家餐厅的菜很好吃，服务也很周到", "正面"), ("快递太慢了，包装还破了", "负面"), ("价格一般，味道还可以", "中性")]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_chinese_csv_in_every_common_encoding_reads_back_identically(tmp_path, encoding):
    path = write_csv(tmp_path / "zh.csv", ZH_ROWS, encoding=encoding)
    df = read_table(path)
    assert list(df.columns) == ["text", "label"]  # no BOM glued to the first header
    assert df["text"].tolist() == [t for t, _ in ZH_ROWS]
    assert df["label"].tolist() == [label for _, label in ZH_ROWS]


def test_latin1_file_is_not_mistaken_for_chinese(tmp_path):
    rows = [("Un café élégant près de la gare", "positif"), ("Élan brisé, très déçu", "négatif"),
            ("Crème brûlée à emporter", "positif")]
    df = read_table(write_csv(tmp_path / "fr.csv", rows, encoding="latin-1"))
    assert df["text"].tolist() == [t for t, _ in rows]
    assert df.attrs["encoding"] in ("cp1252", "latin-1")


@pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
def test_delimiter_is_sniffed(tmp_path, delimiter):
    rows = [("good, really good", "pos"), ("bad; awful", "neg"), ("fine", "pos")]
    df = read_table(write_csv(tmp_path / "d.txt", rows, delimiter=delimiter))
    assert df["text"].tolist() == [t for t, _ in rows]


def test_text_columns_are_found_by_name_and_explicit_ones_are_checked(tmp_path):
    df = read_table(write_csv(tmp_path / "x.csv", [("1", "nice film", "positive")] * 3,
                              header=("id", "Review", "Sentiment")))
    assert guess_columns(df) == ("Review", "Sentiment")
    with pytest.raises(ValueError, match=r"No column named 'body'.*'id', 'Review', 'Sentiment'"):
        guess_columns(df, text_col="body")


def test_missing_label_column_lists_the_columns_found(tmp_path):
    df = read_table(write_csv(tmp_path / "x.csv", [("1", "a", "b")] * 3, header=("id", "foo", "bar")))
    with pytest.raises(ValueError, match=r"Columns found: 'id', 'foo', 'bar'"):
        guess_columns(df)


def test_empty_file_says_what_to_do(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_table(tmp_path / "e.csv")


def test_header_only_file(tmp_path):
    (tmp_path / "h.csv").write_text("text,label\n")
    with pytest.raises(ValueError, match="no rows"):
        read_table(tmp_path / "h.csv")


def test_binary_file_is_refused_with_a_fix(tmp_path):
    (tmp_path / "b.csv").write_bytes(bytes(range(256)) * 10)
    with pytest.raises(ValueError, match="binary"):
        read_table(tmp_path / "b.csv")


def test_excel_file_gets_save_as_csv_advice(tmp_path):
    with zipfile.ZipFile(tmp_path / "book.xlsx", "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(ValueError, match="Save As"):
        read_table(tmp_path / "book.xlsx")


def test_ragged_rows_are_reported_not_crashed(tmp_path):
    (tmp_path / "r.csv").write_text('text,label\n"a",b\n"c",d,e,f\n')
    with pytest.raises(ValueError, match="same number of columns"):
        read_table(tmp_path / "r.csv")


@pytest.mark.parametrize("encoding,rows", [
    ("cp1252", [("I don\u2019t like it, it\u2019s broken", "neg"), ("\u201cGreat\u201d value", "pos"), ("ok", "pos")]),
    ("latin-1", [("Sch\u00f6ne Gr\u00fc\u00dfe aus M\u00fcnchen", "pos"), ("T\u00fcr kaputt", "neg"), ("gut", "pos")]),
])
def test_western_encodings_with_accents_inside_words(tmp_path, encoding, rows):
    df = read_table(write_csv(tmp_path / "w.csv", rows, encoding=encoding))
    assert df["text"].tolist() == [t for t, _ in rows]


def test_unquoted_comma_in_a_text_is_an_error_not_a_new_label(tmp_path):
    (tmp_path / "c.csv").write_text("text,label\nhello, world,pos\nfine,neg\n")
    with pytest.raises(ValueError, match="quoted"):
        read_table(tmp_path / "c.csv")


def test_repeated_column_names_are_refused(tmp_path):
    (tmp_path / "r.csv").write_text("text,label, label\na,b,c\n")
    with pytest.raises(ValueError, match="same name: 'label'"):
        read_table(tmp_path / "r.csv")
