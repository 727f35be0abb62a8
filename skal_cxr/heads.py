"""A small Monte Carlo Dropout classifier on feature vectors.

:class:`MCDropoutHead` is the classifier that sits on a frozen view of the
pool (:class:`~skal_cxr.FrozenViewClassifier`): a two-layer perceptron with
dropout, trained for a fixed number of Adam steps with class-weighted cross
entropy, whose predictions are sampled with dropout on, like
:class:`~skal_cxr.MCDropoutCNN`'s (same parameters ``class_weight``,
``classes``, ``n_mc_samples``, ``mc_predict``, ``random_state``; same
``predict_proba_samples`` returning ``(n_mc_samples, n_images, n_classes)``).
"""

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from torch import nn
from torch.nn import functional as F

from ._mc import is_dropout, mc_dropout_mode, sample_head, split_mc
from ._random import batch_seed, torch_rng, torch_seed_from
from ._validation import Integers, Interval, StrOptions, check_int, check_params

__all__ = ["MCDropoutHead", "head_network", "train_head"]

_RATE = Interval(numbers.Real, 0.0, 1.0, closed="left")
_POSITIVE = Interval(numbers.Real, 0.0, None, closed="neither")

#: Rows per MC prediction batch (each batch draws its masks from its own seed).
PREDICT_BATCH = 4096


def head_network(n_features, n_classes, hidden_units=128, dropout=0.5, input_dropout=0.0):
    """The head: ``[Dropout] -> Linear -> ReLU -> Dropout -> Linear``.

    Parameters
    ----------
    n_features : int
        Input features.
    n_classes : int
        Output logits.
    hidden_units : int, default=128
        Width of the hidden layer.
    dropout : float, default=0.5
        Dropout rate before the output layer.
    input_dropout : float, default=0.0
        Dropout rate on the input features (DropQuery's perturbation); no
        layer when 0.

    Returns
    -------
    module : torch.nn.Sequential
        Logits of shape ``(n, n_classes)``.
    """
    layers = [nn.Dropout(input_dropout)] if input_dropout > 0 else []
    layers += [
        nn.Linear(n_features, hidden_units),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden_units, n_classes),
    ]
    return nn.Sequential(*layers)


def train_head(
    head,
    inputs,
    y_codes,
    *,
    weights,
    n_steps,
    batch_size,
    lr,
    weight_decay,
    trunk=None,
    trunk_lr=None,
):
    """Train ``head`` (and ``trunk``, when given) with Adam for ``n_steps`` steps.

    Each step takes the whole set when it has at most ``batch_size`` rows,
    else a random batch of ``batch_size`` rows (from torch's global RNG).

    Parameters
    ----------
    head : torch.nn.Module
        Maps features to logits; put in train mode.
    inputs : torch.Tensor of shape (n, ...)
        Features, or images when ``trunk`` is given.
    y_codes : torch.Tensor of shape (n,), dtype int64
        Class codes.
    weights : torch.Tensor of shape (n_classes,) or None
        Class weights of the cross entropy.
    n_steps : int
        Optimizer steps.
    batch_size : int
        Rows per step.
    lr : float
        Adam learning rate of the head.
    weight_decay : float
        Adam weight decay.
    trunk : torch.nn.Module or None, default=None
        A feature extractor trained with the head (kept in eval mode:
        BatchNorm statistics stay frozen, gradients flow).
    trunk_lr : float or None, default=None
        Its learning rate.

    Returns
    -------
    losses : list of float
        The loss of every step.
    """
    groups = [{"params": head.parameters(), "lr": lr}]
    if trunk is not None:
        groups.append({"params": trunk.parameters(), "lr": trunk_lr})
        trunk.eval()
    optimizer = torch.optim.Adam(groups, weight_decay=weight_decay)
    head.train()
    losses = []
    n = len(inputs)
    for _ in range(n_steps):
        if n > batch_size:
            rows = torch.randperm(n)[:batch_size]
            x, y = inputs[rows], y_codes[rows]
        else:
            x, y = inputs, y_codes
        if trunk is not None:
            x = trunk(x).flatten(1)
        loss = F.cross_entropy(head(x), y, weight=weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    head.eval()
    return losses


def class_weights(class_weight, y_codes, n_classes):
    """Loss weights of the classes, as :class:`~skal_cxr.MCDropoutCNN` computes them.

    Parameters
    ----------
    class_weight : None, "balanced" or dict
        ``"balanced"`` uses :func:`~sklearn.utils.class_weight.compute_class_weight`
        over the classes present (absent ones get 1); a dict maps class
        codes' labels to weights (see the caller).
    y_codes : ndarray of shape (n,)
        Class codes.
    n_classes : int
        Number of classes.

    Returns
    -------
    weights : ndarray of shape (n_classes,) or None
        ``None`` without class weights.
    """
    if class_weight is None:
        return None
    weights = np.ones(n_classes)
    if isinstance(class_weight, dict):
        for code, value in class_weight.items():
            weights[code] = value
        return weights
    present = np.unique(y_codes)
    weights[present] = compute_class_weight("balanced", classes=present, y=y_codes)
    return weights


class MCDropoutHead(ClassifierMixin, BaseEstimator):
    """A two-layer perceptron with Monte Carlo Dropout, on feature vectors.

    Trained for ``n_steps`` Adam steps on class-weighted cross entropy;
    :meth:`predict_proba_samples` keeps dropout on and draws
    ``n_mc_samples`` samples of the class probabilities. The low-budget
    study's head on a frozen :class:`~skal_cxr.embeddings.ContrastiveEncoder`
    (128 hidden units, dropout 0.5, 300 steps, balanced class weights, 20
    samples).

    Parameters
    ----------
    hidden_units : int, default=128
        Width of the hidden layer.
    dropout : float, default=0.5
        Dropout rate before the output layer.
    input_dropout : float, default=0.0
        Dropout rate on the input features (0: none); with it, MC samples
        perturb the features themselves, as DropQuery does.
    n_steps : int, default=300
        Adam steps per ``fit``.
    batch_size : int, default=256
        Rows per step (the whole set when smaller).
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
        Adam weight decay.
    classes : array-like or None, default=None
        The label set, in the order of the output columns; ``None`` takes
        the sorted labels seen by ``fit``. Fix it when early labeled sets
        may lack a class.
    class_weight : {None, "balanced"} or dict, default=None
        Weights of the classes in the loss, recomputed at every ``fit``;
        ``"balanced"``: inversely proportional to the class counts (absent
        classes get 1); a dict maps labels to weights.
    n_mc_samples : int, default=20
        Default number of samples of :meth:`predict_proba_samples`.
    mc_predict : bool, default=False
        If True, :meth:`predict_proba` returns the mean of ``n_mc_samples``
        samples instead of the output with dropout off.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the batches and the dropout masks of training and
        of MC prediction (drawn per block of 4,096 rows from ``(seed, block
        number)``); torch's global RNG state is left as it was.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The label set.
    class_weight_ : ndarray of shape (n_classes,) or None
        Loss weights of the last ``fit``.
    module_ : torch.nn.Sequential
        The trained head (:func:`head_network`), in eval mode.
    loss_curve_ : list of float
        The loss of every training step.
    n_features_in_ : int
        Features per row.

    See Also
    --------
    skal_cxr.FrozenViewClassifier : This head on a frozen encoder of images.
    skal_cxr.MCDropoutCNN : A whole network with MC Dropout.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.heads import MCDropoutHead
    >>> X = np.r_[np.zeros((10, 4)), np.ones((10, 4))]
    >>> y = np.repeat([0, 1], 10)
    >>> head = MCDropoutHead(n_steps=50, random_state=0).fit(X, y)
    >>> head.predict_proba_samples(X[:3], n_mc_samples=5).shape
    (5, 3, 2)
    """

    _parameter_constraints = {
        "hidden_units": [Integers(1)],
        "dropout": [_RATE],
        "input_dropout": [_RATE],
        "n_steps": [Integers(0)],
        "batch_size": [Integers(1)],
        "lr": [_POSITIVE],
        "weight_decay": [Interval(numbers.Real, 0.0, None, closed="left")],
        "classes": ["array-like", None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "n_mc_samples": [Integers(1)],
        "mc_predict": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
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
        random_state=None,
    ):
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
        self.random_state = random_state

    def fit(self, X, y):
        """Train a fresh head on the features ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            Feature vectors.
        y : array-like of shape (n_rows,)
            Labels.

        Returns
        -------
        self : MCDropoutHead
            Fitted.
        """
        return self._fit(X, y)

    def _fit(self, X, y, trunk=None, trunk_lr=None):
        """``fit``; with ``trunk``, ``X`` are that trunk's inputs and it is trained too."""
        check_params(self)
        if trunk is None:
            X = validate_data(self, X, dtype=np.float32)
            inputs = torch.from_numpy(np.ascontiguousarray(X))
        else:
            inputs = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32)
        if y is None:
            raise ValueError("MCDropoutHead requires y to be passed, but the target y is None.")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if len(y) != len(inputs):
            raise ValueError(f"X has {len(inputs)} rows and y {len(y)} labels.")
        self.classes_ = np.unique(y) if self.classes is None else np.asarray(self.classes)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown.tolist()} that are not among classes.")
        codes = _codes(y, self.classes_)
        class_weight = self.class_weight
        if isinstance(class_weight, dict):
            class_weight = {int(_codes([k], self.classes_)[0]): v for k, v in class_weight.items()}
        self.class_weight_ = class_weights(class_weight, codes, len(self.classes_))
        weights = (
            None
            if self.class_weight_ is None
            else torch.tensor(self.class_weight_, dtype=torch.float32)
        )
        with torch_rng(self.random_state):
            if trunk is not None:
                with torch.no_grad():
                    n_features = trunk.eval()(inputs[:1]).flatten(1).shape[1]
            else:
                n_features = inputs.shape[1]
            self.module_ = head_network(
                n_features, len(self.classes_), self.hidden_units, self.dropout, self.input_dropout
            )
            self.loss_curve_ = train_head(
                self.module_,
                inputs,
                torch.from_numpy(codes.astype(np.int64)),
                weights=weights,
                n_steps=check_int(self.n_steps, "n_steps", min_val=0),
                batch_size=self.batch_size,
                lr=self.lr,
                weight_decay=self.weight_decay,
                trunk=trunk,
                trunk_lr=trunk_lr,
            )
        if trunk is not None:
            self.n_features_in_ = n_features
        return self

    def _features(self, X):
        check_is_fitted(self, "module_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return torch.from_numpy(np.ascontiguousarray(X))

    def predict_proba_samples(self, X, n_mc_samples=None):
        """Monte Carlo Dropout samples of the class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            Feature vectors.
        n_mc_samples : int or None, default=None
            Samples; ``None`` uses the ``n_mc_samples`` parameter.

        Returns
        -------
        probas : ndarray of shape (n_mc_samples, n_rows, n_classes), dtype float32
            Equal to ``n_mc_samples`` forward passes with dropout on (block
            by block of 4,096 rows, each block's masks seeded from
            ``(seed, block)``), reproducible with an int ``random_state``.
        """
        z = self._features(X)
        n_mc_samples = check_int(
            self.n_mc_samples if n_mc_samples is None else n_mc_samples, "n_mc_samples"
        )
        seed = torch_seed_from(self.random_state)
        module = self.module_
        # one dropout layer: its trunk once, the rest vectorised (one mask per row, as
        # T passes would draw); several: their masks interleave pass by pass
        split = split_mc(module) if sum(is_dropout(m) for m in module.modules()) == 1 else None
        softmax = lambda logits: torch.softmax(logits, dim=1)  # noqa: E731
        out = []
        with mc_dropout_mode(module), torch.inference_mode(), torch_rng(seed):
            for b, start in enumerate(range(0, len(z), PREDICT_BATCH)):
                if seed is not None:
                    torch.manual_seed(batch_seed(seed, b))
                zb = z[start : start + PREDICT_BATCH]
                if split is not None:
                    out.append(sample_head(split[1], split[0](zb), n_mc_samples, softmax))
                else:
                    out.append(torch.stack([softmax(module(zb)) for _ in range(n_mc_samples)]))
        return torch.cat(out, dim=1).float().numpy()

    def predict_proba(self, X):
        """Class probabilities: the output with dropout off, or the MC mean.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            Feature vectors.

        Returns
        -------
        probas : ndarray of shape (n_rows, n_classes), dtype float32
            The mean of ``n_mc_samples`` samples when ``mc_predict=True``.
        """
        if self.mc_predict:
            return self.predict_proba_samples(X).mean(axis=0)
        z = self._features(X)
        self.module_.eval()
        with torch.inference_mode():
            return torch.softmax(self.module_(z), dim=1).float().numpy()

    def predict(self, X):
        """Most probable label of each row (see :meth:`predict_proba`).

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            Feature vectors.

        Returns
        -------
        y_pred : ndarray of shape (n_rows,)
            Labels from ``classes_``.
        """
        codes = self.predict_proba(X).argmax(axis=1)
        return self.classes_[codes]


def _codes(y, classes):
    """Positions of the labels ``y`` in ``classes`` (which need not be sorted)."""
    lookup = {label: code for code, label in enumerate(classes.tolist())}
    try:
        return np.array([lookup[label] for label in np.asarray(y).tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not among classes.") from None
