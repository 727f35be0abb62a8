"""Active-learning simulation: strategies x seeds on labeled data, resumable.

:func:`simulate` runs the grid and writes ``config.json`` and one JSON line
per finished round under ``records/``; :func:`skal_cxr.report.make_report`
turns them into learning curves and a summary table. The ``skal-cxr
simulate`` console script is a thin layer over :func:`simulate`.
"""

from .._results import ResultsDirError, read_records
from ._config import ConfigError, resolve_config
from ._data import DataError, load_simulation_data
from ._runner import SimulationInterrupted, round_schedule
from ._simulate import simulate

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
