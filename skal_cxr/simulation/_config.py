"""The configuration of a simulation: defaults, validation, comparison on resume.

A configuration is a plain JSON-serialisable dict, stored in
``<results_dir>/config.json`` next to the records it produced, so that a
restarted run can check it is continuing the same experiment.
"""

import copy
import json
import numbers

from .._budget import check_budget
from ..engine import (
    LEGACY_MODEL,
    MODELS,
    ROUND_DEFAULTS,
    merge_settings,
    resolve_round_params,
)
from ..exceptions import ConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "split_arm",
    "arm_models",
    "DATA_DEFAULTS",
    "ConfigError",
    "resolve_config",
    "config_diff",
]


DATA_DEFAULTS = {
    "phantoms": {
        "source": "phantoms",
        "n_samples": 3000,
        "image_size": 32,
        "n_classes": 3,
        "weights": None,
        "label_noise": None,
        "n_raters": None,
        "rater_noise": 0.04,
        "random_state": 0,
        "test_size": 0.25,
        "val_size": 0.1,
    },
    "medmnist": {
        "source": "medmnist",
        "name": "pneumoniamnist",
        "root": None,
        "max_pool": None,
        "random_state": 0,
    },
    "folder": {
        "source": "folder",
        "csv": None,
        "image_dir": None,
        "image_column": "filename",
        "label_columns": None,
        "score_column": None,
        "consensus": "majority",
        "bins": None,
        "classes": None,
        "group_column": None,
        "image_size": 64,
        "on_error": "raise",
        "duplicates": "raise",
        "encoding": None,
        "delimiter": None,
        "cache_dir": None,
        "verify_cache": False,
        "random_state": 0,
        "test_size": 0.25,
        "val_size": 0.1,
    },
}

#: Defaults of :func:`skal_cxr.simulation.simulate`: the README's main job. The
#: round parameters (``query_size``, ``n_mc_samples``, ``estimator``, ...) are
#: those of the round engine (:data:`skal_cxr.engine.ROUND_DEFAULTS`).
DEFAULT_CONFIG = {
    "data": DATA_DEFAULTS["medmnist"],
    # the default (typicality in the pool's view until every class has 5 labels, then
    # max entropy of the head) against random on the same view and random on the CNN
    # from pixels (what a user has without the view): docs/benchmarks/main_job.rst
    "strategies": ["typicality_until_5_then_max_entropy", "random", "random@cnn"],
    # 8 paired seeds: the exact Wilcoxon test reaches p < 0.01, and the main job
    # (three arms, two full-data baselines, the encoder) stays under 8 minutes on 2 cores
    "seeds": list(range(8)),
    "n_initial": 10,
    "initial": "strategy",
    "query_size": ROUND_DEFAULTS["query_size"],
    "budget": 100,
    "n_mc_samples": ROUND_DEFAULTS["n_mc_samples"],
    "pool_size": ROUND_DEFAULTS["pool_size"],
    "class_weight": ROUND_DEFAULTS["class_weight"],
    "sampler": ROUND_DEFAULTS["sampler"],
    "warm_start": ROUND_DEFAULTS["warm_start"],
    "baseline": True,
    "model": ROUND_DEFAULTS["model"],
    "view": ROUND_DEFAULTS["view"],
    "head": ROUND_DEFAULTS["head"],
    "estimator": ROUND_DEFAULTS["estimator"],
    "training": ROUND_DEFAULTS["training"],
    "torch_threads": ROUND_DEFAULTS["torch_threads"],
}


def _normalise(value):
    """JSON round trip: tuples become lists, numpy scalars plain numbers."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _constraints():
    """Constraints of the simulation's own settings (the round settings are the engine's).

    Built on first use, like scikit-learn's objects behind them: the command
    line reads this module's defaults for every command's help.
    """
    from .._validation import Integers

    return {"n_initial": [Integers(1)], "seeds": [Integers(1)], "seed": [Integers(0)]}


def split_arm(arm, config):
    """The strategy and the model of an arm ``"strategy"`` or ``"strategy@model"``.

    Parameters
    ----------
    arm : str
        An entry of a configuration's ``strategies``: a strategy name runs
        with the configuration's ``model``; ``"random@cnn"`` runs random
        sampling with the CNN whatever that model is.
    config : mapping
        The configuration; without a ``model`` key (written before the view
        existed) its model is the CNN.

    Returns
    -------
    strategy : str
        A key of :data:`skal_cxr.strategies.STRATEGIES`.
    model : str
        ``"view"`` or ``"cnn"``.
    """
    strategy, sep, model = arm.partition("@")
    return strategy, model if sep else config.get("model", LEGACY_MODEL)


def arm_models(config):
    """The models a configuration's arms train, the configuration's own first.

    Parameters
    ----------
    config : mapping
        A resolved configuration.

    Returns
    -------
    models : list of str
        Distinct models, in order of first use (the configuration's
        ``model`` first); the full-data baseline trains each.
    """
    models = [config.get("model", LEGACY_MODEL)]
    for arm in config["strategies"]:
        model = split_arm(arm, config)[1]
        if model not in models:
            models.append(model)
    return models


def _checked(name, value):
    from .._validation import check_values

    return check_values({name: value}, _constraints(), "simulate", error=ConfigError)[name]


def resolve_data_spec(data):
    """Complete a data specification with the defaults of its source.

    ``None`` is PneumoniaMNIST (the copy shipped with skal_cxr unless
    ``$SKAL_CXR_DATA`` holds ``pneumoniamnist.npz``); ``"phantoms"`` the
    built-in phantoms; a MedMNIST name
    (``"pneumoniamnist"`` or ``"medmnist:pneumoniamnist"``) or a path to
    ``<name>.npz`` a MedMNIST file; a dict gives every setting, ``source``
    first.
    """
    if data is None:
        data = {"source": "medmnist"}
    elif isinstance(data, str):
        if data == "phantoms":
            data = {"source": "phantoms"}
        elif data.startswith("medmnist:"):
            data = {"source": "medmnist", "name": data[len("medmnist:") :]}
        elif data.endswith(".npz"):
            import os

            root, fname = os.path.split(data)
            data = {"source": "medmnist", "name": fname[: -len(".npz")], "root": root or "."}
        else:
            data = {"source": "medmnist", "name": data}
    if not isinstance(data, dict) or data.get("source") not in DATA_DEFAULTS:
        raise ConfigError(
            "data must be 'phantoms', a MedMNIST name or .npz path, or a dict with "
            f"source in {sorted(DATA_DEFAULTS)}; got {data!r}."
        )
    spec = merge_settings(DATA_DEFAULTS[data["source"]], data, "data")
    if spec["source"] == "folder" and (not spec["csv"] or not spec["image_dir"]):
        raise ConfigError("an image-folder data source needs both csv and image_dir.")
    for key in ("test_size", "val_size"):
        if key in spec and not (0 <= float(spec[key]) < 1):
            raise ConfigError(f"data {key} must be in [0, 1); got {spec[key]!r}.")
    return spec


def resolve_config(**params):
    """Validate simulation parameters and fill in the defaults.

    Parameters
    ----------
    **params
        Any key of :data:`DEFAULT_CONFIG`; ``None`` values take the default.
        ``estimator`` and ``training`` dicts are merged into theirs.

    Returns
    -------
    config : dict
        JSON-serialisable.

    Raises
    ------
    ConfigError
        For an unknown key or an invalid value.
    """
    from ..strategies import STRATEGIES

    unknown = set(params) - set(DEFAULT_CONFIG)
    if unknown:
        raise ConfigError(f"unknown simulation parameters: {sorted(unknown)}.")
    config = copy.deepcopy(DEFAULT_CONFIG)
    for key, value in params.items():
        if value is not None and key not in ROUND_DEFAULTS and key != "data":
            config[key] = value
    config.update(resolve_round_params(**{k: v for k, v in params.items() if k in ROUND_DEFAULTS}))
    config["data"] = resolve_data_spec(params.get("data"))

    strategies = config["strategies"]
    if isinstance(strategies, str):
        strategies = [strategies]
    strategies = list(strategies)
    if not strategies:
        raise ConfigError("give at least one strategy.")
    bad = [s for s in strategies if split_arm(s, config)[0] not in STRATEGIES]
    if bad:
        raise ConfigError(f"unknown strategies {bad}; choose from {', '.join(sorted(STRATEGIES))}.")
    bad = [s for s in strategies if split_arm(s, config)[1] not in MODELS]
    if bad:
        raise ConfigError(
            f"unknown models in {bad}: write strategy@model with a model in {', '.join(MODELS)}."
        )
    if len(set(strategies)) != len(strategies):
        raise ConfigError(f"strategies are repeated: {strategies}.")
    config["strategies"] = strategies

    seeds = config["seeds"]
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = list(range(_checked("seeds", seeds)))
    seeds = [_checked("seed", s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct non-negative integers; got {seeds}.")
    config["seeds"] = seeds

    config["n_initial"] = _checked("n_initial", config["n_initial"])
    budget = check_budget(config["budget"], "simulate", error=ConfigError)
    if isinstance(budget, int) and budget < config["n_initial"]:
        raise ConfigError(
            f"budget ({budget}) is smaller than the initial labeled set ({config['n_initial']})."
        )
    config["budget"] = budget
    from ..engine import check_initial  # torch: imported when a configuration is checked

    check_initial(config["initial"], error=ConfigError)
    config["baseline"] = bool(config["baseline"])
    return _normalise(config)


def config_diff(old, new, prefix=""):
    """Dotted keys whose values differ between two configurations."""
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            keys.extend(config_diff(a, b, name + "."))
        elif a != b:
            keys.append(name)
    return keys
