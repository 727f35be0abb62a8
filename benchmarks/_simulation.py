"""The simulation protocol shared by the PneumoniaMNIST benchmarks.

``bench_label_efficiency.py`` and ``bench_score_subset.py`` run
:func:`skal_cxr.simulation.simulate` on the same data description, with the
same tiny settings for their smoke tests, reading the data from the shared
folder unless ``SKAL_CXR_DATA`` says otherwise.
"""

import os
from pathlib import Path

__all__ = ["REPO", "TINY", "pneumoniamnist", "use_shared_data"]

REPO = Path(__file__).resolve().parents[1]

#: the smoke tests' settings: every code path, seconds not minutes
TINY = dict(
    n_initial=20,
    query_size=20,
    budget=60,
    n_mc_samples=4,
    estimator={"module__width": 4, "module__n_blocks": 2},
    training={"max_epochs": 1, "min_train_steps": 5},
)


def pneumoniamnist(max_pool=None):
    """The ``data`` argument of :func:`~skal_cxr.simulation.simulate` for PneumoniaMNIST.

    Parameters
    ----------
    max_pool : int or None
        Keep at most this many pool images (``None``: the whole train split).

    Returns
    -------
    data : dict
    """
    return {
        "source": "medmnist",
        "name": "pneumoniamnist",
        "root": None,
        "max_pool": max_pool,
        "random_state": 0,
    }


def use_shared_data():
    """Read the data sets from ``../shared/data`` unless ``SKAL_CXR_DATA`` is set."""
    os.environ.setdefault("SKAL_CXR_DATA", str(REPO.parent / "shared" / "data"))
