"""
=================================================
The reference study, reproduced
=================================================

:func:`skal_cxr.study.run_reference_study` runs the reference study's
design on two tasks:

* **binary**: normal vs pneumonia on PneumoniaMNIST, the real pediatric
  chest X-rays shipped with skal_cxr (MedMNIST v2, Yang et al. 2023;
  Kermany et al. 2018; CC BY 4.0);
* **severity**: normal / moderate / severe on the phantoms, each label the
  consensus of simulated raters who disagree near the class boundaries.

Both use max entropy, mean STD, BALD, variation ratios and random sampling
with a class-weighted loss, retraining the MC Dropout CNN each round. The
command-line form is ``skal-cxr study --output skal-cxr-study``; the docs
page :doc:`/reference_study` shows its measured table. This example runs
the ``"tiny"`` scale in the documentation build (``SKAL_CXR_FAST=1``), which
only shows the mechanics: its numbers mean nothing.
"""

# %%
import os
import tempfile

import matplotlib.image as mpimg
import matplotlib.pyplot as plt

from skal_cxr.study import PUBLISHED, run_reference_study

FAST = os.environ.get("SKAL_CXR_FAST") == "1"
output = tempfile.mkdtemp(prefix="skal-cxr-study-")
paths = run_reference_study(
    output,
    scale="tiny" if FAST else "small",
    strategies=["random", "max_entropy", "mean_std"] if FAST else None,
    seeds=1 if FAST else None,
    n_jobs=1 if FAST else -1,
)

# %%
# Our table next to the published figures
# ---------------------------------------
print(paths["study"].read_text())
for task, pub in PUBLISHED.items():
    print(
        f"{task}: published {pub['accuracy']:.1%} accuracy, AUROC {pub['auroc']:.2f} "
        f"with {pub['labels_fraction']:.1%} of the labels by {pub['strategy']}"
    )

# %%
# The learning curves of each task
# --------------------------------
fig, axes = plt.subplots(2, 1, figsize=(10, 9))
for ax, task in zip(axes, ("binary", "severity")):
    ax.imshow(mpimg.imread(paths[task] / "learning_curves.png"))
    ax.set_title(task)
    ax.axis("off")
plt.show()
