import numpy as np
import pytest

from skal_cxr._validation import check_images, encode_labels


def test_check_images_scales_integer_images():
    X = np.array([[[0, 255]]], np.uint8)
    np.testing.assert_array_equal(check_images(X), [[[[0.0, 1.0]]]])
    X16 = np.array([[[0, 65535]]], np.uint16)
    np.testing.assert_array_equal(check_images(X16), [[[[0.0, 1.0]]]])


def test_encode_labels_respects_given_order():
    codes = encode_labels(["severe", "normal", "moderate", "severe"],
                          ["normal", "moderate", "severe"])
    np.testing.assert_array_equal(codes, [2, 0, 1, 2])
    np.testing.assert_array_equal(encode_labels(np.array([[3], [1]]), [1, 3]), [1, 0])


def test_encode_labels_errors():
    with pytest.raises(ValueError, match=r"not among the classes \[0, 1\]: \[2\]"):
        encode_labels([0, 2], [0, 1])
    with pytest.raises(ValueError, match="one-dimensional"):
        encode_labels(np.zeros((2, 2)), [0, 1])
    with pytest.raises(ValueError, match="not among the classes"):
        encode_labels(["a"], [0, 1])


def test_nan_found_beyond_the_first_block(monkeypatch):
    import skal_cxr._validation as validation

    monkeypatch.setattr(validation, "_FINITE_CHECK_BLOCK", 3)
    X = np.zeros((10, 2, 2), np.float32)
    assert check_images(X).shape == (10, 1, 2, 2)
    X[8, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        check_images(X)
