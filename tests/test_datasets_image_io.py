"""Tests of skal_cxr.datasets._image_io: images that decode wrong or too big are refused."""

import os
import threading

import numpy as np
import pytest
from PIL import Image

from skal_cxr.datasets import build_image_cache, image_limits, load_image_folder
from skal_cxr.datasets._image_io import max_image_pixels, read_dicom, read_image


def _palette(values):
    """Descriptor and data of one 16-bit palette channel."""
    return [len(values), 0, 16], np.asarray(values, dtype="<u2").tobytes()


def test_palette_color_dicom_is_shown_through_its_palette(tmp_path, write_dicom):
    # indices 0..3 map to white .. black: read as indices the image would be inverted
    descriptor, data = _palette([65535, 40000, 20000, 0])
    attrs = {}
    for colour in ("Red", "Green", "Blue"):
        attrs[f"{colour}PaletteColorLookupTableDescriptor"] = descriptor
        attrs[f"{colour}PaletteColorLookupTableData"] = data
    path = write_dicom(
        tmp_path / "p.dcm", [[0, 1], [2, 3]], photometric="PALETTE COLOR", bits_stored=8, **attrs
    )
    image = read_image(path)
    np.testing.assert_allclose(image, [[1.0, 40000 / 65535], [20000 / 65535, 0.0]], atol=1e-6)


def test_a_zero_rescale_slope_is_refused_naming_the_file(tmp_path, write_dicom):
    path = write_dicom(
        tmp_path / "flat.dcm", [[0, 50], [75, 150]], RescaleSlope=0, RescaleIntercept=0
    )
    with pytest.raises(ValueError, match=r"flat\.dcm: RescaleSlope is 0") as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_the_pixel_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(path)
    monkeypatch.setenv("SKAL_CXR_MAX_PIXELS", "1999")
    loaded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(1))
    with pytest.raises(
        ValueError,
        match=r"big\.png: 50 x 40 pixels is more than the limit "
        r"of 1,999 pixels",
    ):
        read_image(path)
    assert loaded == []  # refused from the header
    monkeypatch.undo()
    monkeypatch.setenv("SKAL_CXR_MAX_PIXELS", "2000")
    assert read_image(path).shape == (40, 50)


def test_the_pixel_limit_of_dicom_is_rows_times_columns(tmp_path, write_dicom, monkeypatch):
    path = write_dicom(tmp_path / "big.dcm", np.zeros((30, 40)))
    monkeypatch.setenv("SKAL_CXR_MAX_PIXELS", "1000")
    with pytest.raises(ValueError, match=r"big\.dcm: 40 x 30 pixels"):
        read_image(path)


def test_default_pixel_limit_refuses_a_13000_square_png(tmp_path, monkeypatch):
    monkeypatch.delenv("SKAL_CXR_MAX_PIXELS", raising=False)
    assert max_image_pixels() == 50_000_000
    path = tmp_path / "huge.png"
    Image.new("L", (13000, 13000)).save(path, optimize=False)
    with pytest.raises(ValueError, match="13000 x 13000 pixels is more than the limit"):
        read_image(path)


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_pixel_limit_is_refused(monkeypatch, value):
    monkeypatch.setenv("SKAL_CXR_MAX_PIXELS", value)
    with pytest.raises(ValueError, match="SKAL_CXR_MAX_PIXELS"):
        max_image_pixels()


def _png(path, shape=(40, 50), value=0):
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)
    return path


def test_max_pixels_is_an_argument_of_every_decoder(tmp_path, write_dicom, monkeypatch):
    monkeypatch.delenv("SKAL_CXR_MAX_PIXELS", raising=False)
    png = _png(tmp_path / "big.png")
    dcm = write_dicom(tmp_path / "big.dcm", np.zeros((30, 40)))
    with pytest.raises(ValueError, match="more than the limit of 1,999 pixels"):
        read_image(png, max_pixels=1999)
    assert read_image(png, max_pixels=2000).shape == (40, 50)
    with pytest.raises(ValueError, match=r"big\.dcm: 40 x 30 pixels"):
        read_dicom(dcm, max_pixels=1000)
    assert read_dicom(dcm, max_pixels=1200).shape == (30, 40)


def test_image_limits_sets_the_limit_inside_the_block_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SKAL_CXR_MAX_PIXELS", "5000")  # the documented default
    png = _png(tmp_path / "big.png")
    assert max_image_pixels() == 5000
    with image_limits(max_pixels=1000) as limit:
        assert limit == 1000 and max_image_pixels() == 1000
        with pytest.raises(ValueError, match="limit of 1,000 pixels"):
            read_image(png)
        with image_limits(max_pixels=3000):
            assert max_image_pixels() == 3000
        with image_limits():  # None keeps the current limit
            assert max_image_pixels() == 1000
        assert read_image(png, max_pixels=2000).shape == (40, 50)  # the argument wins
    assert max_image_pixels() == 5000
    assert os.environ["SKAL_CXR_MAX_PIXELS"] == "5000"  # never written


def test_image_limits_is_per_thread(monkeypatch):
    monkeypatch.delenv("SKAL_CXR_MAX_PIXELS", raising=False)
    seen = []
    with image_limits(max_pixels=1000):
        thread = threading.Thread(target=lambda: seen.append(max_image_pixels()))
        thread.start()
        thread.join()
    assert seen == [50_000_000]  # another thread keeps its own setting


def test_image_limits_reaches_the_reading_threads(tmp_path, monkeypatch):
    # load_image_folder reads in worker threads: the caller's limit is passed to them
    monkeypatch.delenv("SKAL_CXR_MAX_PIXELS", raising=False)
    for value, name in enumerate(("a.png", "b.png")):
        _png(tmp_path / name, value=value)
    csv = tmp_path / "labels.csv"
    csv.write_text("filename,label\na.png,0\nb.png,1\n")
    assert load_image_folder(csv, tmp_path, n_jobs=2).images.shape[0] == 2
    with image_limits(max_pixels=1000), pytest.raises(ValueError, match="more than the limit"):
        load_image_folder(csv, tmp_path, n_jobs=2)


@pytest.mark.parametrize("value", [0, -3, "many", 2.5])
def test_a_bad_image_limit_is_refused(value):
    with pytest.raises(ValueError, match="max_pixels"), image_limits(max_pixels=value):
        pass


def test_image_limits_reaches_the_cache_threads(tmp_path, monkeypatch):
    monkeypatch.delenv("SKAL_CXR_MAX_PIXELS", raising=False)
    paths = [_png(tmp_path / f"{k}.png", value=k) for k in range(4)]
    with image_limits(max_pixels=1000):
        cache = build_image_cache(paths, tmp_path / "cache", 8, n_jobs=2, chunk_size=1)
    assert all("more than the limit of 1,000 pixels" in e["error"] for e in cache.index)
    fresh = build_image_cache(paths, tmp_path / "fresh", 8, n_jobs=2, chunk_size=1)
    assert all(e["error"] is None for e in fresh.index)
