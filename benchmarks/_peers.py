"""The scorers compared by ``bench_acquisition.py``: ours, a naive loop, modAL, baal, the floor.

Every scorer is a :class:`Method`: its ``prepare`` turns ``(net, X, T,
batch_size, score)`` into a zero-argument callable returning one score per
pool image (the deterministic floor returns its probabilities instead).
Everything a method needs before it can run (tensors, patched copies of the
network) is built by ``prepare`` and is not timed; the timed call does the
Monte Carlo sampling *and* the scoring.

The peers are called through their public APIs (modAL's ``mc_dropout_bald``
and ``mc_dropout_mean_st``, baal's ``MCDropoutModule``, ``MCCachingModule``,
``ModelWrapper`` and ``BALD`` heuristic); nothing of theirs is copied here.
"""

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from skal_cxr.strategies import bald_scores, mean_std_scores

__all__ = ["SCORES", "SCORE_LABELS", "METHODS", "PEERS", "Method", "available", "select_methods"]

SCORES = {"bald": bald_scores, "mean_std": mean_std_scores}
SCORE_LABELS = {"bald": "BALD", "mean_std": "mean STD"}
#: What users would otherwise run (peers); --peer-max-pool limits them to small pools.
PEERS = ("naive", "modal", "baal", "baal_cache")


def available(package):
    """Whether ``package`` can be imported (without importing it)."""
    return importlib.util.find_spec(package) is not None


# -- the methods ----------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """A way to score the pool.

    Attributes
    ----------
    key : str
        Short name used on the command line and in the JSON.
    label : str
        Name in the tables.
    prepare : callable
        ``prepare(net, X, *, T, batch_size, score, chunk_size) -> callable``.
    requires : str or None
        Package needed; the method is skipped when it is missing.
    scored : bool
        False for the deterministic floor, which computes no score.
    """

    key: str
    label: str
    prepare: Callable
    requires: str = None
    scored: bool = True


def _as_tensor(X):
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)[:, None])


def _prepare_ours(net, X, *, T, score, **_):
    scorer = SCORES[score]
    return lambda: scorer(net.predict_proba_samples(X, n_mc_samples=T))


def _prepare_ours_chunked(net, X, *, T, score, chunk_size, **_):
    # what the strategies do for pools above QueryContext.chunk_size
    scorer = SCORES[score]
    return lambda: net.reduce_proba_samples(X, [scorer], n_mc_samples=T, chunk_size=chunk_size)[0]


def _set_dropout_only(model):
    """Eval mode everywhere except dropout layers: what a careful PyTorch user does."""
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train()


def _prepare_naive(net, X, *, T, batch_size, score, **_):
    model, Xt, scorer = net.module_, _as_tensor(X), SCORES[score]

    def run():
        _set_dropout_only(model)
        try:
            with torch.inference_mode():
                samples = torch.stack(
                    [
                        torch.cat([model(xb).softmax(-1) for xb in Xt.split(batch_size)])
                        for _ in range(T)
                    ]
                )
        finally:
            model.eval()
        return scorer(samples.numpy())

    return run


def _prepare_modal(net, X, *, T, batch_size, score, n_instances=10, **_):
    from modAL.dropout import mc_dropout_bald, mc_dropout_mean_st
    from modAL.models import ActiveLearner

    query = {"bald": mc_dropout_bald, "mean_std": mc_dropout_mean_st}[score]
    # modAL's own learner around the trained network (nothing is fitted: no X_training)
    learner = ActiveLearner(estimator=net, query_strategy=query)
    Xt = _as_tensor(X)
    n_instances = min(n_instances, len(X))

    def run():
        # skorch leaves the module in train mode after fit: BatchNorm must be
        # in eval mode, as modAL only switches dropout layers.
        net.module_.eval()
        idx, values = query(
            learner, Xt, n_instances=n_instances, num_cycles=T, sample_per_forward_pass=batch_size
        )
        scores = np.full(len(X), np.nan)
        scores[idx] = values
        return scores

    return run


def _quiet_baal():
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def _prepare_baal(net, X, *, T, batch_size, score, caching=False, **_):
    import copy
    import warnings

    from baal.active.heuristics import BALD
    from baal.bayesian.caching_utils import MCCachingModule
    from baal.bayesian.dropout import MCDropoutModule
    from baal.modelwrapper import ModelWrapper, TrainingArgs
    from scipy.special import softmax

    _quiet_baal()
    model = MCDropoutModule(copy.deepcopy(net.module_))
    if caching:
        model = MCCachingModule(model)
    # baal's default replicates each batch T times in memory; its cache needs
    # replicate_in_memory=False (baal warns otherwise).
    args = TrainingArgs(
        batch_size=batch_size, use_cuda=False, workers=0, replicate_in_memory=not caching
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper = ModelWrapper(model, args)
    dataset = torch.utils.data.TensorDataset(_as_tensor(X), torch.zeros(len(X)))

    def run():
        logits = wrapper.predict_on_dataset(dataset, iterations=T, verbose=False)
        if score == "bald":
            return BALD().get_uncertainties(logits)  # softmaxes the logits itself
        # baal has no mean-STD heuristic: its samples, our scoring function
        return mean_std_scores(softmax(logits, axis=1).transpose(2, 0, 1))

    return run


def _prepare_baal_cached(net, X, **kwargs):
    return _prepare_baal(net, X, caching=True, **kwargs)


def _prepare_floor(net, X, *, batch_size, **_):
    model, Xt = net.module_, _as_tensor(X)

    def run():
        model.eval()
        with torch.inference_mode():
            return torch.cat([model(xb).softmax(-1) for xb in Xt.split(batch_size)]).numpy()

    return run


METHODS = {
    m.key: m
    for m in [
        Method("ours", "skal_cxr predict_proba_samples + score", _prepare_ours),
        Method("ours_chunked", "skal_cxr reduce_proba_samples (chunked)", _prepare_ours_chunked),
        Method("naive", "naive loop: T full passes", _prepare_naive),
        Method("modal", "modAL mc_dropout_*", _prepare_modal, requires="modAL"),
        Method("baal", "baal MCDropoutModule", _prepare_baal, requires="baal"),
        Method("baal_cache", "baal + MCCachingModule", _prepare_baal_cached, requires="baal"),
        Method("floor", "floor: 1 deterministic pass", _prepare_floor, scored=False),
    ]
}


def select_methods(keys):
    """The methods named by ``keys`` whose package is installed, and those skipped.

    Returns
    -------
    methods : list of Method
    skipped : list of str
        ``"key (package)"`` of each method whose package is missing.
    """
    methods, skipped = [], []
    for key in keys:
        m = METHODS[key]
        (methods if m.requires is None or available(m.requires) else skipped).append(m)
    return methods, [f"{m.key} ({m.requires})" for m in skipped]
