"""
=================================================
Comparing query strategies on PneumoniaMNIST
=================================================

:func:`skal_cxr.simulation.simulate` runs every strategy with several seeds
from the same initial labeled set, drawn without labels, retrains each round, evaluates
on the test split and writes one record per round; the report then draws the
learning curves against the full-data baseline and tests each strategy
against random sampling.

PneumoniaMNIST (normal vs pneumonia, 28x28) is read from
``$SKAL_CXR_DATA/pneumoniamnist.npz`` (the MedMNIST file). Without it this
example falls back to two-class phantoms, so that it always runs.
"""

# %%
import os
import tempfile

import matplotlib.image as mpimg
import matplotlib.pyplot as plt

from skal_cxr.datasets import get_data_home
from skal_cxr.simulation import simulate

FAST = os.environ.get("SKAL_CXR_FAST") == "1"
path = get_data_home() / "pneumoniamnist.npz"
if path.is_file():
    data = {
        "source": "medmnist",
        "name": "pneumoniamnist",
        "root": str(path.parent),
        "max_pool": 300 if FAST else 2000,
    }
    print(f"Using {path}")
else:
    data = {
        "source": "phantoms",
        "n_classes": 2,
        "n_samples": 400 if FAST else 3000,
        "image_size": 16 if FAST else 28,
    }
    print(f"{path} not found: using two-class phantoms instead")

# %%
# A small grid: four strategies, three seeds (two in fast mode). Runs go in
# parallel over the cores with ``n_jobs``; ``scheduler="tcp://..."`` would
# send them to a Dask cluster instead.
output = tempfile.mkdtemp(prefix="skal-cxr-pneumonia-")
result = simulate(
    output,
    data=data,
    strategies=["random", "max_entropy", "bald"]
    if FAST
    else ["random", "max_entropy", "mean_std", "bald"],
    seeds=2 if FAST else 3,
    n_initial=20,
    query_size=20,
    budget=60 if FAST else 200,
    n_mc_samples=5 if FAST else 20,
    model="cnn",  # the MC Dropout CNN from pixels (the default is a head on the pool's view)
    estimator={"module__width": 4 if FAST else 16, "device": "cpu"},
    training={"max_epochs": 1, "min_train_steps": 5} if FAST else None,
    n_jobs=1 if FAST else -1,
)
print(result.report["report"].read_text())

# %%
# The learning curves written by the report
# -----------------------------------------
fig, ax = plt.subplots(figsize=(10, 6))
ax.imshow(mpimg.imread(result.report["figure"]))
ax.axis("off")
fig.tight_layout()
