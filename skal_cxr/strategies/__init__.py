"""Query strategies (acquisition functions) for pool-based active learning.

Every strategy follows modAL's protocol::

    indices, scores = strategy(learner, X_pool, n_instances=1, *, pool_size=None,
                               n_mc_samples=None, random_state=None, **params)

and works with :class:`skal_cxr.ActiveLearner` and ``modAL.models.ActiveLearner``.
``indices`` are unique positions in ``X_pool``, most informative first;
``scores`` are the score of each queried image. One Monte Carlo pass per
query (shape ``(n_mc_samples, n_images, n_classes)``) feeds every score that
needs it. Beside each strategy a pure scoring function computes its
per-image scores from probability arrays, without a model; :func:`make_strategy`
turns such a function into a strategy. Entropies are in nats (natural
logarithm).

``STRATEGIES`` maps short names to strategies, for configuration files and
the command line. Label-free strategies (``random``, ``typicality``,
``probcover``, schedules starting with one of them and, until every class
has ``k`` labels, :func:`typicality_until_k_then`, see
:func:`is_label_free`) also work with an unfitted estimator, so they can
choose the first labels; they read the labeled images from the learner's
``X_training_`` or ``X_training`` (or an ``X_labeled`` argument).
"""

from ._badge import badge, gradient_embeddings, kmeans_plusplus_seeding
from ._base import QueryContext, make_strategy, select_top
from ._batch_bald import batch_bald, batch_bald_scores, joint_entropy
from ._bayesian import (
    bald,
    bald_scores,
    mean_std,
    mean_std_scores,
    variation_ratio_scores,
    variation_ratios,
)
from ._class_balanced import class_balanced, class_quotas
from ._coreset import coreset, coreset_scores, k_center_greedy
from ._dropquery import dropquery, dropquery_select, inconsistency_scores
from ._guard import classes_have_k, typicality_until_k_then
from ._power import power_bald, power_probabilities
from ._probcover import max_coverage, probcover, purity_radius
from ._random_sampling import random_sampling, random_scores
from ._schedule import is_label_free, label_free_query, schedule
from ._typicality import typicality, typicality_scores, typiclust
from ._uncertainty import (
    entropy_scores,
    least_confident,
    least_confident_scores,
    margin_sampling,
    margin_scores,
    max_entropy,
)

STRATEGIES = {
    "random": random_sampling,
    "max_entropy": max_entropy,
    "margin": margin_sampling,
    "least_confident": least_confident,
    "mean_std": mean_std,
    "variation_ratios": variation_ratios,
    "bald": bald,
    "batch_bald": batch_bald,
    "power_bald": power_bald,
    "coreset": coreset,
    "typicality": typicality,
    "probcover": probcover,
    "badge": badge,
    "typicality_then_max_entropy": schedule([(typicality, 40), (max_entropy, None)]),
    "dropquery": dropquery,
    "typicality_until_5_then_max_entropy": typicality_until_k_then(max_entropy, k=5),
}
STRATEGIES["typicality_then_max_entropy"].__name__ = "typicality_then_max_entropy"

__all__ = [
    "STRATEGIES",
    "QueryContext",
    "make_strategy",
    "select_top",
    "schedule",
    "is_label_free",
    "label_free_query",
    "typicality_until_k_then",
    "classes_have_k",
    # strategies
    "random_sampling",
    "max_entropy",
    "margin_sampling",
    "least_confident",
    "mean_std",
    "variation_ratios",
    "bald",
    "batch_bald",
    "power_bald",
    "coreset",
    "class_balanced",
    "typicality",
    "probcover",
    "badge",
    "dropquery",
    # scoring functions
    "random_scores",
    "entropy_scores",
    "margin_scores",
    "least_confident_scores",
    "mean_std_scores",
    "variation_ratio_scores",
    "bald_scores",
    "batch_bald_scores",
    "joint_entropy",
    "power_probabilities",
    "coreset_scores",
    "k_center_greedy",
    "class_quotas",
    "typicality_scores",
    "typiclust",
    "purity_radius",
    "max_coverage",
    "gradient_embeddings",
    "kmeans_plusplus_seeding",
    "inconsistency_scores",
    "dropquery_select",
]
