"""A Monte Carlo Dropout head on a frozen view of the pool.

With a good label-free view of the pool (an encoder trained on the unlabeled
images, or a pretrained backbone), a small classifier on its features learns
from a few labels in a second, and MC Dropout on that head alone gives the
uncertainty the strategies need (Gupte et al., 2024). The encoder is fitted
once, outside the active-learning loop, and frozen; its features are
computed once per image (:func:`~skal_cxr.embeddings.memoized_transform`).
"""

import copy
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._validation import HasMethods, Integers, Interval, StrOptions, check_images, check_params
from .embeddings import PixelPCA, is_fitted, memoized_transform
from .heads import MCDropoutHead

__all__ = ["FrozenViewClassifier"]

#: The parameters of the head, passed to :class:`~skal_cxr.heads.MCDropoutHead`.
HEAD_PARAMS = (
    "hidden_units",
    "dropout",
    "input_dropout",
    "n_steps",
    "batch_size",
    "lr",
    "weight_decay",
    "classes",
    "class_weight",
    "n_mc_samples",
    "mc_predict",
    "random_state",
)


class _TunedView:
    """A fine-tuned copy of an encoder's feature module, as a fitted transformer."""

    def __init__(self, module):
        self.module_ = module.eval()

    def transform(self, X):
        X = torch.from_numpy(np.ascontiguousarray(check_images(X, allow_dataset=False)))
        with torch.inference_mode():
            return torch.cat([self.module_(c).flatten(1) for c in X.split(256)]).numpy()


class FrozenViewClassifier(ClassifierMixin, BaseEstimator):
    """An MC Dropout head trained on the features of a frozen encoder.

    ``fit(X, y)`` computes the encoder's features of the labeled images
    (once per image: they are remembered for the life of the fitted
    encoder) and trains only a :class:`~skal_cxr.heads.MCDropoutHead` on
    them; the encoder's weights are never changed.
    :meth:`predict_proba_samples` samples the head alone, on features
    computed once per image, so a query over a pool of thousands of images
    costs the head's forward passes, not the encoder's. With ``fine_tune``
    and at least ``fine_tune_from`` labels, a copy of the encoder is trained
    with the head instead.

    The encoder is the view of the whole unlabeled pool: fit it beforehand
    (``ContrastiveEncoder().fit(X_pool)``, or
    :func:`~skal_cxr.embeddings.cached_fit` to train it once per pool). A
    fitted encoder survives :func:`~sklearn.base.clone` as the same object,
    so :class:`~sklearn.model_selection.GridSearchCV` over the head's
    parameters and every round of an :class:`~skal_cxr.ActiveLearner` reuse
    it without retraining (as :class:`sklearn.frozen.FrozenEstimator`, which
    is also accepted, does). An unfitted encoder is cloned and fitted on the
    images given to ``fit`` (the labeled ones only).

    Parameters
    ----------
    encoder : transformer or None, default=None
        Maps images ``(n, 1, H, W)`` to features ``(n, d)``: a fitted
        :class:`~skal_cxr.embeddings.ContrastiveEncoder`,
        :class:`~skal_cxr.embeddings.PretrainedEncoder`, ... ``None``:
        ``PixelPCA(n_components=50)`` fitted on the images given to ``fit``.
    hidden_units : int, default=128
        Width of the head's hidden layer.
    dropout : float, default=0.5
        The head's dropout rate before its output layer.
    input_dropout : float, default=0.0
        Dropout rate on the features (0: none).
    n_steps : int, default=300
        Adam steps per ``fit``.
    batch_size : int, default=256
        Rows per step (the whole labeled set when smaller).
    lr : float, default=1e-3
        Adam learning rate of the head.
    weight_decay : float, default=0.0
        Adam weight decay.
    classes : array-like or None, default=None
        The label set, in the order of the output columns; fix it when early
        labeled sets may lack a class.
    class_weight : {None, "balanced"} or dict, default=None
        Weights of the classes in the loss, recomputed at every ``fit``.
    n_mc_samples : int, default=20
        Default number of MC Dropout samples.
    mc_predict : bool, default=False
        If True, :meth:`predict_proba` returns the MC mean.
    fine_tune : {None, "all", "trunk_lr"}, default=None
        ``None``: the encoder stays frozen. ``"all"``: from ``fine_tune_from``
        labels on, a copy of the encoder's ``feature_module()`` is trained
        with the head at the head's learning rate; ``"trunk_lr"``: at
        ``lr * trunk_lr_factor``. BatchNorm statistics stay frozen.
    fine_tune_from : int, default=100
        Fewest labels for which ``fine_tune`` applies (below, frozen).
    trunk_lr_factor : float, default=0.1
        The encoder's learning rate relative to ``lr`` with ``"trunk_lr"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the head's weights, batches and dropout masks.

    Attributes
    ----------
    encoder_ : transformer
        The fitted encoder used (``encoder`` itself when it was fitted).
    head_ : MCDropoutHead
        The trained head.
    classes_ : ndarray of shape (n_classes,)
        The label set.
    fine_tuned_ : bool
        Whether the last ``fit`` trained a copy of the encoder.
    tuned_module_ : torch.nn.Module or None
        That copy (``None`` when frozen).

    See Also
    --------
    skal_cxr.heads.MCDropoutHead : The head alone, on feature vectors.
    skal_cxr.MCDropoutCNN : A whole network trained on the labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr import FrozenViewClassifier
    >>> from skal_cxr.datasets import make_cxr_phantoms
    >>> from skal_cxr.embeddings import PixelPCA
    >>> X, y = make_cxr_phantoms(60, image_size=16, n_classes=2, random_state=0)
    >>> view = PixelPCA(n_components=10, random_state=0).fit(X)
    >>> clf = FrozenViewClassifier(view, n_steps=50, random_state=0).fit(X[:20], y[:20])
    >>> clf.predict_proba_samples(X[20:], n_mc_samples=5).shape
    (5, 40, 2)
    """

    _parameter_constraints = {
        **MCDropoutHead._parameter_constraints,
        "encoder": [HasMethods(["transform"]), None],
        "fine_tune": [StrOptions({"all", "trunk_lr"}), None],
        "fine_tune_from": [Integers(0)],
        "trunk_lr_factor": [Interval(numbers.Real, 0.0, None, closed="neither")],
    }

    def __init__(
        self,
        encoder=None,
        *,
        hidden_units=128,
        dropout=0.5,
        input_dropout=0.0,
        n_steps=300,
        batch_size=256,
        lr=1e-3,
        weight_decay=0.0,
        classes=None,
        class_weight=None,
        n_mc_samples=20,
        mc_predict=False,
        fine_tune=None,
        fine_tune_from=100,
        trunk_lr_factor=0.1,
        random_state=None,
    ):
        self.encoder = encoder
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.classes = classes
        self.class_weight = class_weight
        self.n_mc_samples = n_mc_samples
        self.mc_predict = mc_predict
        self.fine_tune = fine_tune
        self.fine_tune_from = fine_tune_from
        self.trunk_lr_factor = trunk_lr_factor
        self.random_state = random_state

    def __sklearn_clone__(self):
        # a fitted encoder is the frozen view: the clone shares it (FrozenEstimator's rule)
        if self.encoder is None or not is_fitted(self.encoder):
            return super().__sklearn_clone__()
        params = self.get_params(deep=False)
        encoder = params.pop("encoder")
        return type(self)(encoder, **{k: clone(v, safe=False) for k, v in params.items()})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def _head(self):
        return MCDropoutHead(**{k: getattr(self, k) for k in HEAD_PARAMS})

    def _view(self):
        """The fitted object whose features the head sees."""
        return self.encoder_ if self.tuned_module_ is None else self._tuned_view_

    def fit(self, X, y):
        """Train the head on the encoder's features of the labeled images.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Labeled images.
        y : array-like of shape (n_images,)
            Their labels.

        Returns
        -------
        self : FrozenViewClassifier
            Fitted.
        """
        check_params(self)
        X = check_images(X, allow_dataset=False)
        if self.encoder is None:
            encoder = PixelPCA(n_components=50, random_state=self.random_state).fit(X)
        elif is_fitted(self.encoder):
            encoder = self.encoder
        else:
            encoder = clone(self.encoder).fit(X)
        self.encoder_ = encoder
        head = self._head()
        self.fine_tuned_ = self.fine_tune is not None and len(X) >= self.fine_tune_from
        self.tuned_module_ = None
        if self.fine_tuned_:
            inner = getattr(encoder, "estimator", encoder)  # FrozenEstimator
            if not hasattr(inner, "feature_module"):
                raise TypeError(
                    f"fine_tune needs an encoder with a feature_module method; "
                    f"{type(inner).__name__} has none."
                )
            module = copy.deepcopy(inner.feature_module()).requires_grad_(True)
            factor = 1.0 if self.fine_tune == "all" else self.trunk_lr_factor
            head._fit(X, y, trunk=module, trunk_lr=self.lr * factor)
            self.tuned_module_ = module.eval().requires_grad_(False)
            self._tuned_view_ = _TunedView(self.tuned_module_)
        else:
            head.fit(memoized_transform(encoder, X), y)
        self.head_ = head
        self.classes_ = head.classes_
        return self

    def embed(self, X):
        """The features the head sees (computed once per image and fit).

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Images.

        Returns
        -------
        features : ndarray of shape (n_images, n_features), dtype float32
            One row per image.
        """
        check_is_fitted(self, "head_")
        return memoized_transform(self._view(), check_images(X, allow_dataset=False))

    def transform(self, X):
        """Same as :meth:`embed` (the classifier's view, for pipelines and strategies).

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Images.

        Returns
        -------
        features : ndarray of shape (n_images, n_features), dtype float32
            One row per image.
        """
        return self.embed(X)

    def predict_proba_samples(self, X, n_mc_samples=None):
        """MC Dropout samples of the class probabilities, on the head only.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Images.
        n_mc_samples : int or None, default=None
            Samples; ``None`` uses the ``n_mc_samples`` parameter.

        Returns
        -------
        probas : ndarray of shape (n_mc_samples, n_images, n_classes), dtype float32
            See :meth:`MCDropoutHead.predict_proba_samples
            <skal_cxr.heads.MCDropoutHead.predict_proba_samples>`.
        """
        features = self.embed(X)  # checks that the classifier is fitted
        return self.head_.predict_proba_samples(features, n_mc_samples)

    def predict_proba(self, X):
        """Class probabilities: the head with dropout off, or the MC mean.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Images.

        Returns
        -------
        probas : ndarray of shape (n_images, n_classes), dtype float32
            The MC mean when ``mc_predict=True``.
        """
        features = self.embed(X)
        return self.head_.predict_proba(features)

    def predict(self, X):
        """Most probable label of each image (see :meth:`predict_proba`).

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Images.

        Returns
        -------
        y_pred : ndarray of shape (n_images,)
            Labels from ``classes_``.
        """
        codes = self.predict_proba(X).argmax(axis=1)
        return self.classes_[codes]
