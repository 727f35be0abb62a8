import csv

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from skal_cxr.datasets import load_image_folder
from skal_cxr.datasets._agreement import consensus_codes, fleiss_kappa, percent_agreement
from skal_cxr.datasets._image_io import read_image

pydicom = pytest.importorskip("pydicom")

CLASSES = ["normal", "moderate", "severe"]
PNG8 = np.array([[0, 51], [102, 255]], dtype=np.uint8)
PNG16 = np.array([[0, 1000], [32768, 65535]], dtype=np.uint16)


# -- helpers -------------------------------------------------------------------
def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def image_dir(tmp_path, write_dicom):
    """One file of each supported kind, with known pixel values."""
    d = tmp_path / "images"
    d.mkdir()
    Image.fromarray(PNG8).save(d / "png8.png")
    Image.fromarray(PNG16).save(d / "png16.png")
    Image.fromarray(np.full((2, 2), 128, np.uint8)).save(d / "gray.jpg", quality=100)
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 1] = rgb[1, 0] = 100  # gray pixels: luma = 100 exactly
    rgb[1, 1] = 255
    Image.fromarray(rgb).save(d / "rgb.png")
    rgb[1, 1] = 200  # (not a pixel-identical duplicate of rgb.png)
    rgba = np.dstack([rgb, np.full((2, 2), 7, np.uint8)])
    Image.fromarray(rgba).save(d / "rgba.png")
    # Stored [0, 100, 200, 400] -> slope 2, intercept -1024 -> min-max.
    write_dicom(d / "mono2.dcm", [[0, 100], [200, 400]], RescaleSlope=2, RescaleIntercept=-1024)
    write_dicom(d / "mono1.dcm", [[0, 100], [200, 400]], photometric="MONOCHROME1")
    # Window [0, 100] after rescale: stored [0, 50, 75, 150] -> [-100, 0, 50, 200].
    write_dicom(
        d / "window.dcm",
        [[0, 50], [75, 150]],
        RescaleSlope=2,
        RescaleIntercept=-100,
        WindowCenter=50.5,
        WindowWidth=101,
    )
    write_dicom(d / "no_suffix", [[0, 50], [75, 150]], WindowCenter=50.5, WindowWidth=101)
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (d / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\1\2\3")
    return d


EXPECTED = {
    "png8.png": PNG8 / 255.0,
    "png16.png": PNG16 / 65535.0,
    "rgb.png": np.array([[0, 100], [100, 255]]) / 255.0,
    "rgba.png": np.array([[0, 100], [100, 200]]) / 255.0,
    "mono2.dcm": np.array([[0, 0.25], [0.5, 1.0]]),
    "mono1.dcm": np.array([[1.0, 0.75], [0.5, 0.0]]),
    "window.dcm": np.array([[0, 0], [0.5, 1.0]]),
    "no_suffix": np.array([[0, 0.5], [0.75, 1.0]]),
}


# -- reading single files ------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_read_image_exact_values(image_dir, name):
    image = read_image(image_dir / name)
    assert image.dtype == np.float32 and image.shape == (2, 2)
    np.testing.assert_allclose(image, EXPECTED[name], rtol=0, atol=1e-6)


def test_read_jpeg(image_dir):
    np.testing.assert_allclose(read_image(image_dir / "gray.jpg"), 128 / 255, atol=2 / 255)


def test_read_image_resizes(image_dir):
    image = read_image(image_dir / "png16.png", image_size=(4, 3))
    assert image.shape == (4, 3) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1


@pytest.mark.parametrize(
    "name, error, match",
    [
        ("corrupt.png", UnidentifiedImageError, r"cannot identify image file .*corrupt\.png"),
        ("corrupt.dcm", ValueError, r"^DICOM file has no pixel data\.$"),
    ],
)
def test_read_corrupt_files_raise(image_dir, name, error, match):
    with pytest.raises(error, match=match):
        read_image(image_dir / name)


# -- loading a folder ----------------------------------------------------------
def test_loads_every_format_with_labels_and_groups(image_dir, tmp_path):
    names = sorted(EXPECTED)
    rows = [(n, CLASSES[i % 3], f"p{i // 2}") for i, n in enumerate(names)]
    path = write_csv(tmp_path / "labels.csv", ["filename", "label", "patient"], rows)
    data = load_image_folder(path, image_dir, classes=CLASSES, group_column="patient")
    assert data.images.shape == (len(names), 2, 2) and data.images.dtype == np.float32
    for image, name in zip(data.images, data.filenames):
        np.testing.assert_allclose(image, EXPECTED[name], atol=1e-6)
    assert data.filenames.tolist() == names
    assert data.target.tolist() == [r[1] for r in rows]
    assert data.rater_labels.shape == (len(names), 1)
    assert data.classes.tolist() == CLASSES
    assert data.groups.tolist() == [r[2] for r in rows]
    assert data.agreement is None and data.scores is None and data.skipped == []


def test_default_label_column_and_inferred_numeric_classes(image_dir, tmp_path):
    path = write_csv(
        tmp_path / "l.csv",
        ["filename", "label"],
        [("png8.png", "2"), ("png16.png", "0"), ("rgb.png", "10")],
    )
    data = load_image_folder(path, image_dir)
    assert data.classes.tolist() == [0, 2, 10]  # numeric, not alphabetical, order
    assert data.target.tolist() == [2, 0, 10]
    assert data.groups is None


def test_inferred_string_classes_are_sorted(image_dir, tmp_path):
    path = write_csv(
        tmp_path / "l.csv", ["filename", "label"], [("png8.png", "sick"), ("png16.png", "healthy")]
    )
    assert load_image_folder(path, image_dir).classes.tolist() == ["healthy", "sick"]


RATINGS = [
    # r1, r2, r3             majority    mean        max
    (("normal", "normal", "moderate"), "normal", "normal", "moderate"),
    (("normal", "moderate", "severe"), "severe", "moderate", "severe"),  # 3-way tie
    (("normal", "severe", "severe"), "severe", "moderate", "severe"),
    (("moderate", "moderate", "moderate"), "moderate", "moderate", "moderate"),
    (("normal", "normal", "normal"), "normal", "normal", "normal"),
]


@pytest.mark.parametrize("consensus, column", [("majority", 1), ("mean", 2), ("max", 3)])
def test_consensus_of_three_raters(image_dir, tmp_path, consensus, column):
    names = ["png8.png", "png16.png", "rgb.png", "rgba.png", "mono2.dcm"]
    rows = [(n, *r[0]) for n, r in zip(names, RATINGS)]
    path = write_csv(tmp_path / "r.csv", ["filename", "a", "b", "c"], rows)
    data = load_image_folder(
        path, image_dir, label_columns=["a", "b", "c"], consensus=consensus, classes=CLASSES
    )
    assert data.target.tolist() == [r[column] for r in RATINGS]
    assert data.rater_labels.tolist() == [list(r[0]) for r in RATINGS]


def test_majority_tie_of_two_raters_goes_to_the_more_severe(image_dir, tmp_path):
    path = write_csv(
        tmp_path / "r.csv",
        ["filename", "a", "b"],
        [("png8.png", "severe", "normal"), ("png16.png", "normal", "moderate")],
    )
    data = load_image_folder(path, image_dir, label_columns=["a", "b"], classes=CLASSES)
    assert data.target.tolist() == ["severe", "moderate"]
    # The order of `classes` defines severity.
    data = load_image_folder(
        path, image_dir, label_columns=["a", "b"], classes=["severe", "moderate", "normal"]
    )
    assert data.target.tolist() == ["normal", "normal"]


def test_mean_rounds_half_up():
    assert consensus_codes([[0, 1], [1, 2], [0, 0]], 3, "mean").tolist() == [1, 2, 0]
    assert consensus_codes([[0, 0, 1], [0, 1, 1]], 3, "mean").tolist() == [0, 1]


def test_score_column_with_bins(image_dir, tmp_path):
    path = write_csv(
        tmp_path / "s.csv",
        ["filename", "score"],
        [
            ("png8.png", "0.1"),
            ("png16.png", "0.3"),
            ("rgb.png", "0.69"),
            ("rgba.png", "0.7"),
            ("mono2.dcm", "5"),
        ],
    )
    data = load_image_folder(path, image_dir, score_column="score", bins=[0.3, 0.7])
    # np.digitize: code i when bins[i-1] <= score < bins[i].
    assert data.target.tolist() == [0, 1, 1, 2, 2]
    assert data.scores[:, 0].tolist() == [0.1, 0.3, 0.69, 0.7, 5.0]
    named = load_image_folder(
        path, image_dir, score_column="score", bins=[0.3, 0.7], classes=CLASSES
    )
    assert named.target.tolist() == ["normal", "moderate", "moderate", "severe", "severe"]


def test_numeric_ratings_mean_then_binned(image_dir, tmp_path):
    path = write_csv(
        tmp_path / "s.csv",
        ["filename", "a", "b"],
        [("png8.png", "1", "2"), ("png16.png", "0", "2.9"), ("rgb.png", "3", "4")],
    )
    kw = dict(label_columns=["a", "b"], bins=[1.5, 3.5], classes=CLASSES)
    mean = load_image_folder(path, image_dir, consensus="mean", **kw)
    assert mean.target.tolist() == ["moderate", "normal", "severe"]  # 1.5, 1.45, 3.5
    assert mean.rater_labels.tolist() == [
        ["normal", "moderate"],
        ["normal", "moderate"],
        ["moderate", "severe"],
    ]
    assert load_image_folder(path, image_dir, consensus="max", **kw).target.tolist() == [
        "moderate",
        "moderate",
        "severe",
    ]


# -- agreement -----------------------------------------------------------------
def test_fleiss_kappa_tiny_hand_computed_example():
    # Pairwise agreement per item: 1, 1, 0 -> P = 2/3; category shares 1/2, 1/2
    # -> Pe = 1/2; kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
    codes = [[0, 0], [1, 1], [0, 1]]
    assert percent_agreement(codes, 2) == pytest.approx(2 / 3)
    assert fleiss_kappa(codes, 2) == pytest.approx(1 / 3)


def test_fleiss_kappa_reference_example():
    # Fleiss (1971) style worked example (Wikipedia): 10 items, 14 raters, 5 categories.
    counts = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    codes = np.array([np.repeat(np.arange(5), row) for row in counts])
    assert percent_agreement(codes, 5) == pytest.approx(0.378, abs=1e-3)
    assert fleiss_kappa(codes, 5) == pytest.approx(0.210, abs=1e-3)


def test_fleiss_kappa_perfect_and_undefined():
    assert fleiss_kappa([[0, 0], [1, 1]], 2) == pytest.approx(1.0)
    assert np.isnan(fleiss_kappa([[1, 1], [1, 1]], 2))


def test_agreement_reported_for_several_raters(image_dir, tmp_path):
    path = write_csv(
        tmp_path / "r.csv",
        ["filename", "a", "b"],
        [("png8.png", "0", "0"), ("png16.png", "1", "1"), ("rgb.png", "0", "1")],
    )
    data = load_image_folder(path, image_dir, label_columns=["a", "b"])
    assert data.agreement == {
        "fleiss_kappa": pytest.approx(1 / 3),
        "percent_agreement": pytest.approx(2 / 3),
        "n_raters": 2,
        "n_items": 3,
    }


# -- bad rows: nothing is dropped silently --------------------------------------
@pytest.fixture
def messy_csv(tmp_path):
    rows = [
        ("png8.png", "normal", "p1"),  # line 2: fine
        ("missing.png", "normal", "p1"),  # line 3: no such file
        ("corrupt.png", "severe", "p2"),  # line 4: not an image
        ("png16.png", "pneumonia", "p2"),  # line 5: unknown label
        ("", "normal", "p3"),  # line 6: no file name
        ("rgb.png", "", ""),  # line 7: empty label and group
        ("mono1.dcm", "severe", "p4"),  # line 8: fine
        ("corrupt.dcm", "moderate", "p5"),  # line 9: not a DICOM image
    ]
    return write_csv(tmp_path / "messy.csv", ["filename", "label", "patient"], rows)


def test_raise_lists_every_bad_row(image_dir, messy_csv):
    with pytest.raises(ValueError) as info:
        load_image_folder(messy_csv, image_dir, classes=CLASSES, group_column="patient")
    message = str(info.value)
    assert "6 of 8 rows" in message and "on_error='skip'" in message
    assert f"line 3 (missing.png): file not found: {image_dir / 'missing.png'}" in message
    assert "line 4 (corrupt.png): unreadable image" in message
    assert (
        "line 5 (png16.png): unknown label 'pneumonia' in column 'label' "
        "(classes: ['normal', 'moderate', 'severe'])"
    ) in message
    assert "line 6 (<no file name>): empty file name" in message
    assert (
        "line 7 (rgb.png): empty label in column 'label'; empty group in column 'patient'"
    ) in message
    assert "line 9 (corrupt.dcm): unreadable image" in message
    assert "line 2 " not in message and "line 8 " not in message


def test_skip_returns_the_rest_and_the_exact_skipped_list(image_dir, messy_csv):
    data = load_image_folder(
        messy_csv, image_dir, classes=CLASSES, group_column="patient", on_error="skip"
    )
    assert data.filenames.tolist() == ["png8.png", "mono1.dcm"]
    assert data.target.tolist() == ["normal", "severe"]
    assert data.groups.tolist() == ["p1", "p4"]
    np.testing.assert_allclose(data.images[1], EXPECTED["mono1.dcm"], atol=1e-6)
    assert [(line, name) for line, name, _ in data.skipped] == [
        (3, "missing.png"),
        (4, "corrupt.png"),
        (5, "png16.png"),
        (6, ""),
        (7, "rgb.png"),
        (9, "corrupt.dcm"),
    ]
    reasons = [reason for _, _, reason in data.skipped]
    assert reasons[0] == f"file not found: {image_dir / 'missing.png'}"
    assert reasons[2].startswith("unknown label 'pneumonia'")
    assert reasons[3] == "empty file name"


def test_skip_with_nothing_left_raises(image_dir, tmp_path):
    path = write_csv(tmp_path / "l.csv", ["filename", "label"], [("missing.png", "a")])
    with pytest.raises(ValueError, match="No image of .* could be loaded"):
        load_image_folder(path, image_dir, on_error="skip")


def test_non_numeric_score(image_dir, tmp_path):
    path = write_csv(
        tmp_path / "s.csv", ["filename", "score"], [("png8.png", "high"), ("png16.png", "nan")]
    )
    with pytest.raises(ValueError) as info:
        load_image_folder(path, image_dir, score_column="score", bins=[0.5])
    assert "line 2 (png8.png): score 'high' in column 'score' is not a number" in str(info.value)
    assert "line 3 (png16.png): missing score 'nan' in column 'score'" in str(info.value)


def test_empty_csv(image_dir, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv is empty"):
        load_image_folder(tmp_path / "empty.csv", image_dir)
    write_csv(tmp_path / "header.csv", ["filename", "label"], [])
    with pytest.raises(ValueError, match=r"has a header \(\['filename', 'label'\]\) but no"):
        load_image_folder(tmp_path / "header.csv", image_dir)


def test_missing_columns(image_dir, tmp_path):
    path = write_csv(tmp_path / "l.csv", ["file", "grade"], [("png8.png", "normal")])
    with pytest.raises(ValueError) as info:
        load_image_folder(path, image_dir, group_column="patient")
    assert "lacks the column(s) ['filename', 'label', 'patient']" in str(info.value)
    assert "its columns are ['file', 'grade']" in str(info.value)


def test_mixed_sizes_need_image_size(image_dir, tmp_path):
    Image.fromarray(np.zeros((3, 5), np.uint8)).save(image_dir / "wide.png")
    path = write_csv(
        tmp_path / "l.csv",
        ["filename", "label"],
        [("png8.png", "a"), ("png16.png", "a"), ("wide.png", "b")],
    )
    with pytest.raises(ValueError, match=r"different sizes.*wide.png \(3, 5\).*image_size"):
        load_image_folder(path, image_dir)
    data = load_image_folder(path, image_dir, image_size=4)
    assert data.images.shape == (3, 4, 4)
    data = load_image_folder(path, image_dir, image_size=(6, 8))
    assert data.images.shape == (3, 6, 8)


def test_parallel_and_progress_bar(image_dir, tmp_path, capsys):
    names = sorted(EXPECTED)
    path = write_csv(tmp_path / "l.csv", ["filename", "label"], [(n, "a") for n in names])
    serial = load_image_folder(path, image_dir)
    parallel = load_image_folder(path, image_dir, n_jobs=2, verbose=True)
    np.testing.assert_array_equal(serial.images, parallel.images)
    assert parallel.filenames.tolist() == names
    assert "Reading images" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"consensus": "median"}, "consensus must be one of"),
        ({"on_error": "ignore"}, "on_error must be one of"),
        ({"label_columns": "a", "score_column": "s"}, "not both"),
        ({"score_column": "s"}, "score_column needs bins"),
        ({"score_column": "s", "bins": [2, 1]}, "bins must be increasing"),
        ({"score_column": "s", "bins": [1], "classes": CLASSES}, "names the 2 bins"),
        ({"classes": ["a", "a"]}, "classes must be distinct"),
        ({"label_columns": ["a", "a"]}, "distinct column names"),
        ({"image_size": 0}, "image_size must be a positive int"),
        ({"image_size": (2, 2, 2)}, "image_size must be a positive int"),
    ],
)
def test_invalid_parameters(image_dir, tmp_path, kwargs, match):
    path = write_csv(tmp_path / "l.csv", ["filename", "label"], [("png8.png", "a")])
    with pytest.raises(ValueError, match=match):
        load_image_folder(path, image_dir, **kwargs)


# -- image paths stay inside image_dir -----------------------------------------
@pytest.fixture
def outside(tmp_path):
    """A secret image and a text file next to (not inside) image_dir."""
    Image.fromarray(PNG8).save(tmp_path / "secret.png")
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT")
    return tmp_path


@pytest.mark.parametrize(
    "name",
    [
        "../secret.png",
        "sub/../../secret.png",
        "./../secret.png",
        "..",
        "../secret.txt",
        "../does-not-exist.png",
    ],
)
def test_paths_with_dotdot_are_refused(image_dir, outside, name):
    path = write_csv(outside / "l.csv", ["filename", "label"], [("png8.png", "a"), (name, "b")])
    with pytest.raises(ValueError) as info:
        load_image_folder(path, image_dir)
    message = str(info.value)
    assert f"line 3 ({name}): path leaves image_dir" in message
    # Neither the contents nor the existence of outside files leak.
    assert "TOP-SECRET" not in message and "not found" not in message
    data = load_image_folder(path, image_dir, on_error="skip")
    assert data.filenames.tolist() == ["png8.png"]


def test_absolute_paths_are_refused_even_inside_image_dir(image_dir, outside):
    rows = [
        ("png8.png", "a"),
        (str(outside / "secret.png"), "b"),
        (str(image_dir / "png16.png"), "b"),
    ]
    path = write_csv(outside / "l.csv", ["filename", "label"], rows)
    with pytest.raises(ValueError) as info:
        load_image_folder(path, image_dir)
    message = str(info.value)
    assert "2 of 3 rows" in message
    assert message.count("absolute path; give it relative to image_dir") == 2


def test_symlinks_leaving_image_dir_are_refused(image_dir, outside):
    (image_dir / "link.png").symlink_to(outside / "secret.png")
    (image_dir / "linkdir").symlink_to(outside, target_is_directory=True)
    (image_dir / "inside_link.png").symlink_to(image_dir / "png8.png")
    (image_dir / "sub").mkdir()
    Image.fromarray(PNG16).save(image_dir / "sub" / "deep.png")
    rows = [
        ("link.png", "a"),
        ("linkdir/secret.txt", "a"),
        ("inside_link.png", "a"),
        ("sub/deep.png", "b"),
    ]
    path = write_csv(outside / "l.csv", ["filename", "label"], rows)
    data = load_image_folder(path, image_dir, on_error="skip")
    # links inside image_dir are fine; those leading out are bad rows
    assert data.filenames.tolist() == ["inside_link.png", "sub/deep.png"]
    np.testing.assert_allclose(data.images[1], EXPECTED["png16.png"], atol=1e-6)
    reasons = {name: reason for _, name, reason in data.skipped}
    assert reasons == {
        "link.png": "path leaves image_dir (through a symbolic link)",
        "linkdir/secret.txt": "path leaves image_dir (through a symbolic link)",
    }


def test_image_dir_must_be_a_folder(image_dir, tmp_path):
    path = write_csv(tmp_path / "l.csv", ["filename", "label"], [("png8.png", "a")])
    with pytest.raises(ValueError, match="image_dir .*nope is not a folder"):
        load_image_folder(path, tmp_path / "nope")


# -- duplicates leak between splits ---------------------------------------------
def test_duplicate_names_and_contents_raise(image_dir, tmp_path):
    import shutil

    shutil.copy(image_dir / "png8.png", image_dir / "copy_of_png8.png")
    (image_dir / "sub").mkdir()
    rows = [
        ("png8.png", "a"),
        ("png16.png", "b"),
        ("./png8.png", "a"),
        ("copy_of_png8.png", "b"),
        (".//png16.png", "b"),
        ("rgb.png", "a"),
    ]
    path = write_csv(tmp_path / "l.csv", ["filename", "label"], rows)
    with pytest.raises(ValueError) as info:
        load_image_folder(path, image_dir)
    message = str(info.value)
    assert "3 of 6 rows" in message
    assert "line 4 (./png8.png): same file as line 2 (png8.png)" in message
    assert "line 5 (copy_of_png8.png): same image as line 2 (png8.png)" in message
    assert "line 6 (.//png16.png): same file as line 3 (png16.png)" in message
    assert "duplicates='keep_first'" in message


def test_duplicates_keep_first(image_dir, tmp_path):
    (image_dir / "alias.png").symlink_to(image_dir / "png16.png")
    rows = [
        ("png8.png", "a"),
        ("png16.png", "b"),
        ("png8.png", "a"),
        ("alias.png", "b"),
        ("rgb.png", "a"),
    ]
    path = write_csv(tmp_path / "l.csv", ["filename", "label"], rows)
    data = load_image_folder(path, image_dir, duplicates="keep_first")
    assert data.filenames.tolist() == ["png8.png", "png16.png", "rgb.png"]
    assert data.skipped == [
        (4, "png8.png", "same file as line 2 (png8.png)"),
        (5, "alias.png", "same file as line 3 (png16.png)"),
    ]


def test_duplicate_with_other_label_is_reported(image_dir, tmp_path):
    path = write_csv(
        tmp_path / "l.csv",
        ["filename", "label"],
        [("png8.png", "a"), ("png16.png", "a"), ("png8.png", "b")],
    )
    data = load_image_folder(path, image_dir, duplicates="keep_first")
    assert data.target.tolist() == ["a", "a"]
    assert data.skipped == [(4, "png8.png", "same file as line 2 (png8.png), labelled differently")]


def test_invalid_duplicates_parameter(image_dir, tmp_path):
    path = write_csv(tmp_path / "l.csv", ["filename", "label"], [("png8.png", "a")])
    with pytest.raises(ValueError, match="duplicates must be one of"):
        load_image_folder(path, image_dir, duplicates="drop")


# -- label spelling ---------------------------------------------------------------
NAMES5 = ["png8.png", "png16.png", "rgb.png", "rgba.png", "mono2.dcm"]


def _labels_csv(tmp_path, labels, column="label"):
    return write_csv(
        tmp_path / "l.csv", ["filename", column], list(zip(NAMES5[: len(labels)], labels))
    )


def test_numeric_labels_are_numbers(image_dir, tmp_path):
    path = _labels_csv(tmp_path, ["1", "1.0", "0", " 0.0 ", "2"])
    data = load_image_folder(path, image_dir)
    assert data.classes.tolist() == [0, 1, 2]
    assert data.target.tolist() == [1, 1, 0, 0, 2]
    assert data.target.dtype.kind == "i"


def test_non_integer_numeric_labels_stay_floats(image_dir, tmp_path):
    data = load_image_folder(_labels_csv(tmp_path, ["0.5", "1", "1.0"]), image_dir)
    assert data.classes.tolist() == [0.5, 1.0]
    assert data.target.tolist() == [0.5, 1.0, 1.0]


def test_numeric_labels_match_given_classes(image_dir, tmp_path):
    path = _labels_csv(tmp_path, ["1.0", "0", "1"])
    data = load_image_folder(path, image_dir, classes=[0, 1])
    assert data.target.tolist() == [1, 0, 1]
    data = load_image_folder(path, image_dir, classes=["0", "1"])
    assert data.target.tolist() == ["1", "0", "1"]


def test_case_and_spaces_do_not_make_classes(image_dir, tmp_path):
    path = _labels_csv(tmp_path, ["Normal", "normal", " normal", "severe", "SEVERE"])
    data = load_image_folder(path, image_dir)
    # the most frequent spelling, the first one on a tie
    assert data.classes.tolist() == ["normal", "severe"]
    assert data.target.tolist() == ["normal"] * 3 + ["severe"] * 2
    data = load_image_folder(path, image_dir, classes=["Normal", "Severe"])
    assert data.target.tolist() == ["Normal"] * 3 + ["Severe"] * 2


def test_classes_distinct_ignoring_case(image_dir, tmp_path):
    path = _labels_csv(tmp_path, ["a"])
    with pytest.raises(ValueError, match="classes must be distinct"):
        load_image_folder(path, image_dir, classes=["Normal", "normal"])
    with pytest.raises(ValueError, match="classes must be distinct"):
        load_image_folder(path, image_dir, classes=[1, 1.0])


@pytest.mark.parametrize("missing", ["", "NaN", "nan", "NA", "n/a", "null", "  "])
def test_missing_labels_are_bad_rows_not_classes(image_dir, tmp_path, missing):
    path = _labels_csv(tmp_path, ["0", missing, "1"])
    with pytest.raises(ValueError) as info:
        load_image_folder(path, image_dir)
    reason = f"missing label {missing!r}" if missing.strip() else "empty label"
    assert f"line 3 (png16.png): {reason} in column 'label'" in str(info.value)
    data = load_image_folder(path, image_dir, on_error="skip")
    assert data.classes.tolist() == [0, 1] and data.target.tolist() == [0, 1]


def test_missing_word_that_is_a_class_is_kept(image_dir, tmp_path):
    path = _labels_csv(tmp_path, ["none", "mild", "None"])
    data = load_image_folder(path, image_dir, classes=["none", "mild"])
    assert data.target.tolist() == ["none", "mild", "none"]
    with pytest.raises(ValueError, match="missing label 'None'.*give classes"):
        load_image_folder(path, image_dir)


def test_missing_groups_are_bad_rows(image_dir, tmp_path):
    path = write_csv(
        tmp_path / "l.csv",
        ["filename", "label", "patient"],
        [("png8.png", "a", "p1"), ("png16.png", "b", "NaN")],
    )
    with pytest.raises(ValueError, match="line 3 .*missing group 'NaN' in column 'patient'"):
        load_image_folder(path, image_dir, group_column="patient")


def test_missing_scores_are_bad_rows(image_dir, tmp_path):
    path = _labels_csv(tmp_path, ["0.2", "NA", "0.9"], column="score")
    with pytest.raises(ValueError, match="line 3 .*missing score 'NA' in column 'score'"):
        load_image_folder(path, image_dir, score_column="score", bins=[0.5])
