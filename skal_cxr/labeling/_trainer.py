"""Where model checkpoints written before the layout by layer find their callback.

A checkpoint (``joblib``) of a round trained before the labeling package was
laid out by layer names its training-progress callback by this module's path;
the worker's process is now :mod:`skal_cxr.labeling.worker._process`.
"""

from .worker._process import _EpochProgress  # noqa: F401
