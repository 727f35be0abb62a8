"""MCDropoutHead: exact MC sampling, class weights, and scikit-learn's checks."""

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from skal_cxr._random import batch_seed, torch_seed_from
from skal_cxr.heads import PREDICT_BATCH, MCDropoutHead, class_weights, head_network


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    X = rng.normal(size=(60, 5)).astype(np.float32) + 3 * np.eye(5, dtype=np.float32)[y]
    return X, y


def _naive(head, X, n_mc_samples):
    """T forward passes of the whole head with dropout on, seeded per block as documented."""
    seed = torch_seed_from(head.random_state)
    module = head.module_
    module.train()
    out = []
    with torch.no_grad():
        for b, start in enumerate(range(0, len(X), PREDICT_BATCH)):
            torch.manual_seed(batch_seed(seed, b))
            z = torch.from_numpy(X[start : start + PREDICT_BATCH])
            out.append(
                torch.stack([torch.softmax(module(z), 1) for _ in range(n_mc_samples)]).numpy()
            )
    module.eval()
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("input_dropout", [0.0, 0.3])
def test_samples_equal_a_naive_loop_of_forward_passes(blobs, input_dropout):
    X, y = blobs
    head = MCDropoutHead(n_steps=20, input_dropout=input_dropout, random_state=0).fit(X, y)
    pool = np.random.default_rng(1).normal(size=(PREDICT_BATCH + 300, 5)).astype(np.float32)
    samples = head.predict_proba_samples(pool, n_mc_samples=7)
    assert samples.shape == (7, len(pool), 3) and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, _naive(head, pool, 7))
    assert not np.array_equal(samples[0], samples[1])  # dropout is on
    np.testing.assert_array_equal(samples, head.predict_proba_samples(pool, 7))  # seeded


def test_sampling_leaves_the_global_rng_alone(blobs):
    X, y = blobs
    head = MCDropoutHead(n_steps=5, random_state=0).fit(X, y)
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    head.predict_proba_samples(X)
    assert torch.equal(torch.rand(2), expected)


def test_unseeded_samples_differ(blobs):
    X, y = blobs
    head = MCDropoutHead(n_steps=5).fit(X, y)
    assert not np.array_equal(head.predict_proba_samples(X, 3), head.predict_proba_samples(X, 3))


def test_predict_proba_is_dropout_off_or_the_mc_mean(blobs):
    X, y = blobs
    head = MCDropoutHead(n_steps=200, random_state=0).fit(X, y)
    with torch.no_grad():
        expected = torch.softmax(head.module_.eval()(torch.from_numpy(X)), 1).numpy()
    np.testing.assert_allclose(head.predict_proba(X), expected, rtol=1e-6)
    assert head.score(X, y) > 0.9
    head.set_params(mc_predict=True, n_mc_samples=4)
    np.testing.assert_allclose(
        head.predict_proba(X), head.predict_proba_samples(X, 4).mean(axis=0), rtol=1e-6
    )


def test_class_weights_and_fixed_classes():
    codes = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(class_weights("balanced", codes, 3), [4 / 6, 2.0, 1.0])
    assert class_weights(None, codes, 2) is None
    X = np.r_[np.zeros((3, 2)), np.ones((1, 2))].astype(np.float32)
    head = MCDropoutHead(n_steps=2, classes=["a", "b", "c"], class_weight="balanced")
    head.fit(X, ["a", "a", "a", "b"])
    assert head.classes_.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(head.class_weight_, [4 / 6, 2.0, 1.0])
    assert head.predict_proba_samples(X, 2).shape == (2, 4, 3)
    head.set_params(class_weight={"b": 5.0}).fit(X, ["a", "a", "a", "b"])
    np.testing.assert_allclose(head.class_weight_, [1.0, 5.0, 1.0])
    with pytest.raises(ValueError, match="not among classes"):
        head.fit(X, ["a", "a", "z", "b"])


def test_head_network_layers():
    net = head_network(4, 2, hidden_units=3, dropout=0.5, input_dropout=0.2)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [type(m).__name__ for m in head_network(4, 2)][0] == "Linear"


# ``n_steps=50`` keeps the checks quick; the defaults are checked as constructed
@parametrize_with_checks([MCDropoutHead(n_steps=50, random_state=0)])
def test_sklearn_checks_mc_dropout_head(estimator, check):
    check(estimator)
