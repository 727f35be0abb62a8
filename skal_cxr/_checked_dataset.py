"""The torch ``Dataset`` whose items get the image checks (see ``_image_checks``).

Apart from :mod:`skal_cxr._image_checks` so that the array checks import
without torch; importable from ``_validation`` as before.
"""

import numbers

import numpy as np
import torch
from torch.utils.data import Dataset

from ._image_checks import _size, check_images, dataset_image, image_size_error

__all__ = ["CheckedDataset"]


class CheckedDataset(Dataset):
    """A Dataset whose items get the checks that arrays get.

    Each image goes through :func:`check_images` (NaN or infinity, shape,
    dtype; ``uint8`` / ``uint16`` scaled to ``[0, 1]``) and must have the
    size ``image_shape``; when training (``classes`` given) each label must
    be an integer code of one of the classes. Items may be an image alone,
    a 1-tuple or an ``(image, label, ...)`` tuple; they are returned as
    ``(image of shape (1, H, W), label code)``, the code 0 when predicting.
    Errors name the item, since a Dataset is checked as it is read.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
    classes : array-like or None, default=None
        The classes when training; ``None`` when predicting (labels ignored).
    image_shape : tuple of (int, int) or None, default=None
        The expected ``(height, width)``.
    trained : bool, default=True
        Whether ``image_shape`` is the network's (a prediction-time message)
        or the training set's first image (a mixed-sizes message).
    name : str, default="X"
    """

    def __init__(self, dataset, *, classes=None, image_shape=None, trained=True, name="X"):
        self.dataset = dataset
        self.classes = classes
        self.image_shape = image_shape
        self.trained = trained
        self.name = name

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = self.dataset[i]
        image = self.image(i, dataset_image(item))
        if self.classes is None:
            return image, 0
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(
                f"Training on a Dataset needs (image, label code) items; item {i} yields no label."
            )
        return image, self.label_code(i, item[1])

    def image(self, i, image):
        """Item ``i``'s image checked, as a float32 tensor of shape (1, H, W)."""
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        try:
            x = check_images(np.asarray(image)[np.newaxis], allow_dataset=False, name=self.name)
        except ValueError as exc:
            raise ValueError(f"{str(exc).rstrip('.')} (Dataset item {i}).") from None
        shape = x.shape[-2:]
        if self.image_shape is not None and tuple(shape) != tuple(self.image_shape):
            if self.trained:
                message = image_size_error(shape, self.image_shape, self.name).rstrip(".")
            else:
                message = (
                    f"{self.name}: Dataset item {i} is an image of size {_size(shape)}, "
                    f"but the others are {_size(self.image_shape)}; resize them to one "
                    "size"
                )
            raise ValueError(f"{message} (Dataset item {i}).")
        return torch.from_numpy(x[0])

    def label_code(self, i, label):
        """Item ``i``'s label as an int code of ``classes``."""
        value = label.item() if isinstance(label, (torch.Tensor, np.generic)) else label
        n = len(self.classes)
        integral = (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and float(value).is_integer()
        )
        if not integral or not 0 <= value < n:
            raise ValueError(
                f"Dataset item {i} has label code {value!r}; the codes of classes "
                f"{np.asarray(self.classes).tolist()} are 0 to {n - 1}."
            )
        return int(value)
