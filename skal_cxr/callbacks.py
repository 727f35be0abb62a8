"""skorch callbacks used by :class:`skal_cxr.MCDropoutCNN`."""

import math

from skorch.callbacks import Callback
from torch.optim.swa_utils import update_bn

__all__ = ["BatchNormRecalibration", "CosineAnnealing"]


class BatchNormRecalibration(Callback):
    """Recompute BatchNorm running statistics on the training set after training.

    During training, BatchNorm tracks an exponential moving average
    (momentum 0.1) of its batch statistics. After the few dozen optimizer
    steps of an active-learning round, that average still mixes in the
    early, untrained network, and the evaluation-mode predictions (which MC
    Dropout also uses) can collapse onto one class. This callback runs one
    extra forward pass over the training set with
    :func:`torch.optim.swa_utils.update_bn`, which replaces the running
    statistics by their plain average over the training batches of the
    final network. Networks without BatchNorm are left untouched.

    :class:`~skal_cxr.MCDropoutCNN` includes it by default under the name
    ``"bn_recalibration"``; ``callbacks__bn_recalibration=None`` turns it off.
    """

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if X is None:
            return
        loader = net.get_iterator(net.get_dataset(X, y), training=False)
        update_bn(loader, net.module_, device=net.device)


class CosineAnnealing(Callback):
    """Anneals the learning rate over each fit with a half cosine.

    The learning rate of epoch ``e`` (0-based) of an ``E``-epoch fit is
    ``lr * (1 + cos(pi * e / E)) / 2``, where ``E`` is the fit's epoch count,
    :meth:`~skal_cxr.MCDropoutCNN.epochs_for` (``max_epochs`` for a net
    without that method). The final weights are then a settled iterate
    rather than wherever the last constant-rate step left them, which
    steadies learning curves from round to round. Works with warm starts:
    each fit restarts the schedule from ``lr``.

    Notes
    -----
    skorch's ``LRScheduler`` with torch's ``CosineAnnealingLR`` cannot
    express this: its ``T_max`` is fixed when the callback is built, while
    here it is each fit's epoch count, which grows with the labeled set; a
    warm-started fit would resume from the last fit's annealed rate; and the
    recursive update of ``CosineAnnealingLR`` differs from the closed form in
    the last bits, which would change recorded simulations.
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        epochs_for = getattr(net, "epochs_for", None)
        self.n_epochs_ = epochs_for(len(X)) if epochs_for is not None else net.max_epochs
        self.first_epoch_ = len(net.history)

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1 - self.first_epoch_  # history has this epoch's row
        lr = net.lr * 0.5 * (1 + math.cos(math.pi * epoch / max(1, self.n_epochs_)))
        for group in net.optimizer_.param_groups:
            group["lr"] = lr
