"""Training-time augmentation of chest X-rays (torchvision transforms v2)."""

from torchvision.transforms import v2

__all__ = ["cxr_augmentation", "resolve_augmentation"]


def cxr_augmentation(
    degrees=5.0, translate=0.05, scale=0.05, brightness=0.1, contrast=0.1, hflip=False
):
    """Small geometric and intensity changes suited to chest X-rays.

    A random affine map (rotation, shift, zoom; the uncovered border is
    filled with 0), then random brightness and contrast. Horizontal flips
    are off by default: the anatomy is not left-right symmetric (the heart
    is on the left), so a flipped film is not a plausible CXR.

    Parameters
    ----------
    degrees : float, default=5.0
        Largest rotation, in degrees either way.
    translate : float, default=0.05
        Largest shift, as a fraction of the height and width.
    scale : float, default=0.05
        Zoom in ``[1 - scale, 1 + scale]``.
    brightness, contrast : float, default=0.1
        Factors drawn from ``[1 - value, 1 + value]``; results are clipped to
        ``[0, 1]``.
    hflip : bool, default=False
        Also flip horizontally with probability 0.5.

    Returns
    -------
    transform : torchvision.transforms.v2.Compose
        Maps a float tensor ``(1, H, W)`` in ``[0, 1]`` to one of the same
        shape; random draws come from torch's global generator (seeded by
        :class:`~skal_cxr.MCDropoutCNN` during ``fit``).

    Examples
    --------
    >>> import torch
    >>> from skal_cxr.augment import cxr_augmentation
    >>> cxr_augmentation()(torch.rand(1, 32, 32)).shape
    torch.Size([1, 32, 32])
    """
    steps = [v2.RandomHorizontalFlip()] if hflip else []
    steps += [
        v2.RandomAffine(
            degrees=degrees, translate=(translate, translate), scale=(1 - scale, 1 + scale)
        ),
        v2.ColorJitter(brightness=brightness, contrast=contrast),
    ]
    return v2.Compose(steps)


def resolve_augmentation(augment):
    """The transform of an estimator's ``augment`` parameter (``None`` stays ``None``)."""
    if augment is None:
        return None
    if isinstance(augment, str):
        if augment != "cxr":
            raise ValueError(f"augment must be None, 'cxr' or a callable; got {augment!r}.")
        return cxr_augmentation()
    if not callable(augment):
        raise ValueError(f"augment must be None, 'cxr' or a callable; got {augment!r}.")
    return augment
