"""Shared pieces of the benchmarks: phantom pools, the trained model, the machine.

The scorers compared by ``bench_acquisition.py`` are in ``_peers.py``,
timing and memory in ``_timing.py``.
"""

import os

import numpy as np

from skal_cxr import MCDropoutCNN

__all__ = ["make_pool", "train_model", "save_pool", "load_pool_head", "available_threads"]

# Unique phantoms per image size; larger pools repeat them with fresh noise.
N_UNIQUE = 2000


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
    """Save the pool ``X`` as float32 ``.npy`` (read back by :func:`load_pool_head`)."""
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
