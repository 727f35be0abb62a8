"""Costs of a frozen view on PneumoniaMNIST: encoder, head fit, MC scoring, a first AUROC.

On one CPU thread: training the :class:`~skal_cxr.embeddings.ContrastiveEncoder`
on the pool (4,708 images of 28x28), its features of the pool, the
:class:`~skal_cxr.FrozenViewClassifier`'s fit on 20 labels (the head only,
300 Adam steps), 20 MC Dropout samples of the whole pool (first query:
features computed; later queries: remembered), and the test AUROC after 10
labels picked by the guard (typicality in the view) and 20 MC samples.

Usage::

    python benchmarks/bench_frozen_view.py [--epochs 5] [--threads 1]
"""

import argparse
import time

import numpy as np
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from skal_cxr import ActiveLearner, FrozenViewClassifier
from skal_cxr.datasets import load_pneumoniamnist
from skal_cxr.embeddings import ContrastiveEncoder
from skal_cxr.strategies import max_entropy, typicality_until_k_then


def _timed(func):
    start = time.perf_counter()
    out = func()
    return out, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--labels", type=int, default=10, help="labels picked by the guard")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y = load_pneumoniamnist("train")
    X_test, y_test = load_pneumoniamnist("test")
    enc = ContrastiveEncoder(max_epochs=args.epochs, random_state=0)
    enc, t_enc = _timed(lambda: enc.fit(X))
    _, t_feat = _timed(lambda: enc.transform(X))
    print(f"encoder fit ({args.epochs} epochs, {len(X)} images): {t_enc:.1f} s")
    print(f"encoder features of the pool: {t_feat:.2f} s")

    clf = FrozenViewClassifier(enc, class_weight="balanced", random_state=0)
    idx = np.random.default_rng(0).choice(len(X), 20, replace=False)
    clf.fit(X[idx], y[idx])  # warm-up (first call of torch ops)
    fresh = clone(clf)
    _, t_fit = _timed(lambda: fresh.fit(X[idx], y[idx]))
    print(f"head fit, 20 labels, 300 steps: {t_fit:.2f} s")
    _, t_cold = _timed(lambda: fresh.predict_proba_samples(X))
    _, t_warm = _timed(lambda: fresh.predict_proba_samples(X))
    print(f"20 MC samples of {len(X)} images, features computed first: {t_cold:.2f} s")
    print(f"20 MC samples of {len(X)} images, features remembered: {t_warm:.3f} s")

    learner = ActiveLearner(
        FrozenViewClassifier(enc, class_weight="balanced", random_state=0),
        query_strategy=typicality_until_k_then(max_entropy, k=args.labels),
        random_state=0,
    )
    picked, t_query = _timed(lambda: learner.query(X, n_instances=args.labels)[0])
    learner.teach(X[picked], y[picked])
    proba = learner.estimator_.predict_proba_samples(X_test).mean(axis=0)[:, 1]
    auroc = roc_auc_score(y_test, proba)
    print(
        f"{args.labels} labels by typicality in the view ({np.bincount(y[picked]).tolist()} "
        f"per class, query {t_query:.2f} s): test AUROC {auroc:.3f}"
    )


if __name__ == "__main__":
    main()
