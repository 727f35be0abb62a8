import numpy as np
import pytest

from skal_cxr._validation import (
    Integers,
    InvalidParameterError,
    check_image_size,
    check_images,
    check_int,
    checked_images,
    encode_labels,
    labels_1d,
    mark_checked,
)


def test_check_images_scales_integer_images():
    X = np.array([[[0, 255]]], np.uint8)
    np.testing.assert_array_equal(check_images(X), [[[[0.0, 1.0]]]])
    X16 = np.array([[[0, 65535]]], np.uint16)
    np.testing.assert_array_equal(check_images(X16), [[[[0.0, 1.0]]]])


def test_encode_labels_respects_given_order():
    codes = encode_labels(
        ["severe", "normal", "moderate", "severe"], ["normal", "moderate", "severe"]
    )
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
    import skal_cxr._image_checks as image_checks

    monkeypatch.setattr(image_checks, "_FINITE_CHECK_BLOCK", 3)
    X = np.zeros((10, 2, 2), np.float32)
    assert check_images(X).shape == (10, 1, 2, 2)
    X[8, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        check_images(X)


def test_check_int_is_check_scalar_refusing_bools():
    assert check_int(np.int64(3), "n") == 3 and type(check_int(np.int64(3), "n")) is int
    assert check_int(0, "n", 0) == 0
    for value, message in [
        (0, "n == 0, must be >= 1"),
        (2.5, "n must be an instance of int"),
        (True, "n must be an instance of int, not bool"),
        ("3", "not str"),
    ]:
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


class _Counts:
    """Counts parameter checks and full image checks (NaN scans) of skal_cxr."""

    def __init__(self, monkeypatch):
        import skal_cxr._image_checks as image_checks
        import skal_cxr._validation as validation

        self.params = self.images = 0
        real_params = validation.validate_parameter_constraints
        real_sizes = image_checks._check_same_sizes

        def params(*args, **kwargs):
            self.params += 1
            return real_params(*args, **kwargs)

        def images(*args, **kwargs):  # the first step of every full check_images
            self.images += 1
            return real_sizes(*args, **kwargs)

        monkeypatch.setattr(validation, "validate_parameter_constraints", params)
        monkeypatch.setattr(image_checks, "_check_same_sizes", images)


def _tiny_net():
    from skal_cxr import MCDropoutCNN

    return MCDropoutCNN(
        max_epochs=1,
        min_train_steps=0,
        batch_size=10,
        module__width=2,
        module__n_blocks=1,
        device="cpu",
        random_state=0,
    )


def test_fit_checks_its_parameters_and_images_once(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.random((20, 1, 8, 8), dtype=np.float32)
    y = np.arange(20) % 2
    counts = _Counts(monkeypatch)
    net = _tiny_net().fit(X, y)
    assert (counts.params, counts.images) == (1, 1)
    net.partial_fit(X, y)
    assert (counts.params, counts.images) == (2, 2)
    net.predict_proba(X)  # prediction checks its input (the same array: it may have changed)
    assert (counts.params, counts.images) == (3, 3)
    X[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.predict_proba(X)


def test_marked_images_are_not_scanned_again(monkeypatch):
    X = check_images(np.zeros((3, 4, 4), dtype=np.uint8))
    counts = _Counts(monkeypatch)
    assert mark_checked(X) is X and check_images(X) is X
    assert counts.images == 0
    other = X.copy()  # a copy is not marked
    with checked_images(other):
        assert check_images(other) is other and counts.images == 0
    check_images(other)
    assert counts.images == 1
    assert mark_checked(np.zeros((3, 4, 4))) is not None  # not (N, 1, H, W) float32: ignored
