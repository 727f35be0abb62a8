"""skal_cxr.ActiveLearner: modAL interface, clone safety, history, real data."""

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skal_cxr import ActiveLearner, CXRPreprocessor, MCDropoutCNN
from skal_cxr._validation import InvalidParameterError
from skal_cxr.strategies import bald, coreset, max_entropy, mean_std, random_sampling


@pytest.fixture
def data():
    """80 8x8 images in 2 classes whose brightness encodes the class."""
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 40)
    X = rng.normal(0.3 + 0.4 * y[:, None, None], 0.1, (80, 8, 8)).astype(np.float32)
    return X, y


class Recorder(ClassifierMixin, BaseEstimator):
    """Records what fit / partial_fit received; predicts the majority label."""

    def __init__(self, warm_start=False):
        self.warm_start = warm_start

    def fit(self, X, y, **kwargs):
        self.calls_ = getattr(self, "calls_", []) + [("fit", np.array(y), kwargs)]
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[counts.argmax()]
        return self

    def partial_fit(self, X, y, **kwargs):
        self.calls_ = self.calls_ + [("partial_fit", np.array(y), kwargs)]
        return self

    def predict_proba(self, X):
        return np.tile((self.classes_ == self.majority_).astype(float), (len(X), 1))

    def predict(self, X):
        return np.full(len(X), self.majority_)


def test_init_fits_nothing_and_clone_keeps_fit_kwargs(data):
    X, y = data
    learner = ActiveLearner(
        Recorder(), X_training=X[:6], y_training=y[:6], fit_kwargs={"sample_weight": None}
    )
    assert not hasattr(learner, "estimator_")
    assert learner.get_params()["fit_kwargs"] == {"sample_weight": None}
    cloned = clone(learner)
    assert cloned.fit_kwargs == {"sample_weight": None}
    np.testing.assert_array_equal(cloned.X_training, X[:6])
    cloned.set_params(fit_kwargs={"sample_weight": "w"}, estimator__warm_start=True)
    assert cloned.fit_kwargs == {"sample_weight": "w"} and cloned.estimator.warm_start
    cloned.fit(X[:4], y[:4])
    assert cloned.estimator_.calls_[0][2] == {"sample_weight": "w"}


def test_unfitted_without_data_raises(data):
    X, _ = data
    learner = ActiveLearner(Recorder())
    for call in (lambda: learner.query(X), lambda: learner.predict(X)):
        with pytest.raises(NotFittedError, match="no labeled data"):
            call()


def test_unfitted_without_data_raises_for_every_prediction(data):
    X, y = data
    learner = ActiveLearner(Recorder())
    for call in (lambda: learner.predict_proba(X), lambda: learner.score(X, y)):
        with pytest.raises(NotFittedError, match="no labeled data"):
            call()
    assert not hasattr(learner, "estimator_") and not hasattr(learner, "X_training_")


def test_fit_and_teach_leave_the_parameters_alone(data):
    """The labeled set grows in ``X_training_`` / ``y_training_``, never in the parameters."""
    X, y = data
    X0, y0 = X[:4].copy(), y[:4].copy()
    learner = ActiveLearner(Recorder(), X_training=X0, y_training=y0)
    learner.teach(X[4:6], y[4:6])
    learner.teach(X[6:7], y[6:7], only_new=True)
    params = learner.get_params(deep=False)
    assert params["X_training"] is X0 and params["y_training"] is y0
    np.testing.assert_array_equal(X0, X[:4])
    np.testing.assert_array_equal(y0, y[:4])
    np.testing.assert_array_equal(learner.X_training_, X[:7])
    np.testing.assert_array_equal(learner.y_training_, y[:7])
    learner.fit(X[10:15], y[10:15])
    assert learner.X_training is X0 and learner.y_training is y0
    np.testing.assert_array_equal(learner.X_training_, X[10:15])
    np.testing.assert_array_equal(learner.y_training_, y[10:15])


def test_fit_without_initial_data_keeps_the_parameters_none(data):
    X, y = data
    learner = ActiveLearner(Recorder()).fit(X[:4], y[:4])
    assert learner.X_training is None and learner.y_training is None
    learner.teach(X[4:6], y[4:6])
    assert learner.X_training is None and learner.y_training is None
    assert len(learner.X_training_) == len(learner.y_training_) == 6


def test_clone_after_teach_starts_from_the_initial_labeled_set(data):
    X, y = data
    learner = ActiveLearner(Recorder(), X_training=X[:4], y_training=y[:4])
    learner.teach(X[4:8], y[4:8])
    twin = clone(learner)
    assert not hasattr(twin, "X_training_") and not hasattr(twin, "estimator_")
    twin.predict(X[:1])  # trained lazily on the initial data
    assert twin.history_[0]["n_labeled"] == 4 and len(twin.y_training_) == 4


@pytest.mark.parametrize(
    "param, value",
    [
        ("estimator", "net"),
        ("estimator", object()),
        ("query_strategy", "bald"),
        ("X_training", 3.0),
        ("y_training", "0101"),
        ("bootstrap_init", "yes"),
        ("bootstrap_init", 1),
        ("on_transformed", None),
        ("random_state", "seed"),
        ("fit_kwargs", [("sample_weight", None)]),
    ],
    ids=repr,
)
@pytest.mark.parametrize("method", ["fit", "teach", "query", "predict"])
def test_bad_parameter_raises_before_fitting(data, param, value, method):
    X, y = data
    learner = ActiveLearner(Recorder(), X_training=X[:6], y_training=y[:6])
    learner.set_params(**{param: value})
    call = {
        "fit": lambda: learner.fit(X[:6], y[:6]),
        "teach": lambda: learner.teach(X[:2], y[:2]),
        "query": lambda: learner.query(X),
        "predict": lambda: learner.predict(X),
    }[method]
    with pytest.raises(InvalidParameterError, match=rf"'{param}' parameter of ActiveLearner"):
        call()
    assert not hasattr(learner, "estimator_")


@pytest.mark.parametrize(
    "params",
    [
        {"bootstrap_init": np.True_, "on_transformed": np.False_},
        {"random_state": np.random.RandomState(0)},
        {"random_state": np.random.default_rng(0)},
        {"X_training": None, "y_training": None, "fit_kwargs": {}},
        {"X_training": [[[0.0]], [[1.0]]], "y_training": [0, 1], "query_strategy": random_sampling},
    ],
)
def test_edge_parameter_values_are_valid(data, params):
    X, y = data
    learner = ActiveLearner(Recorder(), **{"X_training": X[:6], "y_training": y[:6], **params})
    learner.teach(
        X[6:8] if learner.X_training is None or len(learner.X_training) == 6 else X[6:8, :1, :1],
        y[6:8],
    )
    assert learner.history_[-1]["n_labeled"] == len(learner.y_training_)


def test_rounds_record_history(tiny_net, data):
    X, y = data
    learner = ActiveLearner(
        tiny_net(), query_strategy=bald, X_training=X[:10], y_training=y[:10], random_state=0
    )
    pool = np.arange(10, 80)
    idx, X_query = learner.query(X[pool], n_instances=4)  # fits first
    np.testing.assert_array_equal(X_query, X[pool][idx])
    first_model = learner.estimator_
    learner.teach(X_query, y[pool][idx])
    assert learner.estimator_ is not first_model  # refitted from scratch
    assert learner.estimator_ is not learner.estimator
    r0, r1 = learner.history_
    assert r0["round"] == 0 and r0["query_indices"] is None and r0["query_time"] is None
    assert r0["n_labeled"] == 10 and r0["class_counts"] == {0: 5, 1: 5}
    assert r1["round"] == 1 and r1["n_labeled"] == 14
    np.testing.assert_array_equal(r1["query_indices"], idx)
    assert r1["query_time"] > 0 and r1["fit_time"] > 0
    assert sum(r1["class_counts"].values()) == 14
    assert len(learner.X_training_) == len(learner.y_training_) == 14
    assert learner.predict(X).shape == (80,)
    assert learner.predict_proba(X).shape == (80, 2)
    assert 0 <= learner.score(X, y) <= 1


def test_warm_start_continues_the_same_model(data):
    X, y = data
    learner = ActiveLearner(Recorder(warm_start=True), X_training=X[:4], y_training=y[:4])
    learner.query(X[4:])
    model = learner.estimator_
    learner.teach(X[4:6], y[4:6])
    assert learner.estimator_ is model and [c[0] for c in model.calls_] == ["fit", "fit"]


def test_only_new_uses_partial_fit(data):
    X, y = data
    learner = ActiveLearner(Recorder(), X_training=X[:4], y_training=y[:4]).fit(X[:4], y[:4])
    learner.teach(X[4:7], y[4:7], only_new=True)
    kind, y_seen, _ = learner.estimator_.calls_[-1]
    assert kind == "partial_fit" and len(y_seen) == 3 and len(learner.y_training_) == 7


def test_teach_without_initial_data_fits(data):
    X, y = data
    learner = ActiveLearner(Recorder())
    learner.teach(X[:4], y[:4].reshape(-1, 1))
    assert learner.history_[0]["n_labeled"] == 4 and learner.y_training_.shape == (4,)


def test_bootstrap_init_is_seeded(data):
    X, y = data
    seen = []
    for _ in range(2):
        learner = ActiveLearner(
            Recorder(),
            X_training=X[:20],
            y_training=np.arange(20),
            bootstrap_init=True,
            random_state=5,
        )
        learner.predict(X[:1])
        seen.append(learner.estimator_.calls_[0][1])
    np.testing.assert_array_equal(*seen)
    assert len(np.unique(seen[0])) < 20  # a resample with repeats


def test_fit_replaces_labeled_set_and_history(data):
    X, y = data
    learner = ActiveLearner(Recorder(), X_training=X[:4], y_training=y[:4])
    learner.query(X[4:])
    learner.teach(X[4:6], y[4:6])
    learner.fit(X[:8], y[:8])
    assert len(learner.history_) == 1 and learner.history_[0]["n_labeled"] == 8


def test_random_state_gives_reproducible_rounds(data):
    X, y = data

    def run():
        learner = ActiveLearner(
            Recorder(),
            query_strategy=random_sampling,
            X_training=X[:4],
            y_training=y[:4],
            random_state=0,
        )
        out = []
        for _ in range(2):
            idx, Xq = learner.query(X[4:], n_instances=5)
            learner.teach(Xq, y[4:][idx])
            out.append(idx)
        return out

    a, b = run(), run()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # a fresh stream every round


def test_grid_search_tunes_the_learner(tiny_net, data):
    X, y = data
    search = GridSearchCV(ActiveLearner(tiny_net()), {"estimator__lr": [1e-3, 1e-2]}, cv=2)
    search.fit(X[:40], y[:40])
    assert search.best_params_["estimator__lr"] in (1e-3, 1e-2)
    assert search.best_estimator_.history_[0]["n_labeled"] == 40


@pytest.mark.parametrize("strategy", [bald, coreset, max_entropy])
@pytest.mark.parametrize("on_transformed", [False, True])
def test_pipeline_estimator(tiny_net, strategy, on_transformed, data):
    X, y = data
    X16 = np.repeat(np.repeat(X, 2, axis=1), 2, axis=2)  # 16x16, resized back to 8x8
    pipe = Pipeline([("prep", CXRPreprocessor(size=8)), ("net", tiny_net())])
    learner = ActiveLearner(
        pipe,
        query_strategy=strategy,
        X_training=X16[:10],
        y_training=y[:10],
        on_transformed=on_transformed,
        random_state=0,
    )
    idx, X_query = learner.query(X16[10:], n_instances=3, pool_size=30)
    assert len(set(idx)) == 3 and X_query.shape == (3, 16, 16)
    assert learner.transform_without_estimating(X16[:2]).shape == (2, 1, 8, 8)
    learner.teach(X_query, y[10:][idx])
    assert learner.history_[-1]["n_labeled"] == 13


def test_mean_std_rounds_on_pneumoniamnist(pneumoniamnist):
    # Per-image standardisation (done once, up front) keeps the tiny net from
    # collapsing to one class on 20 raw images; 14x14 keeps the test fast.
    prep = CXRPreprocessor(size=14, scaling="standardize")
    X = prep.transform(pneumoniamnist["train_images"])
    y = pneumoniamnist["train_labels"].ravel()
    rng = np.random.default_rng(0)
    labeled = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), 10, replace=False) for c in (0, 1)]
    )
    pool = np.setdiff1d(np.arange(len(y)), labeled)
    net = MCDropoutCNN(
        max_epochs=20,
        batch_size=16,
        module__width=8,
        module__n_blocks=2,
        n_mc_samples=10,
        lr=1e-2,
        class_weight="balanced",
        random_state=0,
        device="cpu",
    )
    learner = ActiveLearner(
        net, query_strategy=mean_std, X_training=X[labeled], y_training=y[labeled], random_state=0
    )
    queried = []
    for _ in range(3):
        idx, X_query = learner.query(X[pool], n_instances=10, pool_size=300)
        learner.teach(X_query, y[pool[idx]])
        queried.extend(pool[idx])
        pool = np.delete(pool, idx)
    history = learner.history_
    assert [h["n_labeled"] for h in history] == [20, 30, 40, 50]
    assert [h["round"] for h in history] == [0, 1, 2, 3]
    assert all(sum(h["class_counts"].values()) == h["n_labeled"] for h in history)
    assert all(len(h["query_indices"]) == 10 and h["query_time"] > 0 for h in history[1:])
    assert len(set(queried)) == 30 and not set(queried) & set(labeled)
    score = balanced_accuracy_score(
        pneumoniamnist["test_labels"].ravel(),
        learner.predict(prep.transform(pneumoniamnist["test_images"])),
    )
    assert score > 0.65, score


def test_query_returns_the_strategy_scores_on_request(data):
    X, y = data
    learner = ActiveLearner(
        Recorder(),
        query_strategy=random_sampling,
        X_training=X[:4],
        y_training=y[:4],
        random_state=0,
    )
    idx, X_query = learner.query(X[4:], n_instances=3)
    again, X_again, scores = clone(learner).query(X[4:], n_instances=3, return_metrics=True)
    np.testing.assert_array_equal(idx, again)
    np.testing.assert_array_equal(X_again, X[4:][idx])
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores < 1))
    assert np.all(np.diff(scores) <= 0)  # highest score first


def test_query_calls_the_strategy_once_and_accepts_bare_indices(data):
    X, y = data
    calls = []

    def first_images(learner, X_pool, n_instances=1):
        calls.append(n_instances)
        return np.arange(n_instances)

    learner = ActiveLearner(
        Recorder(), query_strategy=first_images, X_training=X[:4], y_training=y[:4]
    )
    idx, X_query, scores = learner.query(X[4:], n_instances=2, return_metrics=True)
    np.testing.assert_array_equal(idx, [0, 1])  # two indices, not (index, score)
    assert scores is None and calls == [2]


class LabelledPool(torch.utils.data.Dataset):
    """A pool yielding (image, hidden label) pairs, as a labeled archive would."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.from_numpy(self.X[i][None]), int(self.y[i])


@pytest.mark.parametrize(
    "strategy, pool_kind",
    [
        (random_sampling, "pairs"),
        (max_entropy, "images"),
        (bald, "pairs"),
        (coreset, "images"),
    ],
)
def test_query_and_teach_on_a_dataset_pool(tiny_net, data, strategy, pool_kind):
    X, y = data
    X_pool, y_pool = X[10:], y[10:]
    pool = (
        torch.utils.data.TensorDataset(torch.from_numpy(X_pool))
        if pool_kind == "images"
        else LabelledPool(X_pool, y_pool)
    )
    net = tiny_net(max_epochs=1, min_train_steps=0)
    learner = ActiveLearner(
        net, query_strategy=strategy, X_training=X[:10], y_training=y[:10], random_state=0
    )
    twin = ActiveLearner(
        net, query_strategy=strategy, X_training=X[:10], y_training=y[:10], random_state=0
    )
    for _ in range(2):
        idx, X_query = learner.query(pool, n_instances=4)
        assert isinstance(X_query, torch.utils.data.Dataset) and len(X_query) == 4
        twin_idx, twin_query = twin.query(X_pool, n_instances=4)
        np.testing.assert_array_equal(idx, twin_idx)  # the Dataset is the same pool
        learner.teach(X_query, y_pool[idx])
        twin.teach(twin_query, y_pool[idx])
    np.testing.assert_array_equal(learner.X_training_, twin.X_training_)
    assert [h["n_labeled"] for h in learner.history_] == [10, 14, 18]
    np.testing.assert_allclose(learner.predict_proba(pool), twin.predict_proba(X_pool), atol=1e-6)
