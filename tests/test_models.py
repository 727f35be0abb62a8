import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from torch import nn
from torch.utils.data import TensorDataset

import skal_cxr
import skal_cxr._mc_sampling as mc_sampling
from skal_cxr import CXRPreprocessor, MCDropoutCNN
from skal_cxr.models import training_epochs


@pytest.fixture
def fitted(tiny_net, toy_images):
    X, y = toy_images
    return tiny_net().fit(X, y), X, y


# -- MC sampling --------------------------------------------------------------
def test_predict_proba_samples_shape_dtype_and_simplex(fitted):
    net, X, _ = fitted
    samples = net.predict_proba_samples(X[:7], n_mc_samples=5)
    assert samples.shape == (5, 7, 3)
    assert samples.dtype == np.float32
    np.testing.assert_allclose(samples.sum(axis=-1), 1.0, rtol=1e-5)
    assert net.predict_proba_samples(X[:4]).shape == (net.n_mc_samples, 4, 3)
    # dropout is active: the samples of one image differ
    assert samples[:, 0].std(axis=0).max() > 0


def test_samples_are_reproducible_and_leave_global_rng_alone(fitted):
    net, X, _ = fitted
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = net.predict_proba_samples(X, n_mc_samples=8)
    b = net.predict_proba_samples(X, n_mc_samples=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(torch.rand(3), expected_next)


def test_unseeded_samples_differ_between_calls(fitted):
    net, X, _ = fitted
    net.set_params(random_state=None)
    a = net.predict_proba_samples(X, n_mc_samples=4)
    b = net.predict_proba_samples(X, n_mc_samples=4)
    assert not np.array_equal(a, b)


def test_fast_path_equals_naive_loop_exactly(fitted, monkeypatch):
    """The trunk/head split draws the same masks as T full forward passes."""
    net, X, _ = fitted
    net.set_params(batch_size=32)  # several batches, the last one partial
    fast = net.predict_proba_samples(X, n_mc_samples=25)
    monkeypatch.setattr(mc_sampling, "split_mc", lambda module: None)
    naive = net.predict_proba_samples(X, n_mc_samples=25)
    np.testing.assert_array_equal(fast, naive)


def test_reduce_proba_samples_matches_full_samples(fitted):
    net, X, _ = fitted
    samples = net.predict_proba_samples(X, n_mc_samples=6)
    funcs = [lambda s: s.mean(axis=0), lambda s: s.std(axis=0).mean(axis=1)]
    for chunk_size in (1, 16, 17, 1000):
        mean, spread = net.reduce_proba_samples(X, funcs, n_mc_samples=6, chunk_size=chunk_size)
        np.testing.assert_array_equal(mean, samples.mean(axis=0))
        np.testing.assert_array_equal(spread, samples.std(axis=0).mean(axis=1))
    seen = []
    net.reduce_proba_samples(X, [lambda s: seen.append(s.shape) or s[0, :, 0]], chunk_size=20)
    # the net's n_mc_samples, batches of 16 gathered to >= 20 images
    assert seen == [(net.n_mc_samples, 32, 3), (net.n_mc_samples, 28, 3)]
    with pytest.raises(ValueError, match="chunk_size == 0, must be >= 1"):
        net.reduce_proba_samples(X, funcs, chunk_size=0)


def test_dropout_zero_gives_identical_samples_equal_to_eval_output(tiny_net, toy_images):
    X, y = toy_images
    net = tiny_net(module__dropout=0.0).fit(X, y)
    samples = net.predict_proba_samples(X, n_mc_samples=6)
    np.testing.assert_allclose(samples, np.broadcast_to(samples[0], samples.shape))
    np.testing.assert_allclose(samples[0], net.predict_proba(X), rtol=1e-5, atol=1e-6)


class TwoDropoutMLP(nn.Sequential):
    """A Sequential with two dropout layers: masks are drawn in another order
    by the split path, so only the distributions can be compared."""

    def __init__(self, n_classes=3):
        super().__init__(
            nn.Flatten(),
            nn.Linear(256, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(32, 32),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(32, n_classes),
        )


def test_fast_path_matches_naive_distribution_on_sequential(toy_images, monkeypatch):
    X, y = toy_images
    net = MCDropoutCNN(TwoDropoutMLP, max_epochs=3, min_train_steps=0, random_state=0).fit(X, y)
    n = 4000
    fast = net.predict_proba_samples(X[::10], n_mc_samples=n)
    monkeypatch.setattr(mc_sampling, "split_mc", lambda module: None)
    naive = net.predict_proba_samples(X[::10], n_mc_samples=n)
    assert not np.array_equal(fast, naive)
    # per-image mean and spread agree within sampling error (5 standard errors)
    se = naive.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(fast.mean(0) - naive.mean(0)) <= 5 * se * np.sqrt(2) + 1e-6)
    np.testing.assert_allclose(fast.std(axis=0), naive.std(axis=0), rtol=0.1, atol=1e-3)


def test_mc_sampling_keeps_batchnorm_in_eval_mode(fitted):
    net, X, _ = fitted
    bn = net.module_.features[0][1]
    assert isinstance(bn, nn.BatchNorm2d)
    dropout = net.module_.head[0]
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    seen = []
    hook = net.module_.head.register_forward_hook(
        lambda *_: seen.append((bn.training, dropout.training, torch.is_grad_enabled()))
    )
    net.module_.train()  # a mode MC sampling must restore, not change
    try:
        net.predict_proba_samples(X, n_mc_samples=3)
    finally:
        hook.remove()
    assert seen and set(seen) == {(False, True, False)}
    assert net.module_.training and bn.training
    for old, new in zip(before, (bn.running_mean, bn.running_var, bn.num_batches_tracked)):
        assert torch.equal(old, new)


def test_mc_predict_returns_mean_of_samples(fitted):
    net, X, _ = fitted
    net.set_params(mc_predict=True, n_mc_samples=7)
    np.testing.assert_allclose(
        net.predict_proba(X), net.predict_proba_samples(X).mean(axis=0), rtol=1e-6
    )
    net.set_params(mc_predict=False)
    assert not np.allclose(net.predict_proba(X), net.predict_proba_samples(X).mean(axis=0))


@pytest.mark.parametrize("n_mc_samples", [0, -1, 2.5, True])
def test_bad_n_mc_samples(fitted, n_mc_samples):
    net, X, _ = fitted
    with pytest.raises(ValueError, match="n_mc_samples (==|must be)"):
        net.predict_proba_samples(X, n_mc_samples=n_mc_samples)


def test_n_samples_is_a_deprecated_alias_of_n_mc_samples(fitted):
    net, X, _ = fitted
    expected = net.predict_proba_samples(X[:4], n_mc_samples=3)
    np.testing.assert_array_equal(net.predict_proba_samples(X[:4], 3), expected)
    with pytest.warns(FutureWarning, match="renamed n_mc_samples"):
        np.testing.assert_array_equal(net.predict_proba_samples(X[:4], n_samples=3), expected)
    with pytest.warns(FutureWarning, match="renamed n_mc_samples"):
        (mean,) = net.reduce_proba_samples(X[:4], [lambda s: s.mean(axis=0)], n_samples=3)
    np.testing.assert_allclose(mean, expected.mean(axis=0))
    with pytest.raises(TypeError, match="n_mc_samples only"):
        net.predict_proba_samples(X[:4], n_mc_samples=3, n_samples=3)


def test_deprecation_versions_agree_with_the_package_version(fitted):
    """Renamed in a version already reached, removed in a later one."""
    net, X, _ = fitted
    with pytest.warns(FutureWarning) as caught:
        net.predict_proba_samples(X[:1], n_samples=2)
    message = str(caught[0].message)
    renamed = re.search(r"renamed \w+ in (\d+\.\d+)", message).group(1)
    removed = re.search(r"removed in (\d+\.\d+)", message).group(1)
    current = tuple(int(p) for p in skal_cxr.__version__.split(".")[:2])
    assert tuple(int(p) for p in renamed.split(".")) <= current
    assert tuple(int(p) for p in removed.split(".")) > current


def test_embed(fitted):
    net, X, _ = fitted
    emb = net.embed(X)
    assert emb.shape == (len(X), 4) and emb.dtype == np.float32  # module__width=4, one block
    np.testing.assert_array_equal(emb, net.embed(X))


def test_unsplittable_module_falls_back_and_cannot_embed(toy_images):
    class Wrapped(nn.Module):
        def __init__(self, n_classes=3):
            super().__init__()
            self.inner = TwoDropoutMLP(n_classes)

        def forward(self, x):
            return self.inner(x)

    X, y = toy_images
    net = MCDropoutCNN(Wrapped, max_epochs=1, min_train_steps=0, random_state=0).fit(X, y)
    assert net.predict_proba_samples(X, n_mc_samples=3).shape == (3, len(X), 3)
    with pytest.raises(TypeError, match="cannot be split"):
        net.embed(X)


# -- determinism of training ----------------------------------------------------
def test_fit_is_reproducible_with_random_state(tiny_net, toy_images):
    X, y = toy_images
    a = tiny_net().fit(X, y).predict_proba(X)
    b = tiny_net().fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = tiny_net(random_state=1).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


# -- class weights -----------------------------------------------------------
def test_balanced_class_weight_recomputed_at_every_fit(tiny_net, toy_images):
    X, y = toy_images
    net = tiny_net(class_weight="balanced", max_epochs=1)
    keep = np.r_[0:20, 20:30, 40:45]  # 20 normal, 10 moderate, 5 severe
    net.fit(X[keep], y[keep])
    # classes_ sorted: moderate, normal, severe; balanced = n / (k * count)
    np.testing.assert_allclose(net.class_weight_, [35 / 30, 35 / 60, 35 / 15])
    np.testing.assert_allclose(net.criterion_.weight.numpy(), net.class_weight_)
    net.fit(X, y)
    np.testing.assert_allclose(net.class_weight_, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(net.criterion_.weight.numpy(), [1.0, 1.0, 1.0])


def test_missing_class_with_fixed_classes(tiny_net, toy_images):
    X, y = toy_images
    classes = ["normal", "moderate", "severe"]
    net = tiny_net(classes=classes, class_weight="balanced")
    net.fit(X[:40], y[:40])  # no severe image
    np.testing.assert_allclose(net.class_weight_, [1.0, 1.0, 1.0])
    assert np.all(np.isfinite(net.class_weight_))
    proba = net.predict_proba(X)
    assert proba.shape == (60, 3)
    assert list(net.classes_) == classes
    assert set(net.predict(X)) <= set(classes)
    keep = np.r_[0:20, 20:25]  # 20 normal, 5 moderate, no severe
    net.fit(X[keep], y[keep])
    np.testing.assert_allclose(net.class_weight_, [25 / 40, 25 / 10, 1.0])


def test_dict_class_weight_follows_classes_order(tiny_net, toy_images):
    X, y = toy_images
    net = tiny_net(
        classes=["normal", "moderate", "severe"],
        class_weight={"severe": 4.0, "normal": 0.5},
        max_epochs=1,
    )
    net.fit(X, y)
    np.testing.assert_allclose(net.class_weight_, [0.5, 1.0, 4.0])
    with pytest.raises(ValueError, match="not classes: \\['mild'\\]"):
        tiny_net(class_weight={"mild": 2.0}).fit(X, y)


def test_bad_class_weight_settings(tiny_net, toy_images):
    X, y = toy_images
    with pytest.raises(ValueError, match="'class_weight' parameter of MCDropoutCNN"):
        tiny_net(class_weight="auto").fit(X, y)
    with pytest.raises(ValueError, match="either class_weight or criterion__weight"):
        tiny_net(class_weight="balanced", criterion__weight=torch.ones(3)).fit(X, y)


# -- input handling -------------------------------------------------------------
def test_equivalent_input_forms_give_identical_predictions(fitted):
    net, X, _ = fitted
    expected = net.predict_proba(X)
    np.testing.assert_array_equal(net.predict_proba(X[:, None]), expected)
    np.testing.assert_array_equal(net.predict_proba(torch.from_numpy(X)), expected)
    u8 = (np.clip(X, 0, 1) * 255).round().astype(np.uint8)
    np.testing.assert_allclose(
        net.predict_proba(u8), net.predict_proba(u8.astype(np.float32) / 255), rtol=1e-6
    )


def test_string_and_integer_labels(tiny_net, toy_images):
    X, y = toy_images
    net = tiny_net(max_epochs=1).fit(X, y)
    assert net.predict(X).dtype.kind == "U"
    assert set(net.predict(X)) <= set(y)
    codes = np.searchsorted(["moderate", "normal", "severe"], y)
    net_int = tiny_net(max_epochs=1).fit(X, codes)
    np.testing.assert_array_equal(net_int.classes_, [0, 1, 2])
    np.testing.assert_array_equal(
        net_int.predict_proba(X), net.predict_proba(X)
    )  # same codes, same seed, same network


def test_torch_dataset_input(tiny_net, toy_images):
    X, y = toy_images
    classes = ["moderate", "normal", "severe"]
    codes = np.searchsorted(classes, y)
    ds = TensorDataset(torch.from_numpy(X[:, None]), torch.from_numpy(codes))
    net = tiny_net(classes=classes, class_weight="balanced").fit(ds)
    on_arrays = tiny_net(classes=classes, class_weight="balanced").fit(X, y)
    np.testing.assert_array_equal(net.predict_proba(ds), on_arrays.predict_proba(X))
    with pytest.raises(ValueError, match="needs the `classes` parameter"):
        tiny_net().fit(ds)


@pytest.mark.parametrize(
    "X, message",
    [
        (np.zeros((4, 8)), r"must have shape \(n_images, height, width\)"),
        (np.zeros((4, 3, 8, 8)), "single-channel"),
        (np.zeros((0, 8, 8)), "is empty"),
        (np.full((4, 8, 8), np.nan), "NaN or infinity"),
        (np.full((4, 8, 8), np.inf), "NaN or infinity"),
        (np.zeros((4, 8, 8), dtype=np.int64), "dtype int64"),
        (np.zeros((4, 8, 8), dtype=object), "dtype=object"),
    ],
)
def test_bad_images_raise_clear_errors(tiny_net, X, message):
    y = np.array([0, 1, 0, 1])[: len(X)]
    with pytest.raises(ValueError, match=message):
        tiny_net().fit(X, y)


def test_bad_labels_raise_clear_errors(tiny_net, fitted):
    net, X, y = fitted
    with pytest.raises(ValueError, match="different lengths: 60 images, 59 labels"):
        tiny_net().fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"not among the classes .*\['mild'\]"):
        tiny_net(classes=["normal", "moderate", "severe"]).fit(
            X, np.where(y == "severe", "mild", y)
        )
    with pytest.raises(ValueError, match="at least 2 classes"):
        tiny_net().fit(X[:20], y[:20])
    with pytest.raises(ValueError, match=r"not among the classes .*\['mild'\]"):
        net.score(X, np.where(y == "severe", "mild", y))
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.predict(np.full((2, 16, 16), np.nan, dtype=np.float32))


def test_unfitted_estimator_raises_not_fitted(toy_images):
    X, _ = toy_images
    for method in ("predict", "predict_proba", "predict_proba_samples", "embed"):
        with pytest.raises(NotFittedError):
            getattr(MCDropoutCNN(), method)(X)


# -- scikit-learn conventions ---------------------------------------------------
def test_clone_and_params_roundtrip():
    net = MCDropoutCNN(lr=0.01, module__dropout=0.3, class_weight="balanced", random_state=3)
    params = net.get_params()
    assert params["device"] == "auto" and params["module__dropout"] == 0.3
    assert "_device_param" not in params
    twin = clone(net)
    assert twin.get_params()["module__dropout"] == 0.3
    assert twin.get_params()["device"] == "auto"
    assert twin.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert not hasattr(twin, "classes_inferred_")


def test_set_params_routes_to_module(fitted):
    net, X, y = fitted
    net.set_params(module__dropout=0.2)
    assert net.module_.head[0].p == 0.2
    net.fit(X, y)
    assert net.module_.head[0].p == 0.2


def test_pickle_roundtrip_gives_identical_predictions(fitted):
    net, X, _ = fitted
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(restored.predict_proba(X), net.predict_proba(X))
    np.testing.assert_array_equal(
        restored.predict_proba_samples(X, n_mc_samples=5),
        net.predict_proba_samples(X, n_mc_samples=5),
    )
    np.testing.assert_array_equal(restored.predict(X), net.predict(X))


def test_grid_search_over_lr_dropout_and_epochs(tiny_net, toy_images):
    X, y = toy_images
    grid = {"lr": [1e-3, 1e-2], "module__dropout": [0.2, 0.5], "max_epochs": [1, 2]}
    search = GridSearchCV(tiny_net(), grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    best = search.best_estimator_
    assert best.module_.head[0].p == search.best_params_["module__dropout"]
    assert best.max_epochs == search.best_params_["max_epochs"]
    assert 0.0 <= search.best_score_ <= 1.0


def test_cross_val_score_and_pipeline(tiny_net, toy_images):
    X, y = toy_images
    net = tiny_net(module__width=8, module__n_blocks=2)  # capacity to learn the bar
    pipe = Pipeline([("prep", CXRPreprocessor(size=12, scaling=None)), ("net", net)])
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,)
    # the bar's position encodes the class: a net that sees it learns it
    pipe.set_params(net__max_epochs=10, net__lr=1e-2).fit(X, y)
    assert pipe.score(X, y) > 0.9
    assert pipe.predict_proba(X).shape == (60, 3)


def test_warm_start_continues_training(tiny_net, toy_images):
    X, y = toy_images
    net = tiny_net(warm_start=True, max_epochs=1).fit(X, y)
    weights = net.module_.head[1].weight.detach().clone()
    net.fit(X, y)
    assert len(net.history) == 2
    assert not torch.equal(weights, net.module_.head[1].weight)
    cold = tiny_net(max_epochs=1).fit(X, y).fit(X, y)
    assert len(cold.history) == 1


@pytest.mark.parametrize(
    "n_images, batch_size, min_steps, expected",
    [
        (60, 16, 0, 2),
        (60, 16, 100, 25),
        (20, 32, 100, 100),
        (1000, 32, 100, 4),
        (4000, 32, 100, 2),
        (60, -1, 10, 10),
    ],
)
def test_min_train_steps_sets_the_epoch_count(
    tiny_net, toy_images, n_images, batch_size, min_steps, expected
):
    net = tiny_net(batch_size=batch_size, min_train_steps=min_steps)
    assert net.epochs_for(n_images) == expected
    assert training_epochs(n_images, batch_size, 2, min_steps) == expected
    if n_images == 60 and batch_size == 16:
        X, y = toy_images
        assert len(net.fit(X, y).history) == expected


def test_partial_fit_accepts_original_labels(fitted):
    net, X, y = fitted
    net.partial_fit(X, y)
    assert len(net.history) == 4  # 2 epochs of fit, 2 of partial_fit
    with pytest.raises(ValueError, match="not among the classes"):
        net.partial_fit(X, np.where(y == "severe", "mild", y))


# -- initialisation -------------------------------------------------------------
def test_an_untrained_net_is_initialised_from_its_seed(tiny_net, toy_images):
    # the k-center cold start reads an untrained network's embeddings: they
    # must follow from random_state, and leave the caller's RNG alone
    X, _ = toy_images

    def weights(net):
        return [p.detach().clone() for p in net.initialize().module_.parameters()]

    torch.manual_seed(5)
    expected_next = torch.rand(2)
    torch.manual_seed(5)
    a, b = weights(tiny_net(random_state=0)), weights(tiny_net(random_state=0))
    c = weights(tiny_net(random_state=1))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))
    np.testing.assert_array_equal(torch.rand(2), expected_next)
    unseeded = weights(tiny_net(random_state=None)), weights(tiny_net(random_state=None))
    assert not all(torch.equal(p, q) for p, q in zip(*unseeded))


def test_seeding_the_initialisation_leaves_a_fit_as_it_was(tiny_net, toy_images):
    # a fit seeds once for initialisation and training together: a second,
    # nested seeding of the initialisation would change every recorded result
    X, y = toy_images
    X, y = X[y != "severe"], y[y != "severe"]  # two classes: the unfitted net's head
    net = tiny_net(random_state=0)
    with skal_cxr._random.torch_rng(0):
        net.initialize()
        expected = [p.detach().clone() for p in net.module_.parameters()]
    fitted = tiny_net(random_state=0).fit(X, y, epochs=0)
    assert all(torch.equal(p, q) for p, q in zip(expected, fitted.module_.parameters()))
