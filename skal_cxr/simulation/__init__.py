"""Active-learning simulation: strategies x seeds on labeled data, resumable.

:func:`simulate` runs the grid and writes ``config.json`` and one JSON line
per finished round under ``records/``; :func:`skal_cxr.report.make_report`
turns them into learning curves and a summary table. The ``skal-cxr
simulate`` console script is a thin layer over :func:`simulate`.
"""

from .._lazy_names import lazy_names

#: Public name -> the module that defines it, loaded on first use (:pep:`562`).
_LAZY = {
    "ResultsDirError": ".._results",
    "read_records": ".._results",
    "ConfigError": "._config",
    "resolve_config": "._config",
    "DataError": "._data",
    "load_simulation_data": "._data",
    "SimulationInterrupted": "._runner",
    "round_schedule": "._runner",
    "simulate": "._simulate",
}

__all__ = [
    "simulate",
    "resolve_config",
    "load_simulation_data",
    "read_records",
    "round_schedule",
    "ConfigError",
    "DataError",
    "ResultsDirError",
    "SimulationInterrupted",
]

__getattr__, __dir__ = lazy_names(__name__, _LAZY)
