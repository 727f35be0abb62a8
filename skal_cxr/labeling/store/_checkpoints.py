"""The models of a project: one checkpoint per round, kept in memory once loaded."""

import threading

from ..._atomic import replacing
from .._settings import checkpoint_path

__all__ = ["ModelStore"]


class ModelStore:
    """The trained networks of a project folder, by round.

    Parameters
    ----------
    path : path-like
        The project folder (checkpoints are in its ``checkpoints/``).
    """

    def __init__(self, path):
        self.path = path
        self._models = {}
        self._lock = threading.Lock()

    def save(self, round_, estimator):
        """Write the checkpoint of ``round_`` (atomically and durably)."""
        import joblib

        scheduler = getattr(estimator, "scheduler", None)
        if scheduler is not None:  # a setting of this session, not of the model
            estimator.set_params(scheduler=None)
        try:
            with replacing(checkpoint_path(self.path, round_)) as tmp:
                joblib.dump(estimator, tmp)
        finally:
            if scheduler is not None:
                estimator.set_params(scheduler=scheduler)

    def remember(self, round_, estimator):
        """Keep ``estimator`` as the model of ``round_`` (no file is written)."""
        with self._lock:
            self._models[round_] = estimator

    def get(self, round_):
        """The model of ``round_``, loaded from its checkpoint once; None if there is none."""
        with self._lock:
            model = self._models.get(round_)
        if model is not None:
            return model
        path = checkpoint_path(self.path, round_)
        if not path.is_file():
            return None
        import joblib

        model = joblib.load(path)
        self.remember(round_, model)
        return model
