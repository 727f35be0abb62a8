import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from skal_cxr import MCDropoutCNN
from skal_cxr.datasets import PHANTOM_CLASS_NAMES, make_cxr_phantoms


def true_class(severity, n_classes):
    return np.digitize(severity, np.arange(1, n_classes) / n_classes)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_shapes_dtypes_and_range(n_classes):
    X, y, severity = make_cxr_phantoms(
        50, image_size=24, n_classes=n_classes, random_state=0, return_severity=True
    )
    assert X.shape == (50, 24, 24) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert y.shape == (50,) and y.dtype == np.int64
    assert set(np.unique(y)) <= set(range(n_classes))
    assert severity.shape == (50,) and np.all((0 <= severity) & (severity <= 1))
    assert len(PHANTOM_CLASS_NAMES[n_classes]) == n_classes


def test_returns_two_arrays_by_default():
    assert len(make_cxr_phantoms(5, image_size=16, random_state=0)) == 2


@pytest.mark.parametrize(
    "n_classes, weights, n, expected",
    [
        (3, None, 1000, [600, 300, 100]),
        (2, None, 1000, [700, 300]),
        (3, (1, 1, 1), 10, [4, 3, 3]),
        (2, (0.5, 0.5), 7, [4, 3]),
    ],
)
def test_true_class_counts_match_weights_exactly(n_classes, weights, n, expected):
    _, _, severity = make_cxr_phantoms(
        n,
        image_size=16,
        n_classes=n_classes,
        weights=weights,
        random_state=0,
        return_severity=True,
    )
    counts = np.bincount(true_class(severity, n_classes), minlength=n_classes)
    assert counts.tolist() == expected


def test_deterministic_for_an_int_seed():
    a = make_cxr_phantoms(30, image_size=32, random_state=3, return_severity=True)
    b = make_cxr_phantoms(30, image_size=32, random_state=3, return_severity=True)
    c = make_cxr_phantoms(30, image_size=32, random_state=4, return_severity=True)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("label_noise", [0.0, 0.05, 0.2])
def test_label_noise_flips_exact_fraction_to_adjacent_class(n_classes, label_noise):
    _, y, severity = make_cxr_phantoms(
        400,
        image_size=16,
        n_classes=n_classes,
        label_noise=label_noise,
        random_state=1,
        return_severity=True,
    )
    y_true = true_class(severity, n_classes)
    flipped = y != y_true
    assert flipped.sum() == round(label_noise * 400)
    assert np.all(np.abs(y - y_true)[flipped] == 1)


def test_severity_grows_with_class_and_brightens_lungs():
    X, y, severity = make_cxr_phantoms(
        600,
        image_size=32,
        weights=(1, 1, 1),
        label_noise=0.0,
        random_state=0,
        return_severity=True,
    )
    for c in range(3):  # severity lies inside its class interval
        s = severity[y == c]
        assert np.all((c / 3 <= s) & (s < (c + 1) / 3))
    mean_severity = [severity[y == c].mean() for c in range(3)]
    mean_intensity = [X[y == c].mean() for c in range(3)]
    assert np.all(np.diff(mean_severity) > 0)
    assert np.all(np.diff(mean_intensity) > 0)  # opacities add density


def test_mean_severity_by_noisy_label_is_monotone():
    _, y, severity = make_cxr_phantoms(600, image_size=16, random_state=0, return_severity=True)
    assert np.all(np.diff([severity[y == c].mean() for c in range(3)]) > 0)


@pytest.mark.slow
def test_learnable_but_not_trivial():
    # A small CNN learns the phantoms well above chance (1/3) in a few epochs,
    # yet ambiguity near class boundaries and label noise keep it below 100%.
    X, y = make_cxr_phantoms(900, image_size=32, weights=(1, 1, 1), random_state=0)
    net = MCDropoutCNN(max_epochs=5, random_state=0, device="cpu")
    net.fit(X[:600], y[:600])
    score = balanced_accuracy_score(y[600:], net.predict(X[600:]))
    assert 0.55 < score < 0.95


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples == 0, must be >= 1"),
        ({"n_samples": 2.5}, "n_samples must be an instance of int, not float"),
        ({"image_size": 8}, "image_size == 8, must be >= 16"),
        ({"n_classes": 4}, "n_classes must be 2 or 3"),
        ({"weights": (0.5, 0.5)}, "weights must hold 3 finite proportions"),
        ({"weights": (1, -1, 1)}, "non-negative"),
        ({"label_noise": 1.5}, "label_noise must be a float in"),
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_cxr_phantoms(**{"n_samples": 10, **kwargs})


def test_simulated_raters_disagree_near_class_boundaries():
    X, y, ratings, severity = make_cxr_phantoms(
        1500, image_size=16, n_raters=5, random_state=0, return_severity=True
    )
    assert ratings.shape == (1500, 5) and ratings.min() >= 0 and ratings.max() <= 2
    # y is the majority vote of the raters, ties to the more severe class
    votes = np.stack([(ratings == k).sum(axis=1) for k in range(3)], axis=1)
    assert np.all(votes[np.arange(1500), y] == votes.max(axis=1))
    disagree = (ratings != ratings[:, :1]).any(axis=1)
    distance = np.abs(severity[:, None] - np.array([1 / 3, 2 / 3])[None, :]).min(axis=1)
    near, far = distance < 0.05, distance > 0.15
    assert disagree[near].mean() > 0.5 and disagree[far].mean() < 0.05
    # the same images as without raters apart from the labels' noise model
    X0, _ = make_cxr_phantoms(1500, image_size=16, label_noise=0.0, random_state=0)
    np.testing.assert_array_equal(X, X0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_raters": 1}, "n_raters == 1, must be >= 2"),
        ({"n_raters": 3, "label_noise": 0.1}, "exclude each other"),
        ({"n_raters": 3, "rater_noise": -1}, "rater_noise"),
    ],
)
def test_rater_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_cxr_phantoms(10, image_size=16, **kwargs)
