"""Pairwise and per-class agreement between raters, and the disagreement rule."""

import warnings

import numpy as np
import pytest

from skal_cxr.datasets._agreement import disagrees, pairwise_agreement, specific_agreement


@pytest.mark.parametrize(
    "codes,min_spread,expected",
    [
        ([0, 0], 1, False),
        ([0, 1], 1, True),
        ([2], 1, False),
        ([], 1, False),
        ([0, 1], 2, False),
        ([0, 2, 1], 2, True),
        ([3, 1, 1], 3, False),
    ],
)
def test_disagrees_by_ordinal_spread(codes, min_spread, expected):
    assert disagrees(codes, min_spread) is expected


def test_specific_agreement_matches_the_two_rater_formula():
    # two raters: class 0 has a = 1 agreeing pair, b + c = 1 -> 2a / (2a + b + c) = 2/3;
    # class 1: a = 2, b + c = 1 -> 4/5; class 2 unused -> NaN; the single rating is left out
    got = specific_agreement([[0, 0], [0, 1], [1, 1], [1, 1], [2]], 4)
    np.testing.assert_allclose(got[:2], [2 / 3, 4 / 5])
    assert np.isnan(got[3])
    # three raters on one item: two say 1 (2 agreeing ordered pairs of 2 x 2 possible)
    np.testing.assert_allclose(specific_agreement([[1, 1, 0]], 2), [0.0, 0.5])


def test_pairwise_agreement_kappa_and_confusion():
    ratings = {
        "i1": {"a": 0, "b": 0},
        "i2": {"a": 0, "b": 1},
        "i3": {"a": 1, "b": 1, "c": 1},
        "i4": {"a": 1, "b": 1, "c": 1},
    }
    pairs = pairwise_agreement(ratings, 3)
    assert [p["raters"] for p in pairs] == [["a", "b"], ["a", "c"], ["b", "c"]]
    ab = pairs[0]
    # po = 3/4, pe = 1/2 * 1/4 + 1/2 * 3/4 = 1/2 -> kappa = (3/4 - 1/2) / (1/2) = 1/2
    assert ab["n_items"] == 4 and ab["agreement"] == 0.75
    assert ab["kappa"] == pytest.approx(0.5)
    assert ab["confusion"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert ab["kappa_quadratic"] == pytest.approx(0.5)  # two categories: same as unweighted
    for pair in pairs[1:]:  # c used one category only: kappa is undefined
        assert pair["n_items"] == 2 and pair["agreement"] == 1.0 and pair["kappa"] is None


@pytest.mark.parametrize("seed", range(6))
def test_pairwise_agreement_equals_scikit_learns_kappa_and_confusion(seed):
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    rng = np.random.default_rng(seed)
    n_categories = int(rng.integers(2, 5))
    raters = ["a", "b", "c"]
    ratings = {
        i: {r: int(rng.integers(n_categories)) for r in raters if rng.random() < 0.8}
        for i in range(int(rng.integers(3, 40)))
    }
    ratings[-1] = {"a": 0, "b": 0, "c": 0}  # every pair rates something in common
    for pair in pairwise_agreement(ratings, n_categories):
        a, b = pair["raters"]
        ya = [v[a] for v in ratings.values() if a in v and b in v]
        yb = [v[b] for v in ratings.values() if a in v and b in v]
        labels = list(range(n_categories))
        assert pair["confusion"] == confusion_matrix(ya, yb, labels=labels).tolist()
        for key, weights in (("kappa", None), ("kappa_quadratic", "quadratic")):
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = cohen_kappa_score(ya, yb, labels=labels, weights=weights)
            if np.isfinite(expected):
                assert pair[key] == pytest.approx(expected, abs=1e-12)
            else:
                assert pair[key] is None


def test_pairwise_agreement_quadratic_weights_spare_near_misses():
    # a and b differ by one step everywhere, a and c by two: quadratic kappa tells them apart
    a = [0, 1, 2, 0, 1, 2]
    ratings = {
        i: {"a": a[i], "b": min(a[i] + 1, 2) if i % 2 else a[i], "c": 2 - a[i]} for i in range(6)
    }
    pairs = {tuple(p["raters"]): p for p in pairwise_agreement(ratings, 3)}
    assert pairs[("a", "b")]["kappa_quadratic"] > pairs[("a", "c")]["kappa_quadratic"]
    assert pairs[("a", "c")]["kappa_quadratic"] < 0
