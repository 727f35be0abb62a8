"""Monte Carlo Dropout sampling and trunk embeddings of :class:`~skal_cxr.MCDropoutCNN`."""

import warnings
from contextlib import nullcontext

import numpy as np
import torch
from skorch.dataset import unpack_data
from skorch.utils import check_is_fitted, to_tensor

from ._mc import mc_dropout_mode, sample_head, split_mc
from ._random import batch_seed, torch_rng, torch_seed_from
from ._validation import check_int


def _renamed(n_mc_samples, n_samples):
    """``n_mc_samples``, or the deprecated ``n_samples`` given instead (with a warning)."""
    if isinstance(n_samples, str) and n_samples == "deprecated":
        return n_mc_samples
    if n_mc_samples is not None:
        raise TypeError("Pass n_mc_samples only; n_samples is its deprecated alias.")
    warnings.warn(
        "n_samples was renamed n_mc_samples in 0.2 (n_samples means a number of images "
        "elsewhere) and will be removed in 0.3.",
        FutureWarning,
        stacklevel=3,
    )
    return n_samples


class _MCSamplingMixin:
    """MC Dropout samples of the class probabilities, chunked reductions and embeddings."""

    def predict_proba_samples(self, X, n_mc_samples=None, *, n_samples="deprecated"):
        """Monte Carlo Dropout samples of the class probabilities.

        Dropout layers are active; every other layer is in evaluation mode
        (BatchNorm keeps its running statistics) and gradients are off.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset
        n_mc_samples : int, default=None
            Number of MC samples; ``None`` uses the ``n_mc_samples``
            parameter.
        n_samples : int
            Deprecated alias of ``n_mc_samples`` (``n_samples`` means a
            number of images elsewhere); it will be removed in 0.3.

        Returns
        -------
        probas : ndarray of shape (n_mc_samples, n_images, n_classes), dtype float32
            Reproducible across calls when ``random_state`` is an int.

        See Also
        --------
        reduce_proba_samples : Per-image statistics of the samples in bounded memory.
        """
        n_mc_samples = _renamed(n_mc_samples, n_samples)
        return torch.cat(list(self._iter_proba_samples(X, n_mc_samples)), dim=1).numpy()

    def reduce_proba_samples(
        self, X, funcs, n_mc_samples=None, chunk_size=4096, *, n_samples="deprecated"
    ):
        """Per-image statistics of MC samples, computed chunk by chunk.

        Equivalent to ``[f(self.predict_proba_samples(X, n_mc_samples)) for f in
        funcs]`` for functions that treat images independently (every
        acquisition score does), but only ``chunk_size`` images' samples are
        held at a time, so memory does not grow with
        ``n_images * n_mc_samples * n_classes``. The dropout masks are the ones
        :meth:`predict_proba_samples` would draw: with an int ``random_state``
        the results are identical.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset
        funcs : sequence of callable
            Each maps samples of shape ``(n_mc_samples, n_chunk, n_classes)`` to
            an array whose first axis has length ``n_chunk``.
        n_mc_samples : int, default=None
            Number of MC samples; ``None`` uses the ``n_mc_samples``
            parameter.
        chunk_size : int, default=4096
            Images per chunk (rounded up to whole prediction batches). With
            a ``scheduler``, each chunk is one task on the Dask cluster.
        n_samples : int
            Deprecated alias of ``n_mc_samples``; it will be removed in 0.3.

        Returns
        -------
        results : list of ndarray
            One array per function, concatenated over chunks along axis 0.
        """
        n_mc_samples = _renamed(n_mc_samples, n_samples)
        chunk_size = check_int(chunk_size, "chunk_size")
        check_is_fitted(self, ["module_"])
        if self.scheduler is not None:
            from ._dask import reduce_on_dask

            return reduce_on_dask(self, X, funcs, n_mc_samples, chunk_size)
        return self._reduce_local(X, funcs, n_mc_samples, chunk_size)

    def _reduce_local(self, X, funcs, n_mc_samples, chunk_size, first_batch=0):
        results = [[] for _ in funcs]
        pending, n_pending = [], 0

        def flush():
            chunk = torch.cat(pending, dim=1).numpy()
            for out, func in zip(results, funcs):
                out.append(np.asarray(func(chunk)))
            pending.clear()

        for probas in self._iter_proba_samples(X, n_mc_samples, first_batch):
            pending.append(probas)
            n_pending += probas.shape[1]
            if n_pending >= chunk_size:
                flush()
                n_pending = 0
        if pending:
            flush()
        return [np.concatenate(out, axis=0) for out in results]

    def _iter_proba_samples(self, X, n_mc_samples, first_batch=0):
        """Yield MC samples of successive batches, shape (n_mc_samples, B, n_classes).

        One dropout-mode, no-grad and seeded-RNG context spans the whole
        iteration, so consume the generator fully inside one public call.
        With a seed, batch ``b`` (counted from ``first_batch``) draws its
        masks from ``batch_seed(seed, b)``: scoring a pool in chunks that
        start at batch boundaries gives the same samples as scoring it whole.
        """
        check_is_fitted(self, ["module_"])
        n_mc_samples = check_int(
            self.n_mc_samples if n_mc_samples is None else n_mc_samples, "n_mc_samples"
        )
        nonlinearity = self._get_predict_nonlinearity()
        split = split_mc(self.module_)
        seed = torch_seed_from(self.random_state)
        with mc_dropout_mode(self.module_), torch.inference_mode(), torch_rng(seed, self.device):
            for b, Xi in enumerate(self._batches(X), start=first_batch):
                if seed is not None:
                    torch.manual_seed(batch_seed(seed, b))
                if split is None:
                    with self._autocast():
                        probas = torch.stack(
                            [nonlinearity(self.module_(Xi)).float() for _ in range(n_mc_samples)]
                        )
                else:
                    trunk, head = split
                    with self._autocast():
                        z = trunk(Xi)
                    probas = sample_head(head, z.float(), n_mc_samples, nonlinearity)
                yield probas.float().cpu()

    def _autocast(self):
        """bfloat16 autocast when ``precision="bfloat16"``, else nothing."""
        if self.precision == "float32":
            return nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)

    def embed(self, X):
        """Output of the deterministic trunk (the features the head sees).

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or Dataset

        Returns
        -------
        embeddings : ndarray of shape (n_images, n_features), dtype float32

        Raises
        ------
        TypeError
            If the module cannot be split into trunk and head.
        """
        check_is_fitted(self, ["module_"])
        split = split_mc(self.module_)
        if split is None:
            raise TypeError(
                f"{type(self.module_).__name__} cannot be split into a deterministic "
                "trunk and a dropout head: give it an mc_split() method or use an "
                "nn.Sequential."
            )
        trunk = split[0]
        was_training = self.module_.training
        self.module_.eval()
        try:
            with torch.inference_mode(), self._autocast():
                out = [trunk(Xi).flatten(1).float().cpu() for Xi in self._batches(X)]
        finally:
            self.module_.train(was_training)
        return torch.cat(out).numpy()

    def _batches(self, X):
        """Input tensors of successive prediction batches, on ``self.device``."""
        dataset = self.get_dataset(X)
        channels_last = self.precision == "bfloat16" and self._on_cuda()
        if channels_last:
            self.module_.to(memory_format=torch.channels_last)
        for batch in self.get_iterator(dataset, training=False):
            Xi = unpack_data(batch)[0]
            if channels_last:
                Xi = Xi.contiguous(memory_format=torch.channels_last)
            yield to_tensor(Xi, device=self.device)
