import numpy as np
import pytest

from skal_cxr._validation import (
    Integers,
    InvalidParameterError,
    check_image_size,
    check_images,
    check_int,
    encode_labels,
    labels_1d,
)


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


def test_check_int_is_check_scalar_refusing_bools():
    assert check_int(np.int64(3), "n") == 3 and type(check_int(np.int64(3), "n")) is int
    assert check_int(0, "n", 0) == 0
    for value, message in [(0, "n == 0, must be >= 1"), (2.5, "n must be an instance of int"),
                           (True, "n must be an instance of int, not bool"), ("3", "not str")]:
        with pytest.raises(InvalidParameterError, match=message):
            check_int(value, "n")

    class Custom(ValueError):
        pass

    with pytest.raises(Custom, match="n == 1, must be >= 2"):
        check_int(1, "n", 2, error=Custom)


def test_integers_constraint_refuses_bools():
    assert Integers(1).is_satisfied_by(np.int32(1)) and not Integers(1).is_satisfied_by(True)
    assert not Integers(1).is_satisfied_by(0) and not Integers(1).is_satisfied_by(1.0)


def test_check_image_size_takes_an_int_or_a_pair():
    assert check_image_size(None) is None
    assert check_image_size(4) == (4, 4) and check_image_size([3, np.int64(5)]) == (3, 5)
    for bad in (0, True, (4,), (4, 0), (4, True), "44", 2.5):
        with pytest.raises(InvalidParameterError, match=r"^size must be a positive int"):
            check_image_size(bad, "size")


def test_labels_1d_takes_a_column():
    np.testing.assert_array_equal(labels_1d(np.array([["a"], ["b"]])), ["a", "b"])
    np.testing.assert_array_equal(labels_1d([1, 0]), [1, 0])
    with pytest.raises(KeyError, match="y must be one-dimensional; got shape"):
        labels_1d(np.zeros((2, 2)), error=KeyError)
