"""Known answers of the paired statistics (skal_cxr/report/_paired.py)."""

import numpy as np
import pytest
from scipy import stats

from skal_cxr.report import (
    bootstrap_ci,
    holm,
    paired_by_seed,
    paired_comparison,
    paired_tests,
    with_holm,
)

A = np.array([0.81, 0.84, 0.79, 0.88, 0.86, 0.83, 0.90])
B = np.array([0.80, 0.82, 0.80, 0.84, 0.83, 0.80, 0.85])


def test_ordinary_inputs_match_scipy():
    out = paired_tests(A, B)
    d = A - B
    assert out["n"] == 7
    assert out["mean_a"] == pytest.approx(A.mean()) and out["mean_b"] == pytest.approx(B.mean())
    assert out["diff"] == pytest.approx(d.mean())
    assert out["p_t"] == pytest.approx(stats.ttest_rel(A, B).pvalue)
    assert out["p_wilcoxon"] == pytest.approx(stats.wilcoxon(d, method="exact").pvalue)
    lo, hi = out["ci"]
    assert d.min() <= lo < d.mean() < hi <= d.max()


def test_wilcoxon_is_exact_and_drops_zero_differences():
    # 3 positive differences (one zero left out): exact two-sided p = 2 / 2**3
    out = paired_tests([1.0, 2.0, 3.5, 4.0], [0.0, 0.0, 0.0, 4.0])
    assert out["p_wilcoxon"] == pytest.approx(0.25)
    # 5 positive: 2 / 2**5; 6 positive: the first below 0.05
    assert paired_tests(np.arange(1.0, 6.0), np.zeros(5))["p_wilcoxon"] == pytest.approx(0.0625)
    assert paired_tests(np.arange(1.0, 7.0), np.zeros(6))["p_wilcoxon"] == pytest.approx(2 / 64)


def test_every_difference_zero_has_one_answer():
    out = paired_tests([0.8, 0.9, 0.7], [0.8, 0.9, 0.7])
    assert out["p_t"] == 1.0 and out["p_wilcoxon"] == 1.0
    assert out["diff"] == 0.0 and out["ci"] == [0.0, 0.0] and out["n"] == 3
    # the report's view gives the same answer
    report = paired_comparison([0.8, 0.9, 0.7], [0.8, 0.9, 0.7])
    assert report == {"mean_diff": 0.0, "n": 3, "p_wilcoxon": 1.0, "p_ttest": 1.0}


def test_undefined_t_test_is_nan():
    one = paired_tests([1.0], [0.0])
    assert np.isnan(one["p_t"]) and one["p_wilcoxon"] == pytest.approx(1.0)
    constant = paired_tests([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])  # every difference 1
    assert np.isnan(constant["p_t"]) and constant["ci"] == [1.0, 1.0]
    empty = paired_tests([], [])
    assert empty["n"] == 0 and np.isnan(empty["diff"]) and np.isnan(empty["p_wilcoxon"])


def test_bootstrap_is_reproducible():
    assert paired_tests(A, B)["ci"] == paired_tests(A, B)["ci"]
    assert paired_tests(A, B, random_state=1)["ci"] != paired_tests(A, B)["ci"]


def test_paired_by_seed_pairs_common_seeds_in_order():
    a = {2: 0.9, 0: 0.7, 1: 0.8, 5: 0.1}
    b = {0: 0.6, 1: 0.8, 2: 0.7}
    out = paired_by_seed(a, b)
    assert out["n"] == 3
    assert out["diff"] == pytest.approx((0.1 + 0.0 + 0.2) / 3)
    assert out["p_t"] == pytest.approx(stats.ttest_rel([0.7, 0.8, 0.9], [0.6, 0.8, 0.7]).pvalue)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3 * 0.01, 2 * 0.02, max(0.04, 0.04)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1
    # sorted 0.001, 0.03, 0.02 -> 4 * 0.001, 3 * 0.02 = 0.06, max(0.06, 2 * 0.03), 0.2
    np.testing.assert_allclose(holm([0.03, 0.2, 0.001, 0.02]), [0.06, 0.2, 0.004, 0.06])
    assert holm([]) == []


def test_holm_keeps_nan():
    out = holm([0.01, float("nan")])
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1])


def test_with_holm_adds_the_adjusted_values():
    results = {"x": {"p_t": 0.04}, "y": {"p_t": 0.01}, "z": {"p_t": 0.02}}
    assert with_holm(results) is results
    assert [r["p_t_holm"] for r in results.values()] == pytest.approx([0.04, 0.03, 0.04])
    with_holm(results, key="p_t_holm")
    assert "p_t_holm_holm" in results["x"]


def test_bootstrap_ci_known_answers():
    assert bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    values = [1.0, 2.0, 6.0, 3.0]
    lo, hi = bootstrap_ci(values, n_boot=2000)
    assert 1.0 <= lo < np.mean(values) < hi <= 6.0
    # the same resamples as a plain percentile bootstrap of the mean
    boot = np.random.default_rng(0).choice(values, (2000, 4)).mean(axis=1)
    assert (lo, hi) == (np.percentile(boot, 2.5), np.percentile(boot, 97.5))
    assert list(bootstrap_ci(A - B)) == paired_tests(A, B)["ci"]
