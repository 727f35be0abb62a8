"""skorch callbacks used by :class:`skal_cxr.MCDropoutCNN`."""

from skorch.callbacks import Callback
from torch.optim.swa_utils import update_bn

__all__ = ["BatchNormRecalibration"]


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
