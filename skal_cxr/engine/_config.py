"""The typed configuration of an active-learning round, its defaults and checks.

A :class:`RoundConfig` holds what one round needs, whoever runs it: the
model (``model``: an MC Dropout head on the pool's contrastive ``view``, or
the ``"cnn"`` from pixels) and its training (``head``; ``estimator``,
``training``, ``class_weight``, ``sampler``, ``warm_start``), the query
(``strategy``, ``query_size``, ``n_mc_samples``, ``pool_size``), the seed
and the torch thread limit. A simulation makes one per (strategy, seed)
from its configuration; a labeling project makes one from its settings.
"""

import copy
import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigError

__all__ = [
    "RoundConfig",
    "MODELS",
    "LEGACY_MODEL",
    "ROUND_DEFAULTS",
    "resolve_round_params",
    "merge_settings",
    "round_constraints",
]

#: The models a round can train: an MC Dropout head on the pool's frozen contrastive
#: view (:class:`~skal_cxr.FrozenViewClassifier`), or the MC Dropout CNN from pixels.
MODELS = ("view", "cnn")

#: The model of a stored configuration without a ``model`` key: one written before
#: the view existed (a results folder's ``config.json``, a labeling project's
#: settings) keeps training the CNN it trained.
LEGACY_MODEL = "cnn"

#: Defaults of the round parameters (also those of :func:`skal_cxr.simulation.simulate`).
ROUND_DEFAULTS: dict[str, Any] = {
    "model": "view",
    # the pool's encoder (ContrastiveEncoder): about 40 CPU-s on 4,708 images of 28 px
    "view": {
        "max_epochs": 5,
        "width": 16,
        "n_blocks": 3,
        "projection_dim": 64,
        "batch_size": 256,
        "lr": 1e-3,
        "temperature": 0.5,
        "random_state": 0,
    },
    # the MC Dropout head on the view (MCDropoutHead)
    "head": {
        "hidden_units": 128,
        "dropout": 0.5,
        "input_dropout": 0.0,
        "n_steps": 300,
        "batch_size": 256,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "mc_predict": False,
    },
    "query_size": 10,
    "n_mc_samples": 20,
    "pool_size": None,
    "class_weight": "balanced",
    "sampler": None,
    "warm_start": False,
    "estimator": {
        "lr": 1e-3,
        "batch_size": 32,
        "module__width": 16,
        "module__n_blocks": 3,
        "module__dropout": 0.5,
        "mc_predict": False,
        "device": "auto",
    },
    "training": {"max_epochs": 5, "min_train_steps": 150, "lr_schedule": "cosine"},
    "torch_threads": 1,
}

#: Parameters that ``None`` sets (rather than leaving at their default).
_NONE_IS_A_VALUE = ("pool_size", "class_weight", "sampler")

#: The cold starts of labeling projects (``init_project(cold_start=...)``; used by
#: ``_cold_start``, kept here so that reading them imports no torch).
COLD_STARTS = ("random", "k_center", "typicality", "probcover")


def _own_constraints():
    """``(round, module)``: the constraints of the round settings that are not the
    estimator's parameters, and of the network's (``module__``) settings a
    configuration names.

    Built on first use: the command line reads this module's defaults for every
    command's help, and scikit-learn's constraint classes are not worth
    importing there.
    """
    from .._validation import Integers, Interval

    round_ = {
        "query_size": [Integers(1)],
        "pool_size": [Integers(1), None],
        "torch_threads": [Integers(1)],
        "seed": [Integers(0)],
    }
    module = {
        "module__width": [Integers(1)],
        "module__n_blocks": [Integers(1)],
        "module__dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    }
    return round_, module


def round_constraints():
    """The constraints of every round setting, derived from the estimator's.

    The estimator's settings (``n_mc_samples``, ``class_weight``, the
    ``training`` and ``estimator`` dicts) take their constraints from
    :class:`~skal_cxr.MCDropoutCNN`'s ``_parameter_constraints``, so that a
    configuration accepts exactly what the estimator accepts (for instance
    ``batch_size=-1`` and ``max_epochs=0``), except what a JSON
    configuration cannot store: ``class_weight`` is ``None`` or
    ``"balanced"`` (no dict), and a sampler is named.

    Returns
    -------
    constraints : dict
        ``{"round": ..., "training": ..., "estimator": ..., "view": ...,
        "head": ...}``, each
        ``{name: list of constraints}``.
    """
    from ..embeddings import ContrastiveEncoder
    from ..heads import MCDropoutHead
    from ..models import MCDropoutCNN

    estimator = dict(MCDropoutCNN._parameter_constraints)
    own_round, own_module = _own_constraints()
    return {
        "view": {k: ContrastiveEncoder._parameter_constraints[k] for k in ROUND_DEFAULTS["view"]},
        "head": {k: MCDropoutHead._parameter_constraints[k] for k in ROUND_DEFAULTS["head"]},
        "round": {
            **own_round,
            "n_mc_samples": estimator["n_mc_samples"],
            "class_weight": [c for c in estimator["class_weight"] if c is not dict],
        },
        "training": {k: estimator[k] for k in ("max_epochs", "min_train_steps")},
        "estimator": {
            **{
                k: v
                for k, v in estimator.items()
                if k
                not in (
                    "n_mc_samples",
                    "class_weight",
                    "sampler",
                    "max_epochs",
                    "min_train_steps",
                    "random_state",
                    "classes",
                )
            },
            **own_module,
        },
    }


def _finite_positive(value):
    try:
        return math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


def _check_device(device):
    """Refuse a device this machine does not have, before any data is loaded."""
    import torch

    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}.") from exc
    if dev.type == "cuda":
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n_gpus == 0:
            raise ConfigError(
                f"device {device!r}: no CUDA GPU is visible here; use 'auto' or 'cpu'."
            )
        if dev.index is not None and dev.index >= n_gpus:
            raise ConfigError(f"device {device!r}: only {n_gpus} CUDA GPU(s) are visible.")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r} is not available here; use 'auto' or 'cpu'.")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}.")


def merge_settings(defaults, given, name):
    """``defaults`` updated with ``given``; an unknown key is a :class:`ConfigError`.

    ``estimator`` settings may also name any ``module__*`` / ``optimizer__*``
    parameter of the network (keys with ``__``).
    """
    out = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        if key not in defaults and not (name == "estimator" and "__" in key):
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"unknown {name} setting {key!r}; known: {known}.")
        out[key] = value
    return out


def resolve_round_params(**params):
    """Validate round parameters and fill in the defaults of :data:`ROUND_DEFAULTS`.

    Parameters
    ----------
    **params
        Any key of :data:`ROUND_DEFAULTS`; ``None`` takes the default
        (except for ``pool_size``, ``class_weight`` and ``sampler``, where it
        is a value). ``estimator``, ``training``, ``view`` and ``head``
        dicts are merged into the defaults.

    Returns
    -------
    params : dict
        Every key of :data:`ROUND_DEFAULTS`, checked.

    Raises
    ------
    ConfigError
        For an unknown key or an invalid value (one line naming it).
    """
    unknown = set(params) - set(ROUND_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown round parameters: {sorted(unknown)}.")
    config = copy.deepcopy(ROUND_DEFAULTS)
    for key, value in params.items():
        if value is None and key not in _NONE_IS_A_VALUE:
            continue
        if key in ("estimator", "training", "view", "head"):
            config[key] = merge_settings(ROUND_DEFAULTS[key], value, key)
        else:
            config[key] = value
    if config["model"] not in MODELS:
        raise ConfigError(f"model must be one of {', '.join(MODELS)}; got {config['model']!r}.")
    from .._validation import check_values

    constraints = round_constraints()
    for key, name in (("view", "ContrastiveEncoder"), ("head", "MCDropoutHead")):
        config[key].update(check_values(config[key], constraints[key], name, error=ConfigError))
    config.update(
        check_values(
            {k: config[k] for k in constraints["round"] if k in config},
            constraints["round"],
            "RoundConfig",
            error=ConfigError,
        )
    )
    if config["sampler"] is not None:
        from .._resampling import resolve_sampler

        if not isinstance(config["sampler"], str):
            raise ConfigError(
                "sampler must be named (a class of imblearn.over_sampling, under_sampling "
                f"or combine, or random_over / random_under / smote); got {config['sampler']!r}."
            )
        try:
            resolve_sampler(config["sampler"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if config["sampler"] == "none":
            config["sampler"] = None
    config["warm_start"] = bool(config["warm_start"])
    training = config["training"]
    if training["lr_schedule"] not in ("cosine", "constant"):
        raise ConfigError(
            f"training lr_schedule must be 'cosine' or 'constant'; got {training['lr_schedule']!r}."
        )
    training.update(
        check_values(training, constraints["training"], "MCDropoutCNN", error=ConfigError)
    )
    if config["pool_size"] is not None and config["pool_size"] < config["query_size"]:
        raise ConfigError(
            f"pool_size ({config['pool_size']}) is smaller than query_size "
            f"({config['query_size']}): a query could not find enough images to label."
        )
    est = config["estimator"]
    if not _finite_positive(est["lr"]):
        raise ConfigError(f"lr must be a finite positive number; got {est['lr']!r}.")
    est.update(check_values(est, constraints["estimator"], "MCDropoutCNN", error=ConfigError))
    _check_device(est.get("device", "auto"))
    return config


def _default(key):
    return field(default_factory=lambda: copy.deepcopy(ROUND_DEFAULTS[key]))


@dataclass(frozen=True)
class RoundConfig:
    """What one active-learning round needs: the model, its training and the query.

    Shared by :func:`skal_cxr.simulation.simulate` (one per strategy and
    seed) and the labeling projects of :mod:`skal_cxr.labeling`. Make a
    checked one with :meth:`from_params`; :meth:`from_dict` reads one back
    from a stored configuration.

    A stored configuration without a ``model`` key (written before the
    view existed) is the CNN (:data:`LEGACY_MODEL`): :meth:`from_dict` reads
    it so, and it resumes as it ran; new configurations default to the view.

    Parameters
    ----------
    strategy : str, default="mean_std"
        A key of :data:`skal_cxr.strategies.STRATEGIES`.
    seed : int, default=0
        Seeds the network (``random_state``) and, with the round number,
        each query.
    model : {"view", "cnn"}, default="view"
        ``"view"``: a :class:`~skal_cxr.FrozenViewClassifier`, an MC Dropout
        head (``head``) on the pool's contrastive encoder (``view``), trained
        once per pool without labels (:func:`~skal_cxr.engine.pool_view`).
        ``"cnn"``: the :class:`~skal_cxr.MCDropoutCNN` from pixels
        (``estimator``, ``training``).
    view : dict, default=ROUND_DEFAULTS["view"]
        Parameters of the pool's :class:`~skal_cxr.embeddings.ContrastiveEncoder`
        (``max_epochs``, ``width``, ``n_blocks``, ``projection_dim``,
        ``batch_size``, ``lr``, ``temperature``, ``random_state``); the
        encoder sees the pool at its own image size.
    head : dict, default=ROUND_DEFAULTS["head"]
        Parameters of the :class:`~skal_cxr.heads.MCDropoutHead`
        (``hidden_units``, ``dropout``, ``input_dropout``, ``n_steps``,
        ``batch_size``, ``lr``, ``weight_decay``, ``mc_predict``); its class
        weighting, MC samples and seed are the round's.
    query_size : int, default=10
        Images queried per round.
    n_mc_samples : int, default=20
        Monte Carlo dropout samples per query.
    pool_size : int or None, default=None
        Score a random subset of this many unlabeled images per query
        (``None``: all of them).
    class_weight : {"balanced", None}, default="balanced"
        Class weighting of the loss.
    sampler : str or None, default=None
        An imbalanced-learn resampler of each training set, by name.
    warm_start : bool, default=False
        Continue training the previous round's network instead of a new one.
    estimator : dict, default=ROUND_DEFAULTS["estimator"]
        Parameters of :class:`~skal_cxr.MCDropoutCNN`.
    training : dict, default=ROUND_DEFAULTS["training"]
        ``max_epochs``, ``min_train_steps`` and ``lr_schedule``.
    torch_threads : int, default=1
        Torch threads while training and querying.
    """

    strategy: str = "mean_std"
    seed: int = 0
    model: str = ROUND_DEFAULTS["model"]
    view: dict = _default("view")
    head: dict = _default("head")
    query_size: int = ROUND_DEFAULTS["query_size"]
    n_mc_samples: int = ROUND_DEFAULTS["n_mc_samples"]
    pool_size: int | None = ROUND_DEFAULTS["pool_size"]
    class_weight: str | None = ROUND_DEFAULTS["class_weight"]
    sampler: str | None = ROUND_DEFAULTS["sampler"]
    warm_start: bool = ROUND_DEFAULTS["warm_start"]
    estimator: dict = _default("estimator")
    training: dict = _default("training")
    torch_threads: int = ROUND_DEFAULTS["torch_threads"]

    @classmethod
    def from_params(cls, strategy="mean_std", seed=0, **params):
        """A checked configuration: ``params`` as in :func:`resolve_round_params`.

        Parameters
        ----------
        strategy : str, default="mean_std"
            A key of :data:`skal_cxr.strategies.STRATEGIES`.
        seed : int, default=0
            A non-negative integer.
        **params
            Any key of :data:`ROUND_DEFAULTS`.

        Returns
        -------
        config : RoundConfig
            The checked configuration.

        Raises
        ------
        ConfigError
            For an unknown strategy or parameter, or an invalid value.
        """
        from .._validation import check_values
        from ..strategies import STRATEGIES

        if strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown strategies {[strategy]}; choose from {', '.join(sorted(STRATEGIES))}."
            )
        round_ = _own_constraints()[0]
        seed = check_values({"seed": seed}, round_, "RoundConfig", error=ConfigError)["seed"]
        return cls(strategy=strategy, seed=seed, **resolve_round_params(**params))

    @classmethod
    def from_dict(cls, config, **overrides):
        """The round configuration in a stored dict (extra keys are ignored).

        Parameters
        ----------
        config : mapping
            A checked configuration: a simulation's ``config.json``, a
            labeling project's round settings, or :meth:`to_dict`'s output.
            Without a ``model`` key it was written before the view existed:
            its model is :data:`LEGACY_MODEL` (the CNN).
        **overrides
            Fields to set instead (``strategy=``, ``seed=``, ...).

        Returns
        -------
        config : RoundConfig
            The configuration (not checked again).
        """
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: copy.deepcopy(v) for k, v in config.items() if k in names}
        values.setdefault("model", LEGACY_MODEL)
        values.update(overrides)
        return cls(**values)

    def to_dict(self):
        """The configuration as a JSON-serialisable dict.

        Returns
        -------
        config : dict
            One key per field.
        """
        return dataclasses.asdict(self)


def _round_config(config):
    """``config`` as a :class:`RoundConfig` (a mapping goes through ``from_dict``)."""
    return config if isinstance(config, RoundConfig) else RoundConfig.from_dict(config)
