"""skal_cxr: deep Bayesian active learning for chest X-rays.

Monte Carlo Dropout CNNs as scikit-learn estimators, acquisition functions,
a modAL-compatible active learner and an active-learning simulator.

The public names are loaded on first use (:pep:`562`): ``import skal_cxr``
alone imports neither torch nor scikit-learn, so that light entry points (the
labeling web server) start quickly; ``from skal_cxr import MCDropoutCNN``
works as before.
"""

from ._lazy_names import lazy_names
from ._version import __version__

#: Public name -> the submodule that defines it (``None``: the name is a submodule).
_LAZY = {
    "ActiveLearner": ".learner",
    "strategies": None,
    "MCDropoutCNN": ".models",
    "MCDropoutHead": ".heads",
    "FrozenViewClassifier": ".frozen_view",
    "CXRNet": ".networks",
    "CXRPreprocessor": ".preprocessing",
    "simulate": ".simulation",
}

__all__ = [
    "ActiveLearner",
    "strategies",
    "MCDropoutCNN",
    "MCDropoutHead",
    "FrozenViewClassifier",
    "CXRNet",
    "CXRPreprocessor",
    "simulate",
    "__version__",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
