"""The Monte Carlo Dropout classifier: a skorch ``NeuralNetClassifier`` for CXRs."""

import inspect
from contextlib import nullcontext
from functools import partial
import warnings

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.dataset import unpack_data
from skorch.utils import check_is_fitted, to_tensor
from sklearn.metrics import accuracy_score
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d
from torch.utils.data import Dataset

from ._lazy import LazyImageDataset, is_lazy_images
from ._mc import mc_dropout_mode, sample_head, split_mc
from .augment import resolve_augmentation
from .callbacks import BatchNormRecalibration
from ._random import batch_seed, torch_rng, torch_seed_from
from ._validation import (
    BATCH_SIZE,
    CheckedDataset,
    HasMethods,
    Integers,
    StrOptions,
    check_images,
    checked_images,
    check_int,
    check_params,
    encode_labels,
    image_size_error,
    validate_params,
)
from .networks import CXRNet

__all__ = ["MCDropoutCNN", "resolve_device", "training_epochs"]


def resolve_device(device):
    """``'auto'`` becomes ``'cuda'`` when a GPU is visible, else ``'cpu'``.

    Parameters
    ----------
    device : str, torch.device, int or None
        A device as skorch takes it, or ``"auto"``.

    Returns
    -------
    device : str, torch.device, int or None
        ``device``, with ``"auto"`` resolved.
    """
    if isinstance(device, str) and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@validate_params(
    {"n_images": [Integers(0)], "batch_size": BATCH_SIZE, "max_epochs": [Integers(0)],
     "min_train_steps": [Integers(0), None]},
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


def _renamed(n_mc_samples, n_samples):
    """``n_mc_samples``, or the deprecated ``n_samples`` given instead (with a warning)."""
    if isinstance(n_samples, str) and n_samples == "deprecated":
        return n_mc_samples
    if n_mc_samples is not None:
        raise TypeError("Pass n_mc_samples only; n_samples is its deprecated alias.")
    warnings.warn(
        "n_samples was renamed n_mc_samples in 0.1 (n_samples means a number of images "
        "elsewhere) and will be removed in 0.2.",
        FutureWarning,
        stacklevel=3,
    )
    return n_samples


class MCDropoutCNN(NeuralNetClassifier):
    """CNN classifier with Monte Carlo Dropout, as a scikit-learn estimator.

    A :class:`skorch.classifier.NeuralNetClassifier` whose predictions can be
    sampled from the approximate Bayesian posterior given by MC Dropout
    (Gal & Ghahramani, 2016): dropout stays active at prediction time while
    every other layer is in evaluation mode.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=CXRNet
        The network. When it is a class whose constructor takes
        ``n_classes``, that argument is filled in from the labels; other
        constructor arguments are routed with ``module__<name>``
        (for example ``module__dropout=0.3``, ``module__backbone="resnet18"``).
    criterion : torch criterion class, default=torch.nn.CrossEntropyLoss
        Loss on the module's logits. Class weights are passed as its
        ``weight`` argument.
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=1e-3
    max_epochs : int, default=15
        Epochs per ``fit`` (raised by ``min_train_steps`` for small sets).
    batch_size : int, default=32
        Used for training and prediction; ``-1`` puts all images in one
        batch.
    min_train_steps : int, default=100
        Lower bound on optimizer steps per ``fit``: with ``n`` images a fit
        runs ``max(max_epochs, ceil(min_train_steps / ceil(n / batch_size)))``
        epochs. The training budget thus grows with the labeled set
        (``max_epochs`` passes over it) but never falls below what a network
        needs to fit a few dozen images. ``0`` disables the floor.
    train_split : callable or None, default=None
        skorch's internal validation split; ``None`` trains on every labeled
        image, which is what small active-learning sets need.
    classes : array-like or None, default=None
        The label set, in the order of the output columns. Fix it when a
        labeled set may lack a class, as early active-learning rounds can.
        ``None`` takes the sorted unique labels seen by ``fit``.
    class_weight : {None, "balanced"} or dict, default=None
        Weights of the classes in the loss, recomputed from ``y`` at every
        ``fit`` (so each active-learning round is re-weighted). ``"balanced"``
        uses :func:`sklearn.utils.class_weight.compute_class_weight`; classes
        absent from ``y`` get weight 1 (they contribute no loss anyway).
    sampler : imbalanced-learn sampler, str or None, default=None
        Resamples the labeled set at every ``fit`` (so every active-learning
        round is rebalanced): any imbalanced-learn over-, under- or combined
        sampler, or its class name (``"RandomOverSampler"``) or an alias
        (``"random_over"``, ``"random_under"``, ``"smote"``). Samplers that
        select images resample their indices, so images of any shape work;
        samplers that synthesise (SMOTE) interpolate pixels. The sampler is
        cloned, and seeded with ``random_state`` when its own is unset. It
        combines with ``class_weight``, which is computed from the labeled
        set *before* resampling. Array inputs only (not a ``Dataset``).
    n_mc_samples : int, default=20
        Default number of Monte Carlo samples of :meth:`predict_proba_samples`.
    mc_predict : bool, default=False
        If True, :meth:`predict_proba` (and :meth:`predict`) return the mean
        of ``n_mc_samples`` MC samples instead of the deterministic output.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, augmentation and dropout
        masks in ``fit`` and the masks of MC prediction (drawn per
        prediction batch from ``(seed, batch number)``, so that any chunk
        of a pool can be scored separately with the same result). An int
        makes both reproducible; torch's global RNG state is left as it was.
    augment : None, "cxr" or callable, default=None
        Training-time augmentation, applied image by image to each
        training batch (never at prediction or MC scoring). ``"cxr"`` is
        :func:`~skal_cxr.augment.cxr_augmentation` (small affine and
        intensity changes, no horizontal flip); a callable maps a
        ``(1, H, W)`` float tensor to one of the same shape (a torchvision
        ``transforms.v2`` transform, for example).
    precision : {"float32", "bfloat16"}, default="float32"
        ``"bfloat16"`` runs the deterministic trunk of MC scoring and
        :meth:`embed` under bfloat16 autocast (the stochastic head stays
        float32) and, on CUDA, in ``channels_last`` memory format: about
        twice the throughput on recent GPUs, with scores that agree with
        float32 to about 1e-2.
    scheduler : str or None, default=None
        Address of a Dask scheduler (``"tcp://host:8786"``). Pools scored
        by :meth:`reduce_proba_samples` (every strategy's path for pools
        over 4096 images) are then cut into chunks scored on the cluster's
        workers: the fitted model is scattered to them once per call. With
        an int ``random_state`` the results are identical to local scoring.
        Needs ``dask.distributed``.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    verbose : int, default=0
        skorch's training log: ``0`` prints nothing, ``1`` a table of epochs.
    iterator_train__shuffle : bool, default=True
        Shuffle the training images at every epoch.
    **kwargs
        Any other :class:`skorch.NeuralNet` argument, including
        ``module__*``, ``optimizer__*``, ``callbacks`` and ``warm_start``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The label set.
    class_weight_ : ndarray of shape (n_classes,) or None
        Loss weights used by the last ``fit``.
    sampler_ : sampler or None
        The fitted sampler of the last ``fit``.
    n_epochs_ : int
        Epochs of the last ``fit`` (:func:`training_epochs` of the images
        it trained on, after resampling).
    module_ : torch.nn.Module
        The trained network.
    image_shape_ : tuple of (int, int)
        The ``(height, width)`` of the training images. Predicting on
        another size raises: put a
        :class:`~skal_cxr.CXRPreprocessor` with ``size`` before
        the network in a Pipeline to resize.

    Notes
    -----
    After training, BatchNorm running statistics are recomputed over the
    training set (:class:`~skal_cxr.callbacks.BatchNormRecalibration`), which
    keeps evaluation-mode predictions stable after the short trainings of
    active-learning rounds; ``callbacks__bn_recalibration=None`` disables it.

    Memory-mapped pools (:class:`numpy.memmap`, such as the images of an
    :class:`~skal_cxr.datasets.ImageCache`, or
    :class:`~skal_cxr.datasets.ImageRows` views of them) are read batch by
    batch and converted to float32 one batch at a time, in ``fit`` and in
    prediction: memory does not grow with the pool. On CUDA their batches
    are loaded into pinned memory; ``iterator_valid__num_workers=4`` adds
    DataLoader worker processes for reading and decoding.

    Monte Carlo sampling runs the deterministic part of the network (every
    layer before the first dropout layer) once per batch and samples only
    the stochastic head, all samples in one vectorised call. This applies to
    modules with an ``mc_split()`` method (such as
    :class:`~skal_cxr.networks.CXRNet`) and to ``nn.Sequential`` modules; any
    other module falls back to ``n_mc_samples`` full forward passes with
    dropout on, which gives the same distribution more slowly.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr import MCDropoutCNN
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((40, 16, 16), dtype=np.float32)
    >>> y = np.repeat(["normal", "diseased"], 20)
    >>> net = MCDropoutCNN(max_epochs=2, random_state=0).fit(X, y)
    >>> net.predict_proba_samples(X[:5], n_mc_samples=10).shape
    (10, 5, 2)
    """

    # the parameters skal_cxr adds or gives a meaning to; skorch's others are skorch's
    _parameter_constraints = {
        "max_epochs": [Integers(0)],
        "batch_size": BATCH_SIZE,
        "min_train_steps": [Integers(0), None],
        "train_split": [callable, None],
        "classes": ["array-like", None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "sampler": [HasMethods(["fit_resample"]), str, None],  # names: resolve_sampler
        "n_mc_samples": [Integers(1)],
        "mc_predict": ["boolean"],
        "random_state": ["random_state"],
        "augment": [StrOptions({"cxr"}), callable, None],
        "precision": [StrOptions({"float32", "bfloat16"})],
        "scheduler": [str, None],
        "device": [str, torch.device, Integers(0), None],  # an int is a CUDA index
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        module=CXRNet,
        *,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=15,
        batch_size=32,
        min_train_steps=100,
        train_split=None,
        classes=None,
        class_weight=None,
        sampler=None,
        n_mc_samples=20,
        mc_predict=False,
        random_state=None,
        augment=None,
        precision="float32",
        scheduler=None,
        device="auto",
        verbose=0,
        iterator_train__shuffle=True,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            classes=classes,
            device=device,
            verbose=verbose,
            iterator_train__shuffle=iterator_train__shuffle,
            **kwargs,
        )
        self.min_train_steps = min_train_steps
        self.class_weight = class_weight
        self.sampler = sampler
        self.n_mc_samples = n_mc_samples
        self.mc_predict = mc_predict
        self.random_state = random_state
        self.augment = augment
        self.precision = precision
        self.scheduler = scheduler

    # -- device="auto": skorch reads ``self.device`` everywhere; resolve on read
    # and keep the value the user gave for get_params / clone.
    @property
    def device(self):
        return resolve_device(self.__dict__.get("_device_param", "cpu"))

    @device.setter
    def device(self, value):
        self.__dict__["_device_param"] = value

    def __getstate__(self):
        state = super().__getstate__()
        state["device"] = self.device  # skorch maps CUDA tensors with it on load
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.pop("device", None)  # the property reads _device_param

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        params["device"] = self.__dict__.get("_device_param", "cpu")
        params.pop("_device_param", None)
        return params

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # images of shape (n_images, H, W) or (n_images, 1, H, W), not tables
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    @property
    def _default_callbacks(self):
        return [*super()._default_callbacks, ("bn_recalibration", BatchNormRecalibration())]

    # -- initialisation hooks ------------------------------------------------
    def get_params_for(self, prefix):
        params = super().get_params_for(prefix)
        if prefix == "module" and "n_classes" not in params and self._module_takes_n_classes():
            classes = self.__dict__.get("classes_inferred_", self.classes)
            if classes is not None:
                params["n_classes"] = len(classes)
        if prefix == "criterion" and getattr(self, "class_weight_", None) is not None:
            if "weight" in params:
                raise ValueError(
                    "Set either class_weight or criterion__weight, not both."
                )
            params["weight"] = torch.as_tensor(self.class_weight_, dtype=torch.float32)
        if prefix in ("iterator_train", "iterator_valid") and self._on_cuda():
            params.setdefault("pin_memory", True)
        return params

    def _on_cuda(self):
        return torch.device(self.device).type == "cuda"

    def _module_takes_n_classes(self):
        if not inspect.isclass(self.module):
            return False
        return "n_classes" in inspect.signature(self.module).parameters

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
            X = CheckedDataset(X, classes=training_classes, image_shape=trained,
                               trained=training_classes is None)
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

    # -- fitting ---------------------------------------------------------------
    def fit(self, X, y=None, **fit_params):
        """Train the network from scratch (or continue, with ``warm_start=True``).

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset
            ``uint8`` images are scaled to ``[0, 1]``. A torch ``Dataset``
            must yield ``(image, label_code)`` pairs with codes indexing
            ``classes``, which must then be given.
        y : array-like of shape (n_images,)
            Labels: integers or strings.
        **fit_params : dict
            Passed to skorch's ``fit``.

        Returns
        -------
        self : MCDropoutCNN
        """
        check_params(self)
        X, y_codes, classes = self._validate_training_data(X, y)
        warm = bool(self.warm_start and self.initialized_)
        self.image_shape_ = self._check_image_shape(X, warm, classes)
        transform = resolve_augmentation(self.augment)
        # (wrapped: skorch reserves attributes holding torch modules for its own)
        self.augment_ = None if transform is None else partial(_apply_per_image, transform)
        self.classes_inferred_ = classes
        self.class_weight_ = self._compute_class_weight(y_codes, len(classes))
        X, y_codes = self._resample(X, y_codes)
        if warm:
            self.initialize_criterion()
        fit_params.setdefault("epochs", self.epochs_for(len(X)))
        self.n_epochs_ = fit_params["epochs"]
        # skorch's fit calls partial_fit, which must not encode the codes again;
        # these flags end in "_" so that they never show in get_params or repr
        self._fitting_codes_ = self._params_checked_ = True
        self._training_classes_ = classes
        try:
            with torch_rng(self.random_state, self.device), checked_images(X):
                return super().fit(X, y_codes, **fit_params)
        finally:
            del self._fitting_codes_, self._params_checked_
            del self._training_classes_

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue training on ``(X, y)`` for ``max_epochs`` epochs.

        The label set and class weights of the last ``fit`` are kept; an
        untrained net is fitted instead.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset
            Images of the size the network was trained on.
        y : array-like of shape (n_images,)
            Labels among ``classes_``.
        classes : None
            Ignored: the label set is the last ``fit``'s ``classes_``.
        **fit_params : dict
            Passed to skorch's ``partial_fit``.

        Returns
        -------
        self : MCDropoutCNN
        """
        if self.__dict__.get("_fitting_codes_", False):
            return super().partial_fit(X, y, classes=classes, **fit_params)
        if not self.initialized_:
            return self.fit(X, y, **fit_params)
        check_params(self)
        if not isinstance(X, Dataset):
            X = X if is_lazy_images(X) else check_images(X)
            y = encode_labels(y, self.classes_)
        self._check_image_shape(X, warm=True, classes=self.classes_)
        self._training_classes_ = self.classes_
        self._params_checked_ = True
        try:
            with checked_images(X):
                return super().partial_fit(X, y, classes=classes, **fit_params)
        finally:
            del self._training_classes_, self._params_checked_

    def train_step_single(self, batch, **fit_params):
        augment = getattr(self, "augment_", None)
        if augment is not None:
            Xi, yi = unpack_data(batch)
            Xi = augment(Xi)
            batch = (Xi, yi)
        return super().train_step_single(batch, **fit_params)

    def _resample(self, X, y_codes):
        from ._sampling import resample_labeled, resolve_sampler

        sampler = resolve_sampler(self.sampler)
        self.sampler_ = sampler
        if sampler is None:
            return X, y_codes
        if isinstance(X, Dataset):
            raise ValueError("sampler needs images as an array, not a Dataset.")
        X, y_codes, self.sampler_ = resample_labeled(sampler, X, y_codes, self.random_state)
        return X, y_codes

    def epochs_for(self, n_images):
        """Epochs that :meth:`fit` runs on ``n_images`` images.

        :func:`training_epochs` with this estimator's ``batch_size``,
        ``max_epochs`` and ``min_train_steps``: the one epoch rule that the
        learning-rate schedule and the simulator also follow.

        Parameters
        ----------
        n_images : int
            Size of the training set.

        Returns
        -------
        epochs : int
            At least ``max_epochs``.
        """
        return training_epochs(n_images, self.batch_size, self.max_epochs, self.min_train_steps)

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
            raise ValueError(
                f"X and y have different lengths: {len(X)} images, {len(y)} labels."
            )
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

    # -- prediction ------------------------------------------------------------
    def predict_proba(self, X):
        """Class probabilities: the deterministic output, or the MC mean.

        Returns the mean of ``n_mc_samples`` Monte Carlo samples when
        ``mc_predict=True`` and the output with dropout off otherwise.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset

        Returns
        -------
        probas : ndarray of shape (n_images, n_classes), dtype float32
        """
        check_is_fitted(self, ["module_"])
        if self.mc_predict:
            return self.predict_proba_samples(X).mean(axis=0)
        return super().predict_proba(X).astype(np.float32, copy=False)

    def predict(self, X):
        """Most probable label of each image (see :meth:`predict_proba`).

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset
            Images.

        Returns
        -------
        y_pred : ndarray of shape (n_images,)
            Labels from ``classes_``.
        """
        codes = self.predict_proba(X).argmax(axis=1)
        return self.classes_[codes]

    def score(self, X, y, sample_weight=None):
        """Accuracy of :meth:`predict` on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset
            Images.
        y : array-like of shape (n_images,)
            Their true labels.
        sample_weight : array-like of shape (n_images,) or None, default=None
            Weights of the images in the accuracy.

        Returns
        -------
        score : float
            The fraction of correctly predicted images (weighted).

        Raises
        ------
        ValueError
            If ``y`` holds labels that are not among ``classes_``.
        """
        check_is_fitted(self, ["module_"])
        encode_labels(y, self.classes_)  # raises for unseen labels
        return accuracy_score(np.ravel(y), self.predict(X), sample_weight=sample_weight)

    def predict_proba_samples(self, X, n_mc_samples=None, *, n_samples="deprecated"):
        """Monte Carlo Dropout samples of the class probabilities.

        Dropout layers are active; every other layer is in evaluation mode
        (BatchNorm keeps its running statistics) and gradients are off.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset
        n_mc_samples : int, default=None
            Number of MC samples; ``None`` uses the ``n_mc_samples``
            parameter.
        n_samples : int
            Deprecated alias of ``n_mc_samples`` (``n_samples`` means a
            number of images elsewhere); it will be removed in 0.3.

        Returns
        -------
        probas : ndarray of shape (n_mc_samples, n_images, n_classes), dtype float32
            Reproducible across calls when ``random_state`` is an int.

        See Also
        --------
        reduce_proba_samples : Per-image statistics of the samples in bounded memory.
        """
        n_mc_samples = _renamed(n_mc_samples, n_samples)
        return torch.cat(list(self._iter_proba_samples(X, n_mc_samples)), dim=1).numpy()

    def reduce_proba_samples(self, X, funcs, n_mc_samples=None, chunk_size=4096, *,
                             n_samples="deprecated"):
        """Per-image statistics of MC samples, computed chunk by chunk.

        Equivalent to ``[f(self.predict_proba_samples(X, n_mc_samples)) for f in
        funcs]`` for functions that treat images independently (every
        acquisition score does), but only ``chunk_size`` images' samples are
        held at a time, so memory does not grow with
        ``n_images * n_mc_samples * n_classes``. The dropout masks are the ones
        :meth:`predict_proba_samples` would draw: with an int ``random_state``
        the results are identical.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset
        funcs : sequence of callable
            Each maps samples of shape ``(n_mc_samples, n_chunk, n_classes)`` to
            an array whose first axis has length ``n_chunk``.
        n_mc_samples : int, default=None
            Number of MC samples; ``None`` uses the ``n_mc_samples``
            parameter.
        chunk_size : int, default=4096
            Images per chunk (rounded up to whole prediction batches). With
            a ``scheduler``, each chunk is one task on the Dask cluster.
        n_samples : int
            Deprecated alias of ``n_mc_samples``; it will be removed in 0.3.

        Returns
        -------
        results : list of ndarray
            One array per function, concatenated over chunks along axis 0.
        """
        n_mc_samples = _renamed(n_mc_samples, n_samples)
        chunk_size = check_int(chunk_size, "chunk_size")
        check_is_fitted(self, ["module_"])
        if self.scheduler is not None:
            from ._dask import reduce_on_dask

            return reduce_on_dask(self, X, funcs, n_mc_samples, chunk_size)
        return self._reduce_local(X, funcs, n_mc_samples, chunk_size)

    def _reduce_local(self, X, funcs, n_mc_samples, chunk_size, first_batch=0):
        results = [[] for _ in funcs]
        pending, n_pending = [], 0

        def flush():
            chunk = torch.cat(pending, dim=1).numpy()
            for out, func in zip(results, funcs):
                out.append(np.asarray(func(chunk)))
            pending.clear()

        for probas in self._iter_proba_samples(X, n_mc_samples, first_batch):
            pending.append(probas)
            n_pending += probas.shape[1]
            if n_pending >= chunk_size:
                flush()
                n_pending = 0
        if pending:
            flush()
        return [np.concatenate(out, axis=0) for out in results]

    def _iter_proba_samples(self, X, n_mc_samples, first_batch=0):
        """Yield MC samples of successive batches, shape (n_mc_samples, B, n_classes).

        One dropout-mode, no-grad and seeded-RNG context spans the whole
        iteration, so consume the generator fully inside one public call.
        With a seed, batch ``b`` (counted from ``first_batch``) draws its
        masks from ``batch_seed(seed, b)``: scoring a pool in chunks that
        start at batch boundaries gives the same samples as scoring it whole.
        """
        check_is_fitted(self, ["module_"])
        n_mc_samples = check_int(
            self.n_mc_samples if n_mc_samples is None else n_mc_samples, "n_mc_samples"
        )
        nonlinearity = self._get_predict_nonlinearity()
        split = split_mc(self.module_)
        seed = torch_seed_from(self.random_state)
        with mc_dropout_mode(self.module_), torch.inference_mode(), torch_rng(
            seed, self.device
        ):
            for b, Xi in enumerate(self._batches(X), start=first_batch):
                if seed is not None:
                    torch.manual_seed(batch_seed(seed, b))
                if split is None:
                    with self._autocast():
                        probas = torch.stack(
                            [nonlinearity(self.module_(Xi)).float() for _ in range(n_mc_samples)]
                        )
                else:
                    trunk, head = split
                    with self._autocast():
                        z = trunk(Xi)
                    probas = sample_head(head, z.float(), n_mc_samples, nonlinearity)
                yield probas.float().cpu()

    def _autocast(self):
        """bfloat16 autocast when ``precision="bfloat16"``, else nothing."""
        if self.precision == "float32":
            return nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)

    def embed(self, X):
        """Output of the deterministic trunk (the features the head sees).

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset

        Returns
        -------
        embeddings : ndarray of shape (n_images, n_features), dtype float32

        Raises
        ------
        TypeError
            If the module cannot be split into trunk and head.
        """
        check_is_fitted(self, ["module_"])
        split = split_mc(self.module_)
        if split is None:
            raise TypeError(
                f"{type(self.module_).__name__} cannot be split into a deterministic "
                "trunk and a dropout head: give it an mc_split() method or use an "
                "nn.Sequential."
            )
        trunk = split[0]
        was_training = self.module_.training
        self.module_.eval()
        try:
            with torch.inference_mode(), self._autocast():
                out = [trunk(Xi).flatten(1).float().cpu() for Xi in self._batches(X)]
        finally:
            self.module_.train(was_training)
        return torch.cat(out).numpy()

    def _batches(self, X):
        """Input tensors of successive prediction batches, on ``self.device``."""
        dataset = self.get_dataset(X)
        channels_last = self.precision == "bfloat16" and self._on_cuda()
        if channels_last:
            self.module_.to(memory_format=torch.channels_last)
        for batch in self.get_iterator(dataset, training=False):
            Xi = unpack_data(batch)[0]
            if channels_last:
                Xi = Xi.contiguous(memory_format=torch.channels_last)
            yield to_tensor(Xi, device=self.device)


def _apply_per_image(transform, X):
    """``transform`` applied to each image of a batch (v2 draws one set per call)."""
    return torch.stack([transform(x) for x in X])

