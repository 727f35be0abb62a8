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

from .._lazy_names import lazy_names

#: Public name -> the module that defines it, loaded on first use (:pep:`562`).
_LAZY = {
    "COLD_STARTS": "._config",
    "cold_start_batch": "._cold_start",
    "LEGACY_MODEL": "._config",
    "MODELS": "._config",
    "ROUND_DEFAULTS": "._config",
    "RoundConfig": "._config",
    "merge_settings": "._config",
    "resolve_round_params": "._config",
    "ActiveLoop": "._loop",
    "RoundResult": "._loop",
    "make_learner": "._loop",
    "query_round": "._loop",
    "INITIAL_METHODS": "._rounds",
    "build_estimator": "._rounds",
    "check_initial": "._rounds",
    "initial_indices": "._rounds",
    "initial_set": "._rounds",
    "torch_threads": "._rounds",
    "uses_labels": "._rounds",
    "pool_view": "._view",
    "view_encoder": "._view",
    "view_files": "._view",
}

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

__getattr__, __dir__ = lazy_names(__name__, _LAZY)
