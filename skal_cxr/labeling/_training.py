"""Background training of a served project: one worker thread, observable state."""

import threading
import traceback

from skorch.callbacks import Callback

__all__ = ["TrainingState", "EpochProgress"]


class TrainingState:
    """Background training of a served project: one worker thread, observable state.

    ``notify(project)`` starts the worker when the latest batch is complete
    and no training is running; without :meth:`enable` (a project used from
    a notebook), it does nothing and :meth:`LabelingProject.train_round`
    trains in the caller's thread.

    Parameters
    ----------
    train : callable
        ``train(project)`` runs the pending round (the worker's job).
    """

    def __init__(self, train):
        self._train = train
        self._lock = threading.Lock()
        self._thread = None
        self.background = False
        self.state, self.round, self.progress, self.error = "idle", None, None, None

    def enable(self):
        """Train in a background thread from now on."""
        self.background = True

    def as_dict(self):
        """``state``, ``round`` and ``progress``, as ``GET /api/status`` shows them."""
        return {"state": self.state, "round": self.round, "progress": self.progress}

    def set(self, state, round_=None, progress=None):
        """Set the state (``round_=None`` keeps the round)."""
        self.state, self.progress = state, progress
        if round_ is not None:
            self.round = round_

    def notify(self, project):
        """A batch may be complete: start the worker (or have it look again)."""
        if not self.background:
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._again = True
                return
            self._again = False
            self._thread = threading.Thread(target=self._work, args=(project,),
                                            name="skal-cxr-training", daemon=True)
            self._thread.start()

    def _work(self, project):
        while True:
            try:
                self._train(project)
                self.error = None
            except Exception:  # keep serving; the status shows the error
                self.error = traceback.format_exc(limit=3)
                print(f"skal-cxr label: training failed:\n{self.error}", flush=True)
            finally:
                self.set("idle")
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False

    def join(self, timeout=None):
        """Wait for the worker (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


_STATES = {}  # TrainingState by key: a callback parameter must survive sklearn's clone


class EpochProgress(Callback):
    """Reports the fraction of a fit's epochs done to the :class:`TrainingState` ``key``.

    Parameters
    ----------
    key : str or None, default=None
        The key the state was registered with (:meth:`register`).
    n_epochs : int, default=1
        Epochs of the fit.
    """

    def __init__(self, key=None, n_epochs=1):
        self.key, self.n_epochs = key, n_epochs

    @staticmethod
    def register(key, state):
        """Make ``state`` the one callbacks with ``key`` report to."""
        _STATES[key] = state

    def on_epoch_end(self, net, **kwargs):
        state = _STATES.get(self.key)
        if state is not None:
            state.progress = min(1.0, (state.progress or 0.0) + 1.0 / max(1, self.n_epochs))
