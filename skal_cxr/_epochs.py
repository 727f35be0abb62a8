"""The package's one epoch rule: epochs of a fit from the size of the training set."""

from ._validation import BATCH_SIZE, Integers, validate_params

__all__ = ["training_epochs"]


@validate_params(
    {
        "n_images": [Integers(0)],
        "batch_size": BATCH_SIZE,
        "max_epochs": [Integers(0)],
        "min_train_steps": [Integers(0), None],
    },
    prefer_skip_nested_validation=True,
)
def training_epochs(n_images, batch_size, max_epochs, min_train_steps):
    """Epochs of one fit: ``max_epochs``, raised to reach ``min_train_steps`` steps.

    ``max(max_epochs, ceil(min_train_steps / ceil(n_images / batch_size)))``:
    the training budget grows with the labeled set, with a floor of optimizer
    steps for small ones. ``batch_size=-1`` means one batch per epoch. This
    is the package's one epoch rule: :meth:`MCDropoutCNN.epochs_for` applies
    it, and the learning-rate schedule and the simulator call that.

    Parameters
    ----------
    n_images : int
        Size of the training set.
    batch_size : int
        Images per optimizer step, or -1 for the whole set.
    max_epochs : int
        Passes over the training set.
    min_train_steps : int or None
        Floor of optimizer steps; ``0`` or ``None`` disables it.

    Returns
    -------
    epochs : int
        At least ``max_epochs``.

    Examples
    --------
    >>> training_epochs(40, 32, max_epochs=5, min_train_steps=150)
    75
    >>> training_epochs(2000, 32, max_epochs=5, min_train_steps=150)
    5
    """
    steps = min_train_steps or 0
    batch = n_images if batch_size == -1 else batch_size
    batches_per_epoch = max(1, -(-int(n_images) // int(batch)))
    return int(max(max_epochs, -(-int(steps) // batches_per_epoch)))
