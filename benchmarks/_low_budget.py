"""The low-budget study's arms, data, estimator and runs (``bench_low_budget.py``).

Declared in docs/benchmarks.rst, "Low-budget study": every arm starts from
zero labels, picks its first labels as declared (:func:`first_labels`), and
is run to each checkpoint through the engine's round loop
(:class:`skal_cxr.engine.ActiveLoop`), retraining the study's estimator
(:func:`make_estimator`) from scratch and recording :func:`evaluate`'s test
metrics. :func:`run_full` is the full-data reference of a seed.
"""

import time
from dataclasses import dataclass
from functools import partial

import numpy as np
from sklearn.metrics import average_precision_score

from skal_cxr import ActiveLearner, MCDropoutCNN
from skal_cxr._random import derived_rng
from skal_cxr.calibration import PriorCorrection
from skal_cxr.callbacks import CosineAnnealing
from skal_cxr.embeddings import ContrastiveEncoder
from skal_cxr.engine import ActiveLoop
from skal_cxr.metrics import classification_metrics, fit_operating_point
from skal_cxr.strategies import (
    STRATEGIES,
    is_label_free,
    label_free_query,
    max_entropy,
    schedule,
    typicality,
)

__all__ = [
    "DEFAULT",
    "PRIMARY",
    "BASE_ARMS",
    "ALL_ARMS",
    "SWITCH",
    "Data",
    "load_data",
    "make_estimator",
    "arm_strategy",
    "first_labels",
    "evaluate",
    "checkpoints",
    "run_one",
    "run_full",
]

DEFAULT = "typicality_then_max_entropy"
PRIMARY = [DEFAULT, "random"]
BASE_ARMS = [DEFAULT, "random", "stratified", "max_entropy", "mean_std", "bald", "badge"]
# every arm also with the self-supervised start (encoder view and classifier trunk)
ALL_ARMS = BASE_ARMS + [arm + "+ssl" for arm in BASE_ARMS]
SWITCH = 40  # the default schedule's switch to max entropy


@dataclass
class Data:
    """The pool, val and test splits of a data set, with its minority class."""

    X_pool: np.ndarray
    y_pool: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    minority: int
    name: str


def load_data(name, seed=0, image_size=28):
    """The declared data sets; ``imbalanced`` keeps normal at 5 % of the pool.

    ``image_size`` is the phantoms' side in pixels (PneumoniaMNIST is 28).
    """
    if name == "phantoms":
        from skal_cxr.datasets import make_cxr_phantoms

        X, y = make_cxr_phantoms(3000, image_size=image_size, n_classes=3, random_state=seed)
        order = np.random.default_rng(seed).permutation(len(y))
        X, y = X[order], y[order]
        a, b = 2100, 2400
        return Data(
            X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:], int(np.argmin(np.bincount(y))), name
        )
    from skal_cxr.datasets import load_pneumoniamnist

    splits = {s: load_pneumoniamnist(s) for s in ("train", "val", "test")}
    X_pool, y_pool = splits["train"]
    if name == "imbalanced":
        rng = np.random.default_rng(12345)  # one fixed pool for every seed and arm
        normal, sick = np.flatnonzero(y_pool == 0), np.flatnonzero(y_pool == 1)
        n_keep = int(round(0.05 / 0.95 * len(sick)))
        keep = np.sort(np.r_[rng.choice(normal, n_keep, replace=False), sick])
        X_pool, y_pool = X_pool[keep], y_pool[keep]
    elif name != "pneumoniamnist":
        raise SystemExit(f"unknown --data {name!r}")
    return Data(X_pool, y_pool, *splits["val"], *splits["test"], minority=0, name=name)


def make_estimator(seed, n_classes, quick=False):
    """The simulation's default estimator (docs/benchmarks.rst, main job)."""
    return MCDropoutCNN(
        classes=np.arange(n_classes),
        class_weight="balanced",
        n_mc_samples=20,
        random_state=seed,
        max_epochs=1 if quick else 5,
        min_train_steps=5 if quick else 150,
        callbacks=[("cosine", CosineAnnealing())],
        lr=1e-3,
        batch_size=32,
        module__width=16,
        module__n_blocks=3,
        module__dropout=0.5,
        device="cpu",
    )


def arm_strategy(arm, encoder=None):
    """Query strategy of an arm (the ``+ssl`` arms use the encoder's view)."""
    base = arm.split("+")[0]
    if base == DEFAULT:
        first = typicality if encoder is None else partial(typicality, embedding=encoder)
        return schedule([(first, SWITCH), (max_entropy, None)])
    return STRATEGIES["random" if base == "stratified" else base]


def first_labels(arm, strategy, data, n, seed):
    """The study's declared first ``n`` labels: label-free strategies choose; others random.

    Label-free strategies pick without any learner
    (:func:`skal_cxr.strategies.label_free_query`); ``stratified``
    (the oracle) draws a per-class quota, the others ``n`` at random, as
    the study declared (seeded by ``derived_rng(seed, 7)``).
    """
    rng = derived_rng(seed, 7)
    if arm.startswith("stratified"):  # the oracle: uses the labels
        classes = np.unique(data.y_pool)
        quota = np.full(len(classes), n // len(classes))
        quota[: n % len(classes)] += 1
        return np.concatenate(
            [
                rng.choice(np.flatnonzero(data.y_pool == c), q, replace=False)
                for c, q in zip(classes, quota)
            ]
        )
    if is_label_free(strategy):
        return label_free_query(strategy, data.X_pool, n, random_state=rng)[0]
    return rng.choice(len(data.y_pool), n, replace=False)


def evaluate(model, data):
    """Test metrics of a fitted model (operating point and calibration from val)."""
    p_val, p_test = model.predict_proba(data.X_val), model.predict_proba(data.X_test)
    op = fit_operating_point(data.y_val, p_val)
    m = classification_metrics(data.y_test, p_test, operating_point=op)
    corrected = PriorCorrection().fit(p_val, data.y_val).transform(p_test)
    tempered = PriorCorrection(method="temperature").fit(p_val, data.y_val).transform(p_test)
    return {
        "auroc": m["auroc"],
        "balanced_accuracy_op": m["balanced_accuracy_op"],
        "mae_macro": m["mae_macro"],
        "ece": m["ece"],
        "ece_corrected": classification_metrics(data.y_test, corrected)["ece"],
        "ece_temperature": classification_metrics(data.y_test, tempered)["ece"],
        "auprc_minority": float(
            average_precision_score(data.y_test == data.minority, p_test[:, data.minority])
        ),
    }


def checkpoints(budget, step=10, after=50, max_labels=None):
    """10, 20, ..., budget, then steps of ``after`` up to ``max_labels``."""
    points = list(range(step, budget + 1, step))
    if max_labels:
        points += list(range(budget + after, max_labels + 1, after))
    return points


_ENCODERS = {}


def _encoder(data, seed, quick):
    """The pool's contrastive encoder of a seed, trained once per process."""
    key = (data.name, seed, quick)
    if key not in _ENCODERS:
        _ENCODERS[key] = ContrastiveEncoder(max_epochs=1 if quick else 5, random_state=seed).fit(
            data.X_pool
        )
    return _ENCODERS[key]


def run_one(arm, seed, data, points, quick=False):
    """One arm and seed: a record per checkpoint, through the engine's round loop."""
    n_classes = int(data.y_pool.max()) + 1
    encoder = _encoder(data, seed, quick) if arm.endswith("+ssl") else None
    strategy = arm_strategy(arm, encoder)
    estimator = make_estimator(seed, n_classes, quick)
    if encoder is not None:  # the self-supervised start: the classifier's trunk too
        estimator.set_params(encoder_weights=encoder.trunk_state_dict())
    learner = ActiveLearner(estimator, query_strategy=strategy, random_state=seed)
    start, cpu = time.perf_counter(), time.process_time()
    labeled = first_labels(arm, strategy, data, points[0], seed)
    loop = ActiveLoop(None, data.X_pool, lambda idx: data.y_pool[idx], labeled, learner=learner)

    def measure(fitted):
        return {
            **evaluate(fitted.estimator_, data),
            "elapsed_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu,
        }

    records = []
    for k, n in enumerate(points):
        n_next = points[k + 1] - n if k + 1 < len(points) else 0
        result = loop.step(n_next, evaluate=measure)
        assert result.n_labeled == n
        labeled = list(result.labeled)
        records.append(
            {
                "arm": arm,
                "seed": seed,
                "data": data.name,
                "n_labeled": int(n),
                "class_counts": np.bincount(data.y_pool[labeled], minlength=n_classes).tolist(),
                **result.evaluation,
            }
        )
    return records


def run_full(seed, data, quick=False):
    """The full-data reference of a seed."""
    start, cpu = time.perf_counter(), time.process_time()
    model = make_estimator(seed, int(data.y_pool.max()) + 1, quick).fit(data.X_pool, data.y_pool)
    return {
        "arm": "full",
        "seed": seed,
        "data": data.name,
        "n_labeled": len(data.y_pool),
        **evaluate(model, data),
        "elapsed_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
    }
