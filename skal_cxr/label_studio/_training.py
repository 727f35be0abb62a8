"""Retraining the backend's network in a background thread, and reading it back."""

import logging
import threading

import numpy as np

from ._images import ImageError
from ._store import numeric_id

__all__ = ["TrainingMixin"]

logger = logging.getLogger(__name__)


class TrainingMixin:
    """The training part of :class:`~skal_cxr.label_studio.Backend`.

    Uses the backend's ``settings``, ``config``, ``store``, ``control``,
    ``fetcher()`` and its lock ``_lock``; sets ``_learner`` (the fitted
    learner) and clears ``_ranking`` (the cached order) after each training.
    """

    @property
    def is_training(self):
        """Whether a training thread runs."""
        return self._training is not None and self._training.is_alive()

    def _trainable(self):
        labels = self.store.consensus()
        ok = len(labels) >= self.settings.min_annotations and len(set(labels.values())) >= 2
        return labels if ok else None

    def _maybe_train(self, force=False):
        """Start a training thread when due; return whether one runs."""
        with self._lock:
            due = force or self.store.state["changes"] >= self.settings.retrain_every
            if not due or self._trainable() is None:
                return self.is_training
            if self.is_training:  # the running thread checks again when it ends
                self._train_again = self._train_again or force
                return True
            self._training = threading.Thread(target=self._train_loop, daemon=True)
            self._training.start()
            return True

    def wait(self, timeout=None):
        """Wait for the training thread (tests, a clean shutdown).

        Parameters
        ----------
        timeout : float or None, default=None
            Seconds.

        Returns
        -------
        finished : bool
            Whether no training runs any more.
        """
        thread = self._training
        if thread is not None:
            thread.join(timeout)
        return not self.is_training

    def _train_loop(self):
        while True:
            try:
                self.train_now()
            except Exception as exc:  # keep serving: the error is shown by /health
                logger.exception("training failed")
                self.last_error = f"training failed: {exc}"
            with self._lock:
                due = self.store.state["changes"] >= self.settings.retrain_every
                if not (self._train_again or due) or self._trainable() is None:
                    self._training = None
                    return
                self._train_again = False

    def train_now(self):
        """Train on the current consensus, in this thread; return the new version or None.

        Returns
        -------
        version : str or None
            ``None`` when there are fewer than ``min_annotations`` labels or
            one class only.
        """
        from ._engine import fit_model

        with self.store.lock:
            labels, changes = self._trainable(), self.store.state["changes"]
            tasks = dict(self.store.state["tasks"])
            control = self.control
            n_models = (self.store.state["model"] or {}).get("n_models", 0)
        if labels is None:
            return None
        ids = [i for i in sorted(labels, key=numeric_id) if i in tasks]
        X = self.fetcher().get_many([tasks[i] for i in ids])
        y = np.array([labels[i] for i in ids], dtype=np.int64)
        learner, fit_time = fit_model(self.config, X, y, len(control.labels))
        version = f"skal_cxr-{n_models + 1}"
        info = {
            "version": version,
            "n_models": n_models + 1,
            "n_annotations": len(ids),
            "labels": list(control.labels),
            "fit_time": fit_time,
        }
        self.store.save_model(learner.estimator_, info)
        with self._lock, self.store.lock:
            self.store.state["changes"] = max(0, self.store.state["changes"] - changes)
            self.store.save()
            self._learner, self._ranking = learner, None
        logger.info("trained %s on %d annotations in %.1f s", version, len(ids), fit_time)
        return version

    def _restore_model(self):
        from ._engine import restore_learner

        estimator = self.store.load_model()
        if estimator is None:
            return
        labels, tasks = self.store.consensus(), self.store.state["tasks"]
        ids = [i for i in sorted(labels, key=numeric_id) if i in tasks]
        try:
            X = self.fetcher().get_many([tasks[i] for i in ids])
        except ImageError:
            X = None
        y = np.array([labels[i] for i in ids], dtype=np.int64)
        self._learner = restore_learner(self.config, estimator, X, y)
