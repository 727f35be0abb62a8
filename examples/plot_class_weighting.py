"""
============================================
Class weighting for a rare "severe" class
============================================

Severe cases are rare (10% here), and an active learner's first labeled sets
hold only a few of them. ``class_weight="balanced"`` re-weights the loss at
every fit from the labeled set's own class counts. This example trains the
same network with and without it on growing random labeled sets and compares
balanced accuracy and the recall of the severe class on a held-out test set.
"""

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.model_selection import train_test_split

from skal_cxr import MCDropoutCNN
from skal_cxr.datasets import make_cxr_phantoms

FAST = os.environ.get("SKAL_CXR_FAST") == "1"
n_images, size, epochs = (300, 16, 3) if FAST else (2000, 32, 10)
sizes = [30, 60] if FAST else [50, 100, 200, 400]

X, y = make_cxr_phantoms(n_images, image_size=size, weights=[0.6, 0.3, 0.1], random_state=2)
X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
order = np.random.default_rng(0).permutation(len(y_pool))

results = {None: [], "balanced": []}
for n in sizes:
    idx = order[:n]
    for weighting in results:
        net = MCDropoutCNN(
            classes=[0, 1, 2],
            class_weight=weighting,
            max_epochs=epochs,
            min_train_steps=0 if FAST else 150,
            module__width=8,
            random_state=0,
            device="cpu",
        )
        y_pred = net.fit(X_pool[idx], y_pool[idx]).predict(X_test)
        results[weighting].append(
            (
                balanced_accuracy_score(y_test, y_pred),
                recall_score(y_test, y_pred, labels=[2], average=None, zero_division=0)[0],
            )
        )
        print(
            f"{n} labeled, class_weight={weighting}: balanced accuracy "
            f"{results[weighting][-1][0]:.3f}, severe recall {results[weighting][-1][1]:.3f}"
        )

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for weighting, values in results.items():
    values = np.array(values)
    for ax, k in zip(axes, range(2)):
        ax.plot(sizes, values[:, k], marker="o", label=f"class_weight={weighting}")
for ax, title in zip(axes, ["balanced accuracy", "recall of 'severe'"]):
    ax.set_xlabel("labeled images")
    ax.set_title(title)
    ax.grid(alpha=0.3)
axes[0].legend()
fig.tight_layout()

# %%
# In a full simulation, the same switch is ``simulate(class_weight="balanced")``
# or ``skal-cxr simulate --class-weight balanced``.
