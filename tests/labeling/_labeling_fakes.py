"""Helpers of the labeling tests: phantom PNG folders and tiny project settings."""

import numpy as np
from PIL import Image

from skal_cxr.datasets import PHANTOM_CLASS_NAMES, make_cxr_phantoms

CLASSES = list(PHANTOM_CLASS_NAMES[3])
#: A network and training small enough for a round in well under a second (the
#: CNN, whose rounds the tests know; :data:`TINY_VIEW` is a head on the pool's view).
TINY = {
    "model": "cnn",
    "image_size": 16,
    "n_mc_samples": 3,
    "stop_set_size": 30,
    "estimator": {"module__width": 4, "module__n_blocks": 2, "device": "cpu"},
    "training": {"max_epochs": 1, "min_train_steps": 2},
}
#: A project of the view model whose encoder trains in about a second.
TINY_VIEW = {
    **{k: v for k, v in TINY.items() if k not in ("estimator", "training")},
    "model": "view",
    "view": {"max_epochs": 1, "width": 4, "n_blocks": 2, "batch_size": 32},
    "head": {"hidden_units": 16, "n_steps": 20},
}


def write_phantoms(folder, n=60, size=16, random_state=0):
    """``n`` phantom PNGs ``im000.png ...`` in ``folder``; returns their class names."""
    X, y = make_cxr_phantoms(n, image_size=size, random_state=random_state)
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(np.asarray(X)):
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(folder / f"im{i:03d}.png")
    return [CLASSES[c] for c in y]


def truth_of(project, truth, image_id):
    """The true class of an image of ``project``."""
    table = {i: rel for i, rel, _, _ in project.image_table()}
    return truth[table[str(image_id)]]
