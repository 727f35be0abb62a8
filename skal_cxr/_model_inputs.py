"""Input checks of :class:`~skal_cxr.MCDropoutCNN`: training data, image shapes, class weights."""

import numpy as np
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d
from torch.utils.data import Dataset

from ._lazy import is_lazy_images
from ._lazy_dataset import LazyImageDataset
from ._validation import (
    CheckedDataset,
    check_images,
    check_params,
    encode_labels,
    image_size_error,
)


class _InputChecksMixin:
    """skorch's data hooks, and the checks of the images and labels given to ``fit``."""

    def check_data(self, X, y):
        # Labels were validated and encoded by ``fit``; the classes are not
        # re-inferred from the integer codes.
        if y is None and not isinstance(X, Dataset):
            raise ValueError("y is None: pass labels, or a Dataset yielding (image, label).")

    def get_dataset(self, X, y=None):
        if not self.__dict__.get("_params_checked_", False):  # (fit checked them)
            check_params(self)  # (prediction after set_params too)
        training_classes = self.__dict__.get("_training_classes_")
        trained = getattr(self, "image_shape_", None)
        if is_lazy_images(X):
            if trained is not None and tuple(X.shape[-2:]) != trained:
                raise ValueError(image_size_error(X.shape[-2:], trained))
            return LazyImageDataset(X, y)
        if isinstance(X, CheckedDataset):
            pass
        elif isinstance(X, Dataset):
            X = CheckedDataset(
                X, classes=training_classes, image_shape=trained, trained=training_classes is None
            )
        else:
            X = check_images(X)
            if trained is not None and X.shape[-2:] != trained:
                raise ValueError(image_size_error(X.shape[-2:], trained))
        return super().get_dataset(X, y)

    def _check_image_shape(self, X, warm, classes):
        """``(height, width)`` of the images; a warm start must keep it.

        A Dataset's first item is checked in full (image and label) before
        any training; the others are checked as training reads them.
        """
        if isinstance(X, Dataset):
            shape = tuple(CheckedDataset(X, classes=classes)[0][0].shape[-2:])
        else:
            shape = tuple(X.shape[-2:])
        trained = getattr(self, "image_shape_", None)
        if warm and trained is not None and shape != trained:
            raise ValueError(image_size_error(shape, trained))
        return shape

    def _resample(self, X, y_codes):
        from ._resampling import resample_labeled, resolve_sampler

        sampler = resolve_sampler(self.sampler)
        self.sampler_ = sampler
        if sampler is None:
            return X, y_codes
        if isinstance(X, Dataset):
            raise ValueError("sampler needs images as an array, not a Dataset.")
        X, y_codes, self.sampler_ = resample_labeled(sampler, X, y_codes, self.random_state)
        return X, y_codes

    def _validate_training_data(self, X, y):
        X = X if is_lazy_images(X) else check_images(X)
        if isinstance(X, Dataset):
            if y is not None:
                raise ValueError("Pass labels inside the Dataset, not as y.")
            if self.classes is None:
                raise ValueError("Training on a Dataset needs the `classes` parameter.")
            classes = np.asarray(self.classes)
            y_codes = None
            if self.class_weight is not None:  # (checks every item before training)
                checked = CheckedDataset(X, classes=classes)
                y_codes = np.asarray([checked[i][1] for i in range(len(X))])
            return X, y_codes, classes
        if y is None:
            raise ValueError("y is None: labels are needed to fit MCDropoutCNN.")
        y = column_or_1d(y, warn=False)
        check_classification_targets(y)
        if len(y) != len(X):
            raise ValueError(f"X and y have different lengths: {len(X)} images, {len(y)} labels.")
        if self.classes is not None:
            classes = np.asarray(self.classes)
            if len(np.unique(classes)) != len(classes):
                raise ValueError(f"classes has duplicates: {classes.tolist()}.")
        else:
            classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"Need at least 2 classes to train a classifier; got {classes.tolist()}. "
                "Set `classes` when the labeled set may lack a class."
            )
        return X, encode_labels(y, classes), classes

    def _compute_class_weight(self, y_codes, n_classes):
        if self.class_weight is None:
            return None
        codes = np.arange(n_classes)
        if isinstance(self.class_weight, dict):
            classes = self.classes_
            unknown = set(self.class_weight) - set(classes.tolist())
            if unknown:
                raise ValueError(
                    f"class_weight names labels that are not classes: {sorted(unknown)}."
                )
            return np.array([float(self.class_weight.get(c, 1.0)) for c in classes.tolist()])
        present = np.unique(y_codes)
        weights = np.ones(n_classes)
        weights[present] = compute_class_weight("balanced", classes=present, y=y_codes)
        return weights[codes]
