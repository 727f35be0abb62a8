"""Shared pieces of the benchmarks: pools, the trained model, the scorers, timing, memory.

Every scorer compared by ``bench_acquisition.py`` is a :class:`Method`: its
``prepare`` turns ``(net, X, T, batch_size, score)`` into a zero-argument
callable returning one score per pool image (the deterministic floor returns
its probabilities instead). Everything a method needs before it can run
(tensors, patched copies of the network) is built by ``prepare`` and is not
timed; the timed call does the Monte Carlo sampling *and* the scoring.

The peers are called through their public APIs (modAL's ``mc_dropout_bald``
and ``mc_dropout_mean_st``, baal's ``MCDropoutModule``, ``MCCachingModule``,
``ModelWrapper`` and ``BALD`` heuristic); nothing of theirs is copied here.
"""

import gc
import importlib.util
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from skal_cxr import MCDropoutCNN
from skal_cxr.strategies import bald_scores, mean_std_scores

__all__ = [
    "SCORES",
    "METHODS",
    "Method",
    "available",
    "make_pool",
    "train_model",
    "load_pool_head",
    "time_best",
    "current_rss",
    "peak_rss",
    "reset_peak_rss",
    "available_threads",
]

SCORES = {"bald": bald_scores, "mean_std": mean_std_scores}
SCORE_LABELS = {"bald": "BALD", "mean_std": "mean STD"}

# Unique phantoms per image size; larger pools repeat them with fresh noise.
N_UNIQUE = 2000


def available(package):
    """Whether ``package`` can be imported (without importing it)."""
    return importlib.util.find_spec(package) is not None


def available_threads():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# -- data and model -----------------------------------------------------------
def make_pool(n_images, image_size, *, n_classes=3, random_state=0):
    """A pool of ``n_images`` float32 images of shape (image_size, image_size).

    Uses :func:`skal_cxr.datasets.make_cxr_phantoms` for at most ``N_UNIQUE``
    images and repeats them, each copy with fresh Gaussian noise (sd 0.01), up
    to ``n_images``: speed does not depend on image content, and no two pool
    images are equal (baal's cache compares inputs). Falls back to uniform
    noise if the phantom generator is missing.

    Returns
    -------
    X : ndarray of shape (n_images, image_size, image_size), float32
    y : ndarray of shape (n_images,), int
    """
    rng = np.random.default_rng(random_state)
    n_unique = min(n_images, N_UNIQUE)
    try:
        from skal_cxr.datasets import make_cxr_phantoms
    except ImportError:
        base = rng.random((n_unique, image_size, image_size), dtype=np.float32)
        base_y = rng.integers(0, n_classes, n_unique)
    else:
        base, base_y = make_cxr_phantoms(
            n_unique, image_size=image_size, n_classes=n_classes, random_state=random_state
        )
        base = np.asarray(base, dtype=np.float32)
    reps = -(-n_images // n_unique)
    X = np.tile(base, (reps, 1, 1))[:n_images]
    y = np.tile(np.asarray(base_y), reps)[:n_images]
    if n_images > n_unique:
        X[n_unique:] += rng.normal(0.0, 0.01, X[n_unique:].shape).astype(np.float32)
    return X, y


def train_model(
    image_size, *, n_train=500, max_epochs=1, batch_size=256, random_state=0, min_train_steps=None
):
    """The default :class:`~skal_cxr.MCDropoutCNN`, trained briefly on CPU.

    Trained on ``n_train`` phantoms (batch 64) for ``max_epochs`` epochs (or
    more, when the estimator's ``min_train_steps`` asks for it; ``None`` keeps
    its default), then set to predict in batches of ``batch_size``.
    """
    X, y = make_pool(n_train, image_size, random_state=random_state + 1)
    net = MCDropoutCNN(
        max_epochs=max_epochs, batch_size=64, device="cpu", random_state=random_state
    )
    if min_train_steps is not None and "min_train_steps" in net.get_params():
        net.set_params(min_train_steps=min_train_steps)
    net.fit(X, y)
    net.set_params(batch_size=batch_size)
    net.module_.eval()
    return net


def save_pool(path, X):
    np.save(path, np.ascontiguousarray(X, dtype=np.float32))


def load_pool_head(path, n_images):
    """The first ``n_images`` images of a pool saved by :func:`save_pool`.

    Reads exactly those bytes into one fresh array (no memory map, no
    intermediate copy), so the reading leaves no transient peak above the
    pool's own size.
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
            version, np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(f)
        per_image = int(np.prod(shape[1:]))
        X = np.fromfile(f, dtype=dtype, count=n_images * per_image)
    return X.reshape((n_images,) + tuple(shape[1:]))


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


# -- timing and memory --------------------------------------------------------
def time_best(fn, repeats, budget_s=float("inf"), collect=True):
    """Best wall-clock time of up to ``repeats`` calls of ``fn``.

    Stops early, after at least one call, once the calls so far took more
    than ``budget_s`` seconds together. With ``collect``, Python's garbage
    collector runs (untimed) before each call.

    Returns
    -------
    best : float
        Seconds (``time.perf_counter``).
    n_runs : int
    result : object
        Return value of the last call.
    """
    times, result = [], None
    for _ in range(repeats):
        if collect:
            gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if sum(times) > budget_s:
            break
    return min(times), len(times), result


def current_rss():
    """Resident set size of this process now, in bytes (Linux; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss()


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0).

    Returns
    -------
    done : bool
        False where ``/proc/self/clear_refs`` cannot be written; the peak
        then includes whatever this process used before.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss():
    """Peak resident set size of this process, in bytes.

    ``VmHWM`` of ``/proc/self/status`` (resettable with :func:`reset_peak_rss`),
    else ``getrusage``'s ``ru_maxrss`` (peak since the process started).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
