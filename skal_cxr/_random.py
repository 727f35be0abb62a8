"""Every source of randomness in skal_cxr, seeded from one ``random_state``.

The scheme, in one place:

* Every public object takes a scikit-learn style ``random_state`` (``None``,
  an int, a ``numpy.random.RandomState``; the query strategies also take a
  ``numpy.random.Generator``). NumPy-side randomness (tie-breaking, pool
  subsets, bootstrap resamples) uses a ``numpy.random.Generator`` from
  :func:`resolve_rng`; torch-side randomness (weights, shuffling, dropout
  masks) runs inside :func:`torch_rng`, which seeds torch's global RNGs from
  :func:`torch_seed_from` and restores them on exit.
* A stream that must differ between rounds, yet replay exactly, is derived
  from an int seed and a key with :class:`numpy.random.SeedSequence`:
  :func:`derived_rng` gives the generator of ``SeedSequence([seed, *key])``
  and :func:`derived_seed` an int drawn from it. The active learner keys its
  streams ``[seed, round, purpose]`` (:func:`round_rng`); the simulator seeds
  the query of round ``r`` of the run with ``seed`` by ``derived_seed(seed,
  r)`` (:func:`round_seed`).
* ``None`` means fresh OS entropy; a ``RandomState`` instance is a seed
  source that advances, so repeated calls differ but replay from the same
  start.
"""

from contextlib import contextmanager, nullcontext

import numpy as np

__all__ = [
    "resolve_rng",
    "derived_rng",
    "derived_seed",
    "round_rng",
    "round_seed",
    "batch_seed",
    "torch_seed_from",
    "torch_rng",
]


def resolve_rng(random_state, *owners):
    """A ``numpy.random.Generator`` for tie-breaking and sampling.

    Parameters
    ----------
    random_state : int, RandomState, Generator or None
        A ``Generator`` is returned as it is; a ``RandomState`` is used as a
        seed source, so it advances; ``None`` falls back to ``owners``.
    *owners : object
        Objects whose ``random_state`` attribute is used, first non-``None``
        first, when ``random_state`` is ``None``; without any, fresh OS
        entropy.

    Returns
    -------
    rng : numpy.random.Generator
        The generator.
    """
    if random_state is None:
        for owner in owners:
            random_state = getattr(owner, "random_state", None)
            if random_state is not None:
                break
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if random_state is not None:
        check_random_state(random_state)  # same validation as scikit-learn
    return np.random.default_rng(random_state)


def check_random_state(random_state):
    """scikit-learn's ``check_random_state``, imported when first called.

    Reading this module (a labeling server's start-up does) imports no
    scikit-learn.
    """
    from sklearn.utils import check_random_state as check

    return check(random_state)


def derived_rng(seed, *key):
    """The generator of ``SeedSequence([seed, *key])``: one stream per key."""
    return np.random.default_rng([int(seed), *(int(k) for k in key)])


def derived_seed(seed, *key):
    """An int seed for the stream ``[seed, *key]`` (see :func:`derived_rng`)."""
    return int(np.random.SeedSequence([int(seed), *(int(k) for k in key)]).generate_state(1)[0])


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def round_rng(random_state, round_, purpose):
    """The generator of one purpose in one active-learning round.

    ``derived_rng(random_state, round_, purpose)`` for an int
    ``random_state``, so each round gets a different but reproducible
    stream; otherwise :func:`resolve_rng`.
    """
    if _is_int(random_state):
        return derived_rng(random_state, round_, purpose)
    return resolve_rng(random_state)


def round_seed(seed, round_):
    """Seed of the query of round ``round_`` of the simulation run with ``seed``.

    Parameters
    ----------
    seed : int
        The run's seed.
    round_ : int
        The round (0 for the query after the initial fit).

    Returns
    -------
    seed : int
        ``derived_seed(seed, round_)``.
    """
    return derived_seed(seed, round_)


def torch_seed_from(random_state):
    """An integer seed derived from ``random_state`` (``None`` stays ``None``).

    An int always gives the same seed; a ``RandomState`` advances, so repeated
    calls with one instance differ but replay exactly from the same start.
    """
    if random_state is None:
        return None
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def batch_seed(seed, batch):
    """Seed of batch number ``batch`` of an MC pass seeded with the int ``seed``.

    ``derived_seed(seed, batch)``: each prediction batch draws its dropout
    masks from its own stream, so a pool scored in chunks gets the samples
    it would get scored whole.
    """
    return derived_seed(seed, batch)


def torch_rng(random_state, device="cpu"):
    """Context in which torch's global RNGs are seeded from ``random_state``.

    The caller's RNG state is restored on exit (``torch.random.fork_rng``), so
    seeding here never disturbs the user's own random streams. With
    ``random_state=None`` the global RNG is used as it is.
    """
    seed = torch_seed_from(random_state)
    if seed is None:
        return nullcontext()
    import torch  # here, not at import: light entry points start without torch

    return _seeded(seed, torch.device(device))


@contextmanager
def _seeded(seed, device):
    import torch

    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
