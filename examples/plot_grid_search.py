"""
====================================================
Tuning MCDropoutCNN with scikit-learn's GridSearchCV
====================================================

:class:`~skal_cxr.MCDropoutCNN` is a scikit-learn estimator, so model
selection tools work as they are: here a cross-validated grid over the
learning rate and the dropout rate of the Monte Carlo head (routed to the
network with ``module__dropout``), scored by balanced accuracy.
"""

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skal_cxr import MCDropoutCNN
from skal_cxr.datasets import make_cxr_phantoms

FAST = os.environ.get("SKAL_CXR_FAST") == "1"
n_images, size, epochs = (120, 16, 2) if FAST else (600, 32, 15)

X, y = make_cxr_phantoms(n_images, image_size=size, random_state=1)

grid = GridSearchCV(
    MCDropoutCNN(
        max_epochs=epochs,
        min_train_steps=0,
        classes=[0, 1, 2],
        module__width=8,
        random_state=0,
        device="cpu",
    ),
    param_grid={"lr": [3e-4, 3e-3], "module__dropout": [0.25, 0.5]},
    scoring="balanced_accuracy",
    cv=StratifiedKFold(n_splits=2 if FAST else 3, shuffle=True, random_state=0),
    n_jobs=1,
)
grid.fit(X, y)
print("best parameters:", grid.best_params_)
print(f"best cross-validated balanced accuracy: {grid.best_score_:.3f}")

# %%
# The mean score of each combination
# ----------------------------------
lrs, dropouts = grid.param_grid["lr"], grid.param_grid["module__dropout"]
scores = np.array(grid.cv_results_["mean_test_score"]).reshape(len(lrs), len(dropouts))
fig, ax = plt.subplots(figsize=(4.5, 3.5))
im = ax.imshow(scores, cmap="viridis")
ax.set_xticks(range(len(dropouts)), [str(d) for d in dropouts])
ax.set_yticks(range(len(lrs)), [str(lr) for lr in lrs])
ax.set_xlabel("module__dropout")
ax.set_ylabel("lr")
for (i, j), s in np.ndenumerate(scores):
    ax.text(j, i, f"{s:.2f}", ha="center", va="center", color="w")
fig.colorbar(im, label="balanced accuracy")
fig.tight_layout()

# %%
# The refitted best model predicts Monte Carlo samples like any other:
# their spread is the model's uncertainty.
samples = grid.best_estimator_.predict_proba_samples(X[:5], n_mc_samples=20)
print("MC samples:", samples.shape, "std of p(severe):", samples[..., 2].std(axis=0).round(3))
