"""Linear probes of the label-free views of PneumoniaMNIST at 20, 40 and 80 labels.

How much does each view of the pool (:mod:`skal_cxr.embeddings`) know about
the classes before any label? A logistic regression is trained on the view
of ``n`` pool images drawn at random (seeded, no stratification) and scored
by test AUROC; 10 seeds per ``n``. Views: PCA-50 of the pixels, the
:class:`~skal_cxr.embeddings.ContrastiveEncoder` trained on the pool (fit
once, seed 0), and the raw pixels as a reference.

Usage::

    python benchmarks/bench_embeddings.py [--epochs 5] [--seeds 10]
"""

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from skal_cxr._random import derived_rng
from skal_cxr.datasets import load_pneumoniamnist
from skal_cxr.embeddings import ContrastiveEncoder, PixelPCA


def probe(train, y_train, test, y_test, sizes, seeds):
    """Test AUROC of a logistic regression on ``n`` random labels, per size and seed."""
    out = {}
    for n in sizes:
        scores = []
        for seed in range(seeds):
            idx = derived_rng(seed, n).choice(len(y_train), n, replace=False)
            if len(np.unique(y_train[idx])) < 2:
                scores.append(0.5)  # one class only: no classifier can be trained
                continue
            clf = LogisticRegression(max_iter=2000, class_weight="balanced")
            clf.fit(train[idx], y_train[idx])
            scores.append(roc_auc_score(y_test, clf.predict_proba(test)[:, 1]))
        out[n] = (float(np.mean(scores)), float(np.std(scores, ddof=1)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    X, y = load_pneumoniamnist("train")
    X_test, y_test = load_pneumoniamnist("test")
    sizes = (20, 40, 80)
    views = {
        "pixels": lambda: (X.reshape(len(X), -1) / 255.0, X_test.reshape(len(X_test), -1) / 255.0)
    }

    def pca():
        model = PixelPCA(50, random_state=0).fit(X)
        return model.transform(X), model.transform(X_test)

    def ssl():
        model = ContrastiveEncoder(max_epochs=args.epochs, random_state=0).fit(X)
        return model.transform(X), model.transform(X_test)

    views.update({"pca50": pca, "contrastive": ssl})
    for name, make in views.items():
        start = time.process_time()
        train, test = make()
        cost = time.process_time() - start
        result = probe(train, y, test, y_test, sizes, args.seeds)
        cells = "; ".join(f"{n}: {m:.3f} ({s:.3f})" for n, (m, s) in result.items())
        print(f"{name} [{cost:.0f} CPU-s to compute] {cells}", flush=True)


if __name__ == "__main__":
    main()
