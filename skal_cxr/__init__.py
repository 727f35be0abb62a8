"""skal_cxr: deep Bayesian active learning for chest X-rays.

Monte Carlo Dropout CNNs as scikit-learn estimators, acquisition functions,
a modAL-compatible active learner and an active-learning simulator.
"""

from . import strategies
from ._version import __version__
from .frozen_view import FrozenViewClassifier
from .heads import MCDropoutHead
from .learner import ActiveLearner
from .models import MCDropoutCNN
from .networks import CXRNet
from .preprocessing import CXRPreprocessor
from .simulation import simulate

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
