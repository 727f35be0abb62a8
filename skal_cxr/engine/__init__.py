"""The round engine: what every active-learning round needs, below its users.

:mod:`skal_cxr.simulation` (rounds answered from known labels) and
:mod:`skal_cxr.labeling` (rounds answered by radiologists) both run their
rounds with this package and import nothing of each other:

- :class:`RoundConfig`: the typed configuration of a round (network,
  training, strategy, query size, Monte Carlo samples, seed), checked once
  by :meth:`RoundConfig.from_params`;
- :func:`initial_set`: the initial labeled set (label-free by default;
  :func:`initial_indices` draws it at random or stratified);
- :func:`cold_start_batch`: a labeling project's first batch, chosen
  without labels (``COLD_STARTS``);
- :func:`build_estimator`: the seeded :class:`~skal_cxr.MCDropoutCNN`;
- :func:`query_round`: one round's query over the images not yet labeled;
- :func:`torch_threads`: the torch thread limit of a round.
"""

from ._cold_start import COLD_STARTS, cold_start_batch
from ._config import ROUND_DEFAULTS, RoundConfig, merge_settings, resolve_round_params
from ._rounds import (
    INITIAL_METHODS,
    build_estimator,
    check_initial,
    initial_indices,
    initial_set,
    query_round,
    torch_threads,
    uses_labels,
)

__all__ = [
    "COLD_STARTS",
    "cold_start_batch",
    "RoundConfig",
    "ROUND_DEFAULTS",
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
