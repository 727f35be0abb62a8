"""Active-learning simulation: strategies x seeds on labeled data, resumable.

:func:`simulate` runs the grid and writes ``config.json`` and one JSON line
per finished round under ``records/``; :func:`skal_cxr.report.make_report`
turns them into learning curves and a summary table. The ``skal-cxr
simulate`` console script is a thin layer over :func:`simulate`.
"""

from ._config import (
    DATA_DEFAULTS, DEFAULT_CONFIG, ConfigError, config_diff, resolve_config,
)
from ._data import DataError, SimulationData, load_simulation_data
from ._records import read_record_file, read_records, record_path
from .._random import round_seed
from ._runner import (
    SimulationInterrupted, build_estimator, initial_indices, round_schedule, run_active,
    run_baseline,
)
from ._simulate import CONFIG_FILE, ResultsDirError, simulate

__all__ = [
    "simulate", "resolve_config", "load_simulation_data", "read_records", "read_record_file",
    "record_path", "round_schedule", "round_seed", "initial_indices",
    "build_estimator", "run_active", "run_baseline", "config_diff",
    "SimulationData", "ConfigError", "DataError", "ResultsDirError", "SimulationInterrupted",
    "DEFAULT_CONFIG", "DATA_DEFAULTS", "CONFIG_FILE",
]
