"""The CSV of a labeling project is read like the simulator's: any common encoding and
delimiter, ragged rows and missing patients reported."""

import numpy as np
import pytest
from PIL import Image

from skal_cxr.labeling._images import find_images


@pytest.fixture
def image_dir(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    for i, name in enumerate(["a.png", "b.png"]):
        Image.fromarray(np.full((4, 4), i, np.uint8)).save(d / name)
    return d


def test_semicolon_csv_with_patients(image_dir, tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes("filename;patient\na.png;p1\nb.png;p2\n".encode("utf-16"))
    assert find_images(image_dir, path, group_column="patient") == [("a.png", "p1"),
                                                                   ("b.png", "p2")]


def test_ragged_rows_and_missing_patients_are_reported(image_dir, tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("filename,patient\na.png,NaN\nb.png,p2,extra\n")
    with pytest.raises(ValueError) as info:
        find_images(image_dir, path, group_column="patient")
    assert "line 2: missing 'patient'" in str(info.value)
    assert "line 3: 3 fields, but the header has 2" in str(info.value)


def test_non_utf8_csv_says_how_to_fix(image_dir, tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes("filename\na.png\nb.png\n# é\n".encode("cp1252"))
    with pytest.raises(ValueError, match=r"is not UTF-8 \(byte 0xe9 on line 4\)"):
        find_images(image_dir, path)
