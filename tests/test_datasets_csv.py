"""Reading CSV files of any common encoding and delimiter, or saying how to fix them."""

import numpy as np
import pytest
from PIL import Image

from skal_cxr.datasets import load_image_folder
from skal_cxr.datasets._csv import read_csv_table

NEEDED = ["filename", "label"]


def write(tmp_path, text, encoding="utf-8", name="l.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32"])
def test_unicode_encodings_with_or_without_bom(tmp_path, encoding):
    path = write(tmp_path, "filename,label\nrésumé.png,anomalie\n", encoding)
    table = read_csv_table(path, NEEDED)
    assert table.header == ["filename", "label"] and table.problems == {}
    assert table.rows == [(2, {"filename": "résumé.png", "label": "anomalie"})]


def test_non_utf8_says_how_to_fix(tmp_path):
    path = write(tmp_path, "filename,label\na.png,normal\nb.png,opacité\n", "cp1252")
    with pytest.raises(ValueError) as info:
        read_csv_table(path, NEEDED)
    message = str(info.value)
    assert "is not UTF-8 (byte 0xe9 on line 3)" in message
    assert "encoding='cp1252'" in message and "Save it as UTF-8" in message
    header, rows, _ = read_csv_table(path, NEEDED, encoding="cp1252")
    assert rows[1] == (3, {"filename": "b.png", "label": "opacité"})


def test_unknown_encoding_name(tmp_path):
    path = write(tmp_path, "filename,label\na.png,normal\n")
    with pytest.raises(ValueError, match="unknown encoding 'utf-9'"):
        read_csv_table(path, NEEDED, encoding="utf-9")


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_detected(tmp_path, delimiter):
    text = f'filename{delimiter}label{delimiter}note\na.png{delimiter}1{delimiter}"x, y; z|\tw"\n'
    header, rows, _ = read_csv_table(write(tmp_path, text), NEEDED)
    assert header == ["filename", "label", "note"]
    assert rows[0][1] == {"filename": "a.png", "label": "1", "note": "x, y; z|\tw"}


def test_semicolon_file_with_decimal_commas(tmp_path):
    # The European Excel export: ';' between fields, ',' inside numbers.
    path = write(tmp_path, "filename;score\na.png;0,5\nb.png;1,25\n")
    header, rows, _ = read_csv_table(path, ["filename", "score"])
    assert [r["score"] for _, r in rows] == ["0,5", "1,25"]


def test_explicit_delimiter(tmp_path):
    path = write(tmp_path, "filename:label\na.png:1\n")
    with pytest.raises(ValueError) as info:
        read_csv_table(path, NEEDED)
    assert "lacks the column(s) ['filename', 'label']; its columns are ['filename:label']" in str(
        info.value
    )
    assert "delimiter=" in str(info.value)
    assert read_csv_table(path, NEEDED, delimiter=":")[1][0][1] == {
        "filename": "a.png",
        "label": "1",
    }


def test_header_names_are_stripped_and_must_be_distinct(tmp_path):
    header, _, _ = read_csv_table(write(tmp_path, " filename , label \na.png,1\n"), NEEDED)
    assert header == ["filename", "label"]
    with pytest.raises(ValueError, match=r"repeats the column\(s\) \['label'\]"):
        read_csv_table(write(tmp_path, "filename,label,label\na.png,1,2\n"), NEEDED)


def test_rows_with_extra_or_missing_fields_are_bad_rows(tmp_path):
    text = "filename,label\na.png,1\nb.png,1,extra\nc.png\n\n , \nd.png,0\n"
    table = read_csv_table(write(tmp_path, text), NEEDED)
    assert [line for line, _ in table.rows] == [2, 3, 4, 7]
    assert table.rows[1][1] == {"filename": "b.png", "label": "1"}
    assert table.rows[2][1] == {"filename": "c.png", "label": ""}
    assert table.problems == {
        3: "3 fields, but the header has 2",
        4: "1 field, but the header has 2",
    }


def test_broken_quotes(tmp_path):
    path = write(tmp_path, 'filename,label\na.png,1\nb.png,"normal\nc.png,1\n')
    with pytest.raises(ValueError, match=r"l.csv, line 3: .*unexpected end of data"):
        read_csv_table(path, NEEDED)


@pytest.mark.parametrize(
    "content",
    [b"filename,label\na.png,1\n\0\0\0\n", "filename,label\na.png,1\n".encode("utf-16-le")],
)
def test_nul_bytes(tmp_path, content):
    path = tmp_path / "l.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"l.csv is not a text CSV file \(it holds NUL bytes"):
        read_csv_table(path, NEEDED)


def test_binary_file_is_not_a_csv(tmp_path):
    path = tmp_path / "image.csv"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, format="PNG")
    with pytest.raises(ValueError, match="image.csv is not a text CSV file"):
        read_csv_table(path, NEEDED)


# -- through load_image_folder -----------------------------------------------------
def test_load_image_folder_reads_semicolon_latin1(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(images / "é.png")
    Image.fromarray(np.ones((2, 2), np.uint8)).save(images / "b.png")
    path = write(tmp_path, "filename;label\né.png;opacité\nb.png;normal\n", "latin-1")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_image_folder(path, images)
    data = load_image_folder(path, images, encoding="latin-1")
    assert data.filenames.tolist() == ["é.png", "b.png"]
    assert data.target.tolist() == ["opacité", "normal"]


def test_load_image_folder_reports_ragged_rows(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(images / name)
    path = write(tmp_path, "filename,label\na.png,1\nb.png,1,0\n")  # '1,0' meant 1.0?
    with pytest.raises(ValueError, match=r"line 3 \(b.png\): 3 fields, but the header has 2"):
        load_image_folder(path, images)
