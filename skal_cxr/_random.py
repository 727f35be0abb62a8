"""Seeding PyTorch from scikit-learn style ``random_state`` values."""

from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = ["torch_seed_from", "torch_rng", "batch_seed"]


def torch_seed_from(random_state):
    """An integer seed derived from ``random_state`` (``None`` stays ``None``).

    An int always gives the same seed; a ``RandomState`` advances, so repeated
    calls with one instance differ but replay exactly from the same start.
    """
    if random_state is None:
        return None
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def batch_seed(seed, batch):
    """Seed of batch number ``batch`` of a pass seeded with the int ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(batch)]).generate_state(1)[0])


def torch_rng(random_state, device="cpu"):
    """Context in which torch's global RNGs are seeded from ``random_state``.

    The caller's RNG state is restored on exit (``torch.random.fork_rng``), so
    seeding here never disturbs the user's own random streams. With
    ``random_state=None`` the global RNG is used as it is.
    """
    seed = torch_seed_from(random_state)
    if seed is None:
        return nullcontext()
    return _seeded(seed, torch.device(device))


@contextmanager
def _seeded(seed, device):
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
