"""The Monte Carlo Dropout classifier: a skorch ``NeuralNetClassifier`` for CXRs."""

import inspect
import os
from functools import partial

import numpy as np
import torch
from sklearn.metrics import accuracy_score
from skorch import NeuralNetClassifier
from skorch.dataset import unpack_data
from skorch.utils import check_is_fitted
from torch.utils.data import Dataset

from ._device import _AutoDeviceMixin, resolve_device
from ._epochs import training_epochs
from ._lazy import is_lazy_images
from ._mc_sampling import _MCSamplingMixin
from ._model_inputs import _InputChecksMixin
from ._random import torch_rng
from ._validation import (
    BATCH_SIZE,
    HasMethods,
    Integers,
    StrOptions,
    check_images,
    check_params,
    checked_images,
    encode_labels,
)
from .augment import resolve_augmentation
from .callbacks import BatchNormRecalibration
from .networks import CXRNet, load_trunk_weights

__all__ = ["MCDropoutCNN", "resolve_device", "training_epochs"]


class MCDropoutCNN(_MCSamplingMixin, _InputChecksMixin, _AutoDeviceMixin, NeuralNetClassifier):
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
    encoder_weights : dict, path-like or None, default=None
        Start the network's deterministic trunk (per-image standardisation
        and ``features`` of :class:`~skal_cxr.networks.CXRNet`) from these
        weights at every fresh initialisation, instead of a random start:
        typically ``ContrastiveEncoder(...).fit(X_pool).trunk_state_dict()``,
        a self-supervised encoder trained on the unlabeled pool (a few CPU
        minutes), or a file saved from it with :func:`torch.save`. The
        encoder must have the network's ``width`` and ``n_blocks``; the
        dropout head stays randomly initialised and every layer is trained.
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
        "encoder_weights": [dict, str, os.PathLike, None],
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
        encoder_weights=None,
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
        self.encoder_weights = encoder_weights
        self.scheduler = scheduler

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
                raise ValueError("Set either class_weight or criterion__weight, not both.")
            params["weight"] = torch.as_tensor(self.class_weight_, dtype=torch.float32)
        if prefix in ("iterator_train", "iterator_valid") and self._on_cuda():
            params.setdefault("pin_memory", True)
        return params

    def initialize_module(self):
        """Build ``module_``; start its trunk from ``encoder_weights`` when given.

        The initial weights follow from ``random_state``: inside ``fit`` from
        the fit's seeded random stream, and for a network initialised on its
        own (``initialize()``, e.g. to embed a pool before any label) from a
        stream seeded here, leaving the caller's RNG as it was.

        Returns
        -------
        self : MCDropoutCNN
            With ``module_`` initialised.
        """
        if self.__dict__.get("_fitting_codes_", False):
            super().initialize_module()
        else:
            with torch_rng(self.random_state, self.device):
                super().initialize_module()
        if self.encoder_weights is not None:
            load_trunk_weights(self.module_, self.encoder_weights)
        return self

    def _module_takes_n_classes(self):
        if not inspect.isclass(self.module):
            return False
        return "n_classes" in inspect.signature(self.module).parameters

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


def _apply_per_image(transform, X):
    """``transform`` applied to each image of a batch (v2 draws one set per call)."""
    return torch.stack([transform(x) for x in X])
