"""The checks ``simulate`` makes before any training: metric, network, schedulers."""

from ._config import ConfigError

__all__ = ["MAX_PARAMETERS", "metric_names"]


#: Networks with more parameters than this are refused as a likely typo.
MAX_PARAMETERS = 200_000_000


def metric_names(class_names, operating_point=True):
    """Names of the metrics a round records for these classes."""
    import numpy as np

    from ..metrics import classification_metrics

    k = len(class_names)
    proba = np.full((k, k), 1.0 / k)
    return sorted(
        classification_metrics(
            np.arange(k),
            proba,
            class_names=list(class_names),
            operating_point=np.ones(k) if operating_point else None,
        )
    )


def _check_metric(metric, data):
    if metric is None:
        return
    known = metric_names(data.class_names, operating_point=data.y_val is not None)
    if metric not in known:
        raise ConfigError(f"unknown metric {metric!r}; choose from {', '.join(known)}.")


def _check_network(config, data):
    """Build the network on PyTorch's meta device: bad sizes fail here, not in a worker."""
    import torch

    from ..networks import CXRNet

    est = config["estimator"]
    params = {k[len("module__") :]: v for k, v in est.items() if k.startswith("module__")}
    params["pretrained"] = False  # the shapes only: nothing to load
    module = est.get("module", CXRNet)
    try:
        with torch.device("meta"):
            net = module(
                n_classes=len(data.class_names), in_channels=data.X_pool.shape[1], **params
            )
        n_params = sum(p.numel() for p in net.parameters())
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"the network cannot be built with these settings: {exc}") from exc
    if n_params > MAX_PARAMETERS:
        raise ConfigError(
            f"the network would have {n_params:,} parameters (more than {MAX_PARAMETERS:,}); "
            "check --width and --n-blocks."
        )


def _check_scheduler(scheduler, option):
    if scheduler is None:
        return
    from .._dask import check_scheduler

    try:
        check_scheduler(scheduler, option)
    except (ImportError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


def _scoring_on(config, score_scheduler):
    """The configuration the runs get: with the estimator's Dask ``scheduler``, if any."""
    if score_scheduler is None:
        return config
    return {**config, "estimator": {**config["estimator"], "scheduler": score_scheduler}}
