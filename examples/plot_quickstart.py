"""
=====================================
Quickstart: an active-learning loop
=====================================

Train a Monte Carlo Dropout CNN on a handful of labeled chest-X-ray phantoms,
then let BALD pick which images an expert should label next. Each round the
:class:`~skal_cxr.ActiveLearner` retrains from scratch on everything labeled
so far, exactly as in the deep Bayesian active learning literature.
"""

# %%
# Data: synthetic phantoms graded normal / moderate / severe
# ------------------------------------------------------------
# :func:`~skal_cxr.datasets.make_cxr_phantoms` draws chest-X-ray-like images
# whose opacities grow with a latent severity. We keep a test set aside and
# treat the rest as the unlabeled pool whose labels an oracle reveals.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

from skal_cxr import MCDropoutCNN
from skal_cxr.datasets import PHANTOM_CLASS_NAMES, make_cxr_phantoms
from skal_cxr.learner import ActiveLearner
from skal_cxr.strategies import bald

FAST = os.environ.get("SKAL_CXR_FAST") == "1"
n_images, size = (300, 16) if FAST else (1500, 32)
n_rounds, n_query = (2, 10) if FAST else (6, 30)

X, y = make_cxr_phantoms(n_images, image_size=size, random_state=0)
X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
names = PHANTOM_CLASS_NAMES[3]
print("pool:", np.bincount(y_pool), "test:", np.bincount(y_test), names)

fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
for ax, c in zip(axes, range(3)):
    ax.imshow(X_pool[np.flatnonzero(y_pool == c)[0]], cmap="gray")
    ax.set_title(names[c])
    ax.axis("off")

# %%
# The estimator and the learner
# -----------------------------
# ``classes`` is fixed because an early labeled set may lack the rare
# "severe" class. ``random_state`` makes every fit and every Monte Carlo
# sample reproducible.
rng = np.random.default_rng(0)
labeled = rng.choice(len(y_pool), size=n_query, replace=False)
estimator = MCDropoutCNN(
    classes=[0, 1, 2],
    max_epochs=3 if FAST else 10,
    min_train_steps=5 if FAST else 150,
    module__width=8 if FAST else 16,
    n_mc_samples=10,
    random_state=0,
    device="cpu",
)
learner = ActiveLearner(
    estimator,
    query_strategy=bald,
    X_training=X_pool[labeled],
    y_training=y_pool[labeled],
    random_state=0,
)
unlabeled = np.setdiff1d(np.arange(len(y_pool)), labeled)

# %%
# The loop: query, label, retrain
# -------------------------------
sizes, scores = [], []
for round_ in range(n_rounds + 1):
    y_pred = learner.predict(X_test)
    sizes.append(len(learner.y_training_))  # the labeled set so far
    scores.append(balanced_accuracy_score(y_test, y_pred))
    print(f"round {round_}: {sizes[-1]} labeled, balanced accuracy {scores[-1]:.3f}")
    if round_ == n_rounds:
        break
    idx, X_query = learner.query(X_pool[unlabeled], n_instances=n_query, n_mc_samples=10)
    learner.teach(X_query, y_pool[unlabeled[idx]])  # the oracle reveals the labels
    unlabeled = np.delete(unlabeled, idx)

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(sizes, scores, marker="o")
ax.set_xlabel("labeled images")
ax.set_ylabel("balanced accuracy (test)")
ax.set_title("BALD acquisition")
fig.tight_layout()

# %%
# :attr:`~skal_cxr.ActiveLearner.history_` keeps what each round acquired
# and how long fitting and querying took.
for entry in learner.history_:
    print(
        entry["round"], entry["n_labeled"], entry["class_counts"], f"fit {entry['fit_time']:.1f}s"
    )
