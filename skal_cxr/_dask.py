"""Scoring a pool in chunks on a Dask cluster.

The fitted estimator is scattered to every worker once; chunks of the pool,
cut at prediction-batch boundaries, are sent to the workers as arrays (no
shared file system needed) and scored there with the same per-batch seeds
as a local pass, so the results are identical to local scoring. At most two
chunks per worker are in flight, which bounds the memory of the client.
"""

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from torch.utils.data import Dataset, Subset

from ._lazy import ImageRows

__all__ = ["reduce_on_dask", "check_scheduler"]

#: Seconds to wait for a scheduler's handshake in :func:`check_scheduler`.
CONNECT_TIMEOUT = 10


def check_scheduler(address, option="scheduler"):
    """Check, before any work, that a Dask scheduler answers at ``address``.

    Parameters
    ----------
    address : str
        Scheduler address, such as ``"tcp://host:8786"``.
    option : str, default="scheduler"
        The setting's name, for the messages.

    Raises
    ------
    ImportError
        When dask.distributed is not installed.
    ValueError
        For a malformed address, or one where no scheduler answers within
        :data:`CONNECT_TIMEOUT` seconds (one line each).
    """
    try:
        import distributed  # noqa: F401
        from distributed.comm import connect
    except ImportError as exc:  # an optional dependency
        raise ImportError(
            f"{option} needs dask.distributed, which is not installed: "
            "pip install 'dask[distributed]'."
        ) from exc

    async def handshake():
        comm = await connect(address, timeout=CONNECT_TIMEOUT)
        await comm.close()

    # in a thread of its own: the caller may be running an event loop (Jupyter)
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, handshake()).result()
        except (OSError, ValueError, TypeError) as exc:
            reason = " ".join(str(exc).split())
            raise ValueError(
                f"{option} {address!r}: no Dask scheduler answers there ({reason})."
            ) from exc


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
            pending.append(
                (
                    k,
                    client.submit(
                        _score_chunk, model, chunk, funcs, n_samples, start // batch, pure=False
                    ),
                )
            )
        for j, future in pending:
            results[j] = future.result()
    return [np.concatenate([r[i] for r in results], axis=0) for i in range(len(funcs))]
