"""The round engine: what every active-learning round needs, below its users.

:mod:`skal_cxr.simulation` (rounds answered from known labels) and
:mod:`skal_cxr.labeling` (rounds answered by radiologists) both run their
rounds with this package and import nothing of each other:

- :class:`RoundConfig`: the typed configuration of a round (network,
  training, strategy, query size, Monte Carlo samples, seed), checked once
  by :meth:`RoundConfig.from_params`;
- :class:`ActiveLoop`: the round itself, written once (fit on the labeled
  set, query the next batch, labels from an oracle passed in), with its
  :class:`RoundResult`; every simulation, labeling project and benchmark
  runs its rounds through it;
- :func:`query_round`: the next-batch rule (which images a fitted learner
  asks for next);
- :func:`initial_set`: the labels chosen before any model (label-free by
  default; :func:`initial_indices` draws at random or stratified);
  :func:`cold_start_batch` is its labeling-project form, with a reserve
  (``COLD_STARTS``);
- :func:`build_estimator` / :func:`make_learner`: the seeded estimator and
  learner of a configuration (``model="view"``, the default of new
  configurations: an MC Dropout head on the pool's frozen contrastive view;
  ``"cnn"``: the MC Dropout CNN from pixels, the model of every
  configuration stored without a ``model`` key);
- :func:`pool_view`: the pool's encoder, trained once per pool content
  without labels and cached;
- :func:`torch_threads`: the torch thread limit of a round.
"""

from ._cold_start import COLD_STARTS, cold_start_batch
from ._config import (
    LEGACY_MODEL,
    MODELS,
    ROUND_DEFAULTS,
    RoundConfig,
    merge_settings,
    resolve_round_params,
)
from ._loop import ActiveLoop, RoundResult, make_learner, query_round
from ._rounds import (
    INITIAL_METHODS,
    build_estimator,
    check_initial,
    initial_indices,
    initial_set,
    torch_threads,
    uses_labels,
)
from ._view import pool_view, view_encoder, view_files

__all__ = [
    "ActiveLoop",
    "RoundResult",
    "make_learner",
    "COLD_STARTS",
    "cold_start_batch",
    "RoundConfig",
    "ROUND_DEFAULTS",
    "MODELS",
    "LEGACY_MODEL",
    "pool_view",
    "view_encoder",
    "view_files",
    "resolve_round_params",
    "merge_settings",
    "initial_indices",
    "initial_set",
    "check_initial",
    "uses_labels",
    "INITIAL_METHODS",
    "build_estimator",
    "query_round",
    "torch_threads",
]
