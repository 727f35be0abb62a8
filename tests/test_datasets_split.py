import numpy as np
import pytest

from skal_cxr.datasets import patient_train_test_split


@pytest.fixture
def patients():
    """200 images of 60 patients with 1 to 6 images each, 3 imbalanced classes."""
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 7, 60)
    groups = np.repeat(np.arange(60), sizes)[:200]
    groups = np.concatenate([groups, np.arange(60, 60 + 200 - len(groups))])
    patient_class = rng.choice(3, size=groups.max() + 1, p=[0.6, 0.3, 0.1])
    y = patient_class[groups]
    X = rng.random((len(groups), 4, 4)).astype(np.float32)
    return X, y, groups


@pytest.mark.parametrize("stratify", [False, True])
@pytest.mark.parametrize("test_size", [0.2, 0.25, 0.5])
def test_no_patient_in_both_parts(patients, stratify, test_size):
    X, y, groups = patients
    X_tr, X_te, y_tr, y_te, g_tr, g_te = patient_train_test_split(
        X,
        y,
        groups,
        groups=groups,
        test_size=test_size,
        stratify=y if stratify else None,
        random_state=0,
    )
    assert not set(g_tr) & set(g_te)
    assert len(X_tr) + len(X_te) == len(X) and len(y_te) == len(X_te)
    assert abs(len(X_te) / len(X) - test_size) < 0.1
    # Rows stay aligned across arrays.
    index = {id_: i for i, id_ in enumerate(map(bytes, X))}
    rows = [index[bytes(x)] for x in X_te]
    np.testing.assert_array_equal(y[rows], y_te)
    np.testing.assert_array_equal(groups[rows], g_te)


def test_stratified_split_keeps_class_proportions(patients):
    _, y, groups = patients
    _, y_te = patient_train_test_split(y, groups=groups, stratify=y, random_state=0)
    overall = np.bincount(y, minlength=3) / len(y)
    assert np.allclose(np.bincount(y_te, minlength=3) / len(y_te), overall, atol=0.06)


@pytest.mark.parametrize("stratify", [False, True])
def test_deterministic_with_random_state(patients, stratify):
    _, y, groups = patients
    kw = dict(groups=groups, stratify=y if stratify else None)
    a = patient_train_test_split(**kw, random_state=1)
    b = patient_train_test_split(**kw, random_state=1)
    c = patient_train_test_split(**kw, random_state=2)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_without_arrays_returns_sorted_indices(patients):
    _, _, groups = patients
    train, test = patient_train_test_split(groups=groups, random_state=0)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(groups)))


def test_lists_stay_lists():
    a_train, a_test = patient_train_test_split(
        list("abcdef"), groups=[1, 1, 2, 2, 3, 3], test_size=0.3, random_state=0
    )
    assert isinstance(a_train, list) and len(a_test) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"test_size": 0}, "test_size must be a float in"),
        ({"test_size": 1.0}, "test_size must be a float in"),
        ({"test_size": 3}, "test_size must be a float in"),
        ({"groups": [1, 1, 1, 1]}, "at least 2 groups"),
        ({"groups": [1, 2, 3]}, "inconsistent numbers of samples"),
        ({"stratify": [0, 1, 0, 1], "test_size": 0.1}, "needs 10 folds but there are only 2"),
    ],
)
def test_invalid_input(kwargs, match):
    kwargs = {"groups": [1, 1, 2, 2], **kwargs}
    with pytest.raises(ValueError, match=match):
        patient_train_test_split(np.arange(4), **kwargs)
