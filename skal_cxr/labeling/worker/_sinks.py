"""Where a round's training progress goes: :data:`PROGRESS_SINKS`, by key.

Shared by :mod:`~skal_cxr.labeling.worker._process` (which sets the sinks)
and :mod:`~skal_cxr.labeling.worker._progress` (the skorch callback that
reports to them), so that neither imports the other.
"""

from collections.abc import Callable

__all__ = ["PROGRESS_SINKS"]

#: key -> callable(fraction); ``"*"`` in the worker process.
PROGRESS_SINKS: dict[str, Callable[[float], None]] = {}
