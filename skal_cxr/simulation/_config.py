"""The configuration of a simulation: defaults, validation, comparison on resume.

A configuration is a plain JSON-serialisable dict, stored in
``<results_dir>/config.json`` next to the records it produced, so that a
restarted run can check it is continuing the same experiment.
"""

import copy
import json
import math
import numbers

from .._validation import check_int

__all__ = [
    "DEFAULT_CONFIG", "DATA_DEFAULTS", "ConfigError", "resolve_config", "config_diff",
]


class ConfigError(ValueError):
    """A simulation parameter is invalid (a user error, reported in one line)."""


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

#: Defaults of :func:`skal_cxr.simulation.simulate`: the README's main job.
DEFAULT_CONFIG = {
    "data": DATA_DEFAULTS["medmnist"],
    "strategies": ["random", "max_entropy", "mean_std", "bald"],
    "seeds": [0, 1, 2],
    "n_initial": 40,
    "initial": "stratified",
    "query_size": 40,
    "budget": 320,
    "n_mc_samples": 20,
    "pool_size": None,
    "class_weight": "balanced",
    "sampler": None,
    "warm_start": False,
    "baseline": True,
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


def _normalise(value):
    """JSON round trip: tuples become lists, numpy scalars plain numbers."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _check_int(value, name, minimum):
    return check_int(value, name, minimum, error=ConfigError)


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
            raise ConfigError(f"device {device!r}: no CUDA GPU is visible here; use 'auto' or "
                              "'cpu'.")
        if dev.index is not None and dev.index >= n_gpus:
            raise ConfigError(f"device {device!r}: only {n_gpus} CUDA GPU(s) are visible.")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r} is not available here; use 'auto' or 'cpu'.")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}.")


def _merge(defaults, given, name):
    out = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        if key not in defaults and not (name == "estimator" and "__" in key):
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"unknown {name} setting {key!r}; known: {known}.")
        out[key] = value
    return out


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
            data = {"source": "medmnist", "name": data[len("medmnist:"):]}
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
    spec = _merge(DATA_DEFAULTS[data["source"]], data, "data")
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
        if value is None and key not in ("pool_size", "class_weight", "sampler"):
            continue
        if key in ("estimator", "training"):
            config[key] = _merge(DEFAULT_CONFIG[key], value, key)
        elif key != "data":
            config[key] = value
    config["data"] = resolve_data_spec(params.get("data"))

    strategies = config["strategies"]
    if isinstance(strategies, str):
        strategies = [strategies]
    strategies = list(strategies)
    if not strategies:
        raise ConfigError("give at least one strategy.")
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise ConfigError(
            f"unknown strategies {bad}; choose from {', '.join(sorted(STRATEGIES))}."
        )
    if len(set(strategies)) != len(strategies):
        raise ConfigError(f"strategies are repeated: {strategies}.")
    config["strategies"] = strategies

    seeds = config["seeds"]
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = list(range(_check_int(seeds, "seeds", 1)))
    seeds = [_check_int(s, "every seed", 0) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct non-negative integers; got {seeds}.")
    config["seeds"] = seeds

    config["n_initial"] = _check_int(config["n_initial"], "n_initial", 1)
    config["query_size"] = _check_int(config["query_size"], "query_size", 1)
    config["n_mc_samples"] = _check_int(config["n_mc_samples"], "n_mc_samples", 1)
    config["torch_threads"] = _check_int(config["torch_threads"], "torch_threads", 1)
    if config["pool_size"] is not None:
        config["pool_size"] = _check_int(config["pool_size"], "pool_size", 1)
    budget = config["budget"]
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real):
        raise ConfigError(f"budget must be a count or a fraction of the pool; got {budget!r}.")
    if isinstance(budget, numbers.Integral) or (budget > 1 and float(budget).is_integer()):
        budget = _check_int(int(budget), "budget", 1)
        if budget < config["n_initial"]:
            raise ConfigError(
                f"budget ({budget}) is smaller than the initial labeled set "
                f"({config['n_initial']})."
            )
    elif not 0 < budget <= 1:
        raise ConfigError(f"a fractional budget must be in (0, 1]; got {budget!r}.")
    config["budget"] = budget
    if config["class_weight"] not in (None, "balanced"):
        raise ConfigError(
            f"class_weight must be None or 'balanced'; got {config['class_weight']!r}."
        )
    if config["initial"] not in ("stratified", "random"):
        raise ConfigError(
            f"initial must be 'stratified' or 'random'; got {config['initial']!r}."
        )
    if config["sampler"] is not None:
        from .._sampling import resolve_sampler

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
    config["baseline"] = bool(config["baseline"])
    training = config["training"]
    if training["lr_schedule"] not in ("cosine", "constant"):
        raise ConfigError(
            f"training lr_schedule must be 'cosine' or 'constant'; got {training['lr_schedule']!r}."
        )
    training["max_epochs"] = _check_int(training["max_epochs"], "max_epochs", 1)
    training["min_train_steps"] = _check_int(training["min_train_steps"], "min_train_steps", 0)
    if config["pool_size"] is not None and config["pool_size"] < config["query_size"]:
        raise ConfigError(
            f"pool_size ({config['pool_size']}) is smaller than query_size "
            f"({config['query_size']}): a query could not find enough images to label."
        )
    est = config["estimator"]
    if not _finite_positive(est["lr"]):
        raise ConfigError(f"lr must be a finite positive number; got {est['lr']!r}.")
    est["batch_size"] = _check_int(est["batch_size"], "batch_size", 1)
    for key in ("module__width", "module__n_blocks"):
        if key in est:
            est[key] = _check_int(est[key], key.replace("module__", ""), 1)
    _check_device(est.get("device", "auto"))
    if not 0 <= float(est["module__dropout"]) < 1:
        raise ConfigError(f"dropout must be in [0, 1); got {est['module__dropout']!r}.")
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
