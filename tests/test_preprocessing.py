import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone

from skal_cxr import CXRPreprocessor
from skal_cxr._validation import InvalidParameterError
from skal_cxr.datasets._image_io import read_image


def test_resize_and_minmax_per_image():
    X = np.stack([np.full((8, 8), 10, np.uint8), np.arange(64, dtype=np.uint8).reshape(8, 8)])
    Xt = CXRPreprocessor(size=4).fit_transform(X)
    assert Xt.shape == (2, 1, 4, 4) and Xt.dtype == np.float32
    np.testing.assert_array_equal(Xt[0], 0.0)  # constant image
    assert Xt[1].min() == 0.0 and Xt[1].max() == 1.0


def test_standardize_and_none():
    rng = np.random.default_rng(0)
    X = rng.normal(3, 2, (3, 1, 10, 12)).astype(np.float32)
    Xt = CXRPreprocessor(scaling="standardize").fit_transform(X)
    np.testing.assert_allclose(Xt.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(Xt.std(axis=(1, 2, 3)), 1, atol=1e-5)
    np.testing.assert_array_equal(CXRPreprocessor(scaling=None).transform(X), X)
    assert CXRPreprocessor(size=(5, 6), scaling=None).transform(X).shape == (3, 1, 5, 6)


def test_antialiased_downsampling_preserves_mean_and_structure():
    X = np.kron(np.array([[0.0, 1.0], [1.0, 0.0]], np.float32), np.ones((4, 4)))[None]
    out = CXRPreprocessor(size=2, scaling=None).transform(X.astype(np.float32))[0, 0]
    assert out[0, 0] == pytest.approx(out[1, 1]) and out[0, 1] == pytest.approx(out[1, 0])
    assert out[0, 0] < 0.5 < out[0, 1]
    assert out.mean() == pytest.approx(0.5)
    flat = CXRPreprocessor(size=3, scaling=None).transform(np.full((1, 9, 9), 0.3, np.float32))
    np.testing.assert_allclose(flat, 0.3, rtol=1e-6)


def test_resize_known_answer_antialiased_bilinear():
    """Shrinking 4 columns to 2 weighs the input columns 3:3:1 and 1:3:3 (filter width 2)."""
    X = np.tile(np.array([0.0, 0.1, 0.2, 0.3], np.float32), (1, 4, 1))
    out = CXRPreprocessor(size=(4, 2), scaling=None).transform(X)[0, 0]
    np.testing.assert_allclose(out, np.tile([0.5 / 7, 1.6 / 7], (4, 1)), rtol=1e-6)


@pytest.mark.parametrize("size", [(16, 16), (64, 80), (37, 20)])
def test_training_images_and_preprocessor_give_identical_pixels(tmp_path, size):
    """The datasets' reader and CXRPreprocessor resize with the one resizer."""
    image = np.random.default_rng(0).integers(0, 256, (37, 53), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    read = read_image(tmp_path / "a.png", image_size=size)
    prepared = CXRPreprocessor(size=size, scaling=None).transform(image[None])[0, 0]
    assert read.dtype == prepared.dtype == np.float32
    np.testing.assert_array_equal(read, prepared)


@pytest.mark.parametrize("method", ["fit", "transform"])
@pytest.mark.parametrize(
    "param, value",
    [
        ("size", 0),
        ("size", -3),
        ("size", 2.5),
        ("size", True),
        ("size", "4"),
        ("size", (2, 2, 2)),
        ("size", (4, 0)),
        ("size", (4, 2.5)),
        ("scaling", "zscore"),
        ("scaling", 1),
    ],
)
def test_bad_params(param, value, method):
    prep = CXRPreprocessor(**{param: value})
    with pytest.raises(InvalidParameterError, match=rf"(?:'{param}' parameter|^{param}) "):
        getattr(prep, method)(np.zeros((1, 4, 4), np.float32))


@pytest.mark.parametrize(
    "params, shape",
    [
        ({"size": 1}, (1, 1)),
        ({"size": np.int64(2)}, (2, 2)),
        ({"size": [3, 1]}, (3, 1)),
        ({"size": np.array([1, 2])}, (1, 2)),
        ({"scaling": None}, (4, 4)),
        ({"scaling": "standardize"}, (4, 4)),
    ],
)
def test_edge_params_are_valid(params, shape):
    out = CXRPreprocessor(**params).fit_transform(np.ones((2, 4, 4), np.float32))
    assert out.shape == (2, 1) + shape


def test_clone_and_no_fitting_needed():
    prep = CXRPreprocessor(size=3)
    assert clone(prep).get_params() == {"size": 3, "scaling": "minmax"}
    assert prep.transform(np.ones((1, 6, 6), np.float32)).shape == (1, 1, 3, 3)
