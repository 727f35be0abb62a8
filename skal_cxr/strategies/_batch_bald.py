"""BatchBALD: greedy maximisation of the joint mutual information of a batch.

Kirsch, van Amersfoort & Gal (2019), "BatchBALD: Efficient and Diverse Batch
Acquisition for Deep Bayesian Active Learning". For a batch ``x_1..x_n``::

    a(x_1..x_n) = H[y_1, ..., y_n] - sum_i E_w H[y_i | x_i, w]

with the joint predictive ``p(y_1..y_n) = 1/T sum_k prod_i p(y_i | x_i, w_k)``
over ``T`` Monte Carlo samples ``w_k``. The batch is grown greedily (a
``1 - 1/e`` approximation, the function being submodular). Entropies in nats.

Memory. The joint is held as a matrix ``P[k, m] = prod_i p(y_im | x_i, w_k)``
over label configurations ``m`` of the batch chosen so far. While the
``n_classes ** |batch|`` configurations fit in ``max_configurations`` they
are enumerated exactly; beyond, ``max_configurations`` configurations are
sampled from the joint and the entropy is estimated by importance sampling
(Section 4.1 of the paper). ``P`` thus never exceeds
``n_mc_samples x max_configurations`` float64 values, and candidates are scored
in chunks of at most ``2**22`` float64 values (32 MiB) of the joint.
"""

import numpy as np
from scipy.special import entr

from .._random import resolve_rng
from .._validation import check_int
from ._base import check_samples, run_strategy, select_top, strategy_doc

__all__ = ["joint_entropy", "batch_bald_scores", "batch_bald"]

_CHUNK_ELEMENTS = 1 << 22
_MAX_EXACT = 1 << 24


def joint_entropy(samples):
    """Exact joint entropy ``H[y_1, ..., y_n]`` of the labels of ``n`` images.

    Parameters
    ----------
    samples : array-like of shape (n_mc_samples, n_images, n_classes)
        Monte Carlo probabilities of the images of the batch.

    Returns
    -------
    entropy : float
        In nats. Enumerates ``n_classes ** n_images`` configurations.

    Raises
    ------
    ValueError
        If there are more than ``2**24`` configurations.
    """
    samples = check_samples(samples)
    n_mc_samples, n_images, n_classes = samples.shape
    if n_classes**n_images > _MAX_EXACT:
        raise ValueError(f"{n_classes}**{n_images} label configurations are too many to enumerate.")
    P = np.ones((n_mc_samples, 1))
    for i in range(n_images):
        P = (P[:, :, None] * samples[:, i, None, :]).reshape(n_mc_samples, -1)
    return float(entr(P.mean(axis=0)).sum())


class _Joint:
    """Configuration matrix of a growing batch (exact, then sampled)."""

    def __init__(self, samples, max_configurations, rng):
        self.samples, self.cap, self.rng = samples, int(max_configurations), rng
        self.P = np.ones((samples.shape[0], 1))
        self.k = None  # MC sample behind each sampled configuration
        self.batch = []

    def add(self, i):
        n_mc_samples, _, n_classes = self.samples.shape
        self.batch.append(i)
        if self.k is None and self.P.shape[1] * n_classes <= self.cap:
            p = self.samples[:, i, :]
            self.P = (self.P[:, :, None] * p[:, None, :]).reshape(n_mc_samples, -1)
        elif self.k is None:  # switch: draw (w_k, configuration) pairs from the joint
            self.k = self.rng.integers(n_mc_samples, size=self.cap)
            self.P = np.ones((n_mc_samples, self.cap))
            for j in self.batch:
                self._extend_sampled(j)
        else:
            self._extend_sampled(i)

    def _extend_sampled(self, i):
        """Extend every sampled configuration with ``y_i ~ p(y | x_i, w_k)``."""
        p = self.samples[:, i, :]
        cum = np.cumsum(p[self.k], axis=1)
        u = self.rng.random(len(self.k)) * cum[:, -1]
        y = np.minimum((cum < u[:, None]).sum(axis=1), p.shape[1] - 1)
        self.P *= p[:, y]

    def entropies(self):
        """``H[batch, y_x]`` for every candidate ``x`` (exact or estimated)."""
        n_mc_samples, n_images, n_classes = self.samples.shape
        n_conf = self.P.shape[1]
        if self.k is None:
            weights = np.ones(n_conf)
        else:
            weights = 1.0 / (n_conf * self.P.mean(axis=0))
        chunk = max(1, _CHUNK_ELEMENTS // (n_conf * n_classes))
        out = np.empty(n_images)
        for start in range(0, n_images, chunk):
            s = self.samples[:, start : start + chunk, :]
            J = (self.P.T @ s.reshape(n_mc_samples, -1) / n_mc_samples).reshape(
                n_conf, -1, n_classes
            )
            out[start : start + chunk] = np.einsum("m,mnc->n", weights, entr(J))
        return out


def batch_bald_scores(samples, selected=(), *, max_configurations=10_000, random_state=None):
    """BatchBALD value of adding each image to the batch ``selected``.

    ``a(selected + x) = H[y_selected, y_x] - sum_{i in selected + x} E_w H[y_i | w]``.
    With an empty batch this is :func:`~skal_cxr.strategies.bald_scores`.

    Parameters
    ----------
    samples : array-like of shape (n_mc_samples, n_images, n_classes)
    selected : sequence of int, default=()
        Images already in the batch, in the order they were chosen.
    max_configurations : int, default=10_000
        Exact enumeration up to this many label configurations of
        ``selected``; beyond, this many are sampled.
    random_state : int, RandomState, Generator or None, default=None
        Draws the sampled configurations.

    Returns
    -------
    scores : ndarray of shape (n_images,)
        In nats; NaN for the images in ``selected``.
    """
    samples = check_samples(samples)
    joint = _Joint(samples, max_configurations, resolve_rng(random_state))
    for i in selected:
        joint.add(i)
    cond = entr(samples).sum(axis=2).mean(axis=0)
    scores = joint.entropies() - cond[list(selected)].sum() - cond
    scores[list(selected)] = np.nan
    return scores


def _select(ctx, n_instances, max_configurations=10_000):
    max_configurations = check_int(max_configurations, "max_configurations")
    samples = ctx.mc_samples()
    joint = _Joint(samples, max_configurations, ctx.rng)
    cond = entr(samples).sum(axis=2).mean(axis=0)
    selected, values, cond_sum = [], [], 0.0
    for step in range(n_instances):
        scores = joint.entropies() - cond_sum - cond
        scores[selected] = np.nan
        i = int(select_top(scores, 1, ctx.rng)[0])
        selected.append(i)
        values.append(scores[i])
        cond_sum += cond[i]
        if step + 1 < n_instances:
            joint.add(i)
    return np.array(selected, dtype=np.intp), np.array(values)


def batch_bald(
    learner,
    X_pool,
    n_instances=1,
    *,
    max_configurations=10_000,
    pool_size=None,
    n_mc_samples=None,
    random_state=None,
):
    return run_strategy(
        _select,
        learner,
        X_pool,
        n_instances,
        pool_size=pool_size,
        n_mc_samples=n_mc_samples,
        random_state=random_state,
        name="batch_bald",
        max_configurations=max_configurations,
    )


batch_bald.__doc__ = strategy_doc(
    """Query a batch greedily maximising its joint mutual information (BatchBALD).

    ``a(x_1..x_n) = H[y_1..y_n] - sum_i E_w H[y_i | x_i, w]`` (Kirsch et al.,
    2019), grown one image at a time; the first pick is the BALD maximiser.
    Needs ``predict_proba_samples``. Cost per pick grows with
    ``pool_size x n_mc_samples x max_configurations``.
""",
    """\
    max_configurations : int, default=10_000
        Cap on the label configurations held: exact enumeration up to it,
        this many sampled configurations beyond. Memory:
        ``n_mc_samples x max_configurations`` float64 plus 32 MiB.
""",
    scores="""The BatchBALD value of the batch up to and including each
        queried image (the first is its BALD score).""",
)
batch_bald.select = _select
