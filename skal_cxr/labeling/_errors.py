"""The errors of a labeling project.

Those it reports to its users (one line each, with an HTTP status) are defined in
:mod:`skal_cxr.exceptions` and re-exported here for older imports; a failed or
dead training worker is reported by :class:`TrainingFailed` and :class:`WorkerDied`,
raised by the worker and by the pool it reads.
"""

from ..exceptions import Conflict, Forbidden, InvalidLabel, LabelingError, NotFound

__all__ = [
    "LabelingError",
    "NotFound",
    "Conflict",
    "Forbidden",
    "InvalidLabel",
    "TrainingFailed",
    "WorkerDied",
]


class TrainingFailed(RuntimeError):
    """A training round failed in the worker process, or the worker died.

    Parameters
    ----------
    message : str
        What failed; the worker's traceback follows it when there is one.
    """


class WorkerDied(TrainingFailed):
    """The worker process ended during a job (killed, out of memory); the next job starts one.

    Parameters
    ----------
    message : str
        How it ended.
    """
