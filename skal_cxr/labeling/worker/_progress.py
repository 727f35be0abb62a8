"""A round's training-progress callback (skorch), imported by the worker when it trains.

Apart from :mod:`~skal_cxr.labeling.worker._process` so that the server
imports that module without skorch and torch. Checkpoints name the callback
by its path in ``_process`` (where it was defined, and where pickles still
find it), so the pickled bytes stay the same.
"""

from skorch.callbacks import Callback

from ._sinks import PROGRESS_SINKS

__all__ = ["_EpochProgress"]


class _EpochProgress(Callback):
    """Reports the fraction of a fit's epochs done to the progress sink ``key``.

    The sink is looked up at each epoch (a callable does not survive
    pickling into a checkpoint; a key does).

    Parameters
    ----------
    key : str or None, default=None
        The progress sink of :data:`~._sinks.PROGRESS_SINKS` to report to
        (``"*"`` of the worker process when the key has none).
    n_epochs : int, default=1
        The fit's number of epochs.
    """

    def __init__(self, key=None, n_epochs=1):
        self.key, self.n_epochs = key, n_epochs

    def on_epoch_end(self, net, **kwargs):
        """Report ``len(net.history) / n_epochs`` (at most 1) to the sink."""
        sink = PROGRESS_SINKS.get(self.key) or PROGRESS_SINKS.get("*")
        if sink is not None:
            sink(min(1.0, len(net.history) / max(1, self.n_epochs)))


# checkpoints pickle the callback as skal_cxr.labeling.worker._process._EpochProgress
_EpochProgress.__module__ = "skal_cxr.labeling.worker._process"
