"""Scoring a pool in chunks on a Dask cluster.

The fitted estimator is scattered to every worker once; chunks of the pool,
cut at prediction-batch boundaries, are sent to the workers as arrays (no
shared file system needed) and scored there with the same per-batch seeds
as a local pass, so the results are identical to local scoring. At most two
chunks per worker are in flight, which bounds the memory of the client.
"""

from collections import deque

import numpy as np
from torch.utils.data import Dataset, Subset

from ._lazy import ImageRows

__all__ = ["reduce_on_dask"]


def _chunk(X, start, stop):
    if isinstance(X, ImageRows):
        return X[start:stop]
    if isinstance(X, Dataset):
        return Subset(X, range(start, stop))
    return np.array(X[start:stop])  # a plain array, not a pickled memory map


def _score_chunk(net, X, funcs, n_samples, first_batch):
    return net._reduce_local(X, funcs, n_samples, len(X), first_batch)


def reduce_on_dask(net, X, funcs, n_samples, chunk_size):
    """``net.reduce_proba_samples(X, funcs, ...)`` with chunks scored on ``net.scheduler``."""
    try:
        from distributed import Client
    except ImportError as exc:  # an optional dependency
        raise ImportError(
            "scheduler= needs dask.distributed: pip install 'dask[distributed]'."
        ) from exc
    n = len(X)
    batch = n if net.batch_size == -1 else int(net.batch_size)
    per_chunk = max(1, -(-chunk_size // batch)) * batch
    starts = list(range(0, n, per_chunk))
    results = [None] * len(starts)
    with Client(net.scheduler, set_as_default=False) as client:
        model = client.scatter(net, broadcast=True)
        window = 2 * max(1, len(client.nthreads()))
        pending = deque()
        for k, start in enumerate(starts):
            if len(pending) >= window:
                j, future = pending.popleft()
                results[j] = future.result()
            chunk = _chunk(X, start, min(start + per_chunk, n))
            pending.append((k, client.submit(_score_chunk, model, chunk, funcs, n_samples,
                                             start // batch, pure=False)))
        for j, future in pending:
            results[j] = future.result()
    return [np.concatenate([r[i] for r in results], axis=0) for i in range(len(funcs))]
