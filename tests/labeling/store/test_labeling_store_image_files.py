"""Finding images (CSV read like the simulator's: any common encoding and delimiter,
ragged rows and missing patients reported) and their display pixels (DICOM window,
VOI LUT, MONOCHROME1)."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from skal_cxr.labeling.store._image_files import display_pixels, find_images, window_png

pydicom = pytest.importorskip("pydicom")


def test_png_pixels_and_default_window(tmp_path):
    Image.fromarray(np.array([[10, 60], [110, 210]], dtype=np.uint8)).save(tmp_path / "a.png")
    pixels, center, width = display_pixels(tmp_path / "a.png")
    assert pixels.dtype == np.uint16 and pixels.tolist() == [[0, 50], [100, 200]]
    assert (center, width) == (100.0, 200.0)
    png = np.asarray(Image.open(io.BytesIO(window_png(pixels, center, width))))
    assert png.tolist() == [[0, 64], [128, 255]]


def test_dicom_window_and_rescale(tmp_path, write_dicom):
    path = write_dicom(
        tmp_path / "a.dcm",
        [[0, 100], [200, 4000]],
        RescaleSlope=2,
        RescaleIntercept=-100,
        WindowCenter=300,
        WindowWidth=400,
    )
    pixels, center, width = display_pixels(path)
    # modality LUT: -100, 100, 300, 7900; shifted by the minimum (-100)
    assert pixels.tolist() == [[0, 200], [400, 8000]]
    assert (center, width) == (400.0, 400.0)


def test_monochrome1_is_inverted_with_its_window(tmp_path, write_dicom):
    path = write_dicom(
        tmp_path / "m1.dcm",
        [[0, 100], [300, 1000]],
        photometric="MONOCHROME1",
        WindowCenter=200,
        WindowWidth=100,
    )
    pixels, center, width = display_pixels(path)
    assert pixels.tolist() == [[1000, 900], [700, 0]]  # dense (low) is bright now
    assert (center, width) == (800.0, 100.0)
    png = np.asarray(Image.open(io.BytesIO(window_png(pixels, center, width))))
    assert png[0, 0] == 255 and png[1, 1] == 0


def test_every_window_of_the_file_is_a_preset(tmp_path, write_dicom):
    path = write_dicom(
        tmp_path / "w.dcm",
        [[0, 100], [300, 1000]],
        photometric="MONOCHROME1",
        WindowCenter=[200, 400],
        WindowWidth=[100, 600],
        WindowCenterWidthExplanation=["NORMAL", "HARDER"],
    )
    pixels, center, width, windows = display_pixels(path, presets=True)
    # inverted like the pixels (MONOCHROME1), the first one is the default
    assert windows == [
        {"name": "NORMAL", "center": 800.0, "width": 100.0},
        {"name": "HARDER", "center": 600.0, "width": 600.0},
    ]
    assert (center, width) == (800.0, 100.0)
    plain = write_dicom(tmp_path / "p.dcm", [[0, 1]], WindowCenter=1, WindowWidth=2)
    assert display_pixels(plain, presets=True)[3] == [
        {"name": "window 1", "center": 1.0, "width": 2.0}
    ]
    Image.fromarray(np.array([[1, 2]], dtype=np.uint8)).save(tmp_path / "a.png")
    assert display_pixels(tmp_path / "a.png", presets=True)[3] == []


def test_voi_lut_sequence_is_applied(tmp_path, write_dicom):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    lut = Dataset()
    lut.LUTDescriptor = [4, 0, 8]
    lut.add_new("LUTData", "US", [0, 10, 20, 255])
    lut.LUTExplanation = "test"
    path = write_dicom(tmp_path / "lut.dcm", [[0, 1], [2, 3]], VOILUTSequence=Sequence([lut]))
    pixels, center, width = display_pixels(path)
    assert pixels.tolist() == [[0, 10], [20, 255]] and width == 255.0


def test_find_images_folder_and_csv(tmp_path):
    d = tmp_path / "images"
    (d / "sub").mkdir(parents=True)
    for name in ("b.png", "a.PNG", "sub/c.dcm", "notes.txt"):
        (d / name).write_bytes(b"x")
    assert find_images(d) == [("a.PNG", None), ("b.png", None), ("sub/c.dcm", None)]
    (tmp_path / "secret.png").write_bytes(b"x")
    os.symlink(tmp_path / "secret.png", d / "link.png")
    with pytest.warns(UserWarning, match="link outside"):
        assert ("link.png", None) not in find_images(d)
    csv = tmp_path / "list.csv"
    csv.write_text("filename,patient\nb.png,p1\nsub/c.dcm,p2\n")
    assert find_images(d, csv, group_column="patient") == [("b.png", "p1"), ("sub/c.dcm", "p2")]
    for bad, message in [
        ("../secret.png", "outside"),
        ("link.png", "outside"),
        ("/etc/passwd", "outside"),
        ("missing.png", "not found"),
        ("", "empty file name"),
    ]:
        csv.write_text(f"filename,patient\n{bad},p1\n")
        with pytest.raises(ValueError, match=message):
            find_images(d, csv, group_column="patient")
    csv.write_text("filename\nb.png\nb.png\n")
    with pytest.raises(ValueError, match="more than once"):
        find_images(d, csv)
    with pytest.raises(ValueError, match="lacks the column"):
        find_images(d, csv, image_column="path")


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
    assert find_images(image_dir, path, group_column="patient") == [
        ("a.png", "p1"),
        ("b.png", "p2"),
    ]


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


def test_a_link_and_its_target_are_one_film(tmp_path):
    """The rule of load_image_folder: a folder scan or a CSV naming both is refused."""
    d = tmp_path / "images"
    (d / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        (d / name).write_bytes(name.encode())
    os.symlink(d / "a.png", d / "sub" / "link.png")
    with pytest.raises(ValueError, match=r"'sub/link.png' is the same file as 'a.png'"):
        find_images(d)
    csv = tmp_path / "list.csv"
    csv.write_text("filename\na.png\nb.png\nsub/link.png\n")
    with pytest.raises(
        ValueError,
        match=r"line 4 \('sub/link.png'\) is the same file as "
        r"line 2 \('a.png'\)",
    ):
        find_images(d, csv)
    os.link(d / "b.png", d / "hard.png")
    csv.write_text("filename\nb.png\nhard.png\n")
    with pytest.raises(ValueError, match="line 3 .* same file as line 2"):
        find_images(d, csv)
    csv.write_text("filename\na.png\nb.png\n")
    assert find_images(d, csv) == [("a.png", None), ("b.png", None)]


def test_display_follows_the_decoder_on_palettes_slopes_and_size(
    tmp_path, write_dicom, monkeypatch
):
    """What the rater sees is what the model reads: palette applied, the same refusals."""
    descriptor = [4, 0, 16]
    data = np.asarray([65535, 40000, 20000, 0], dtype="<u2").tobytes()
    attrs = {
        f"{c}PaletteColorLookupTable{k}": v
        for c in ("Red", "Green", "Blue")
        for k, v in (("Descriptor", descriptor), ("Data", data))
    }
    path = write_dicom(
        tmp_path / "p.dcm", [[0, 1], [2, 3]], photometric="PALETTE COLOR", bits_stored=8, **attrs
    )
    pixels, _, _ = display_pixels(path)
    assert pixels.tolist() == [[65535, 40000], [20000, 0]]  # palette values, not indices
    flat = write_dicom(tmp_path / "flat.dcm", [[0, 5], [6, 7]], RescaleSlope=0)
    with pytest.raises(ValueError, match="RescaleSlope is 0"):
        display_pixels(flat)
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setenv("SKAL_CXR_MAX_PIXELS", "1000")
    with pytest.raises(ValueError, match="more than the limit"):
        display_pixels(tmp_path / "big.png")
