"""The exceptions and warnings skal_cxr raises for its users' mistakes.

Each is reported in one line naming the thing at fault. They live here, in
one module, so that code catching them does not depend on where they are
raised; the older import locations (``skal_cxr.simulation``,
``skal_cxr.labeling``, ...) re-export them.
"""

__all__ = [
    "ConfigError",
    "DataError",
    "SimulationInterrupted",
    "ResultsDirError",
    "RecordsWarning",
    "StorageWarning",
    "LabelingError",
    "NotFound",
    "Conflict",
    "Forbidden",
    "InvalidLabel",
    "DicomwebError",
]


class ConfigError(ValueError):
    """A simulation or round parameter is invalid (a user error, reported in one line)."""


class DataError(RuntimeError):
    """The data of a simulation cannot be read (a user error, reported in one line)."""


class SimulationInterrupted(RuntimeError):
    """The simulation stopped early: Ctrl-C (which skorch swallows), SIGTERM, or its end.

    Parameters
    ----------
    message : str
        What stopped, and how to resume.
    signum : int or None, default=None
        The signal that stopped it, when one did (kept as ``signum``).
    """

    def __init__(self, message, signum=None):
        super().__init__(message)
        self.signum = signum


class ResultsDirError(ValueError):
    """A results folder cannot be used (another configuration, not ours, in use)."""


class RecordsWarning(UserWarning):
    """Something in ``records/`` was not a valid record and was left out."""


class StorageWarning(UserWarning):
    """A labeling project's files were tampered with: labels may be lost (one line)."""


class LabelingError(ValueError):
    """A request a labeling project refuses (a user error, reported in one line).

    Each subclass carries the HTTP ``status`` the web app answers with.
    """

    status = 400


class NotFound(LabelingError):
    """No such image, rater or label."""

    status = 404


class Conflict(LabelingError):
    """The request does not fit the project's state (image not assigned, label undone)."""

    status = 409


class Forbidden(LabelingError):
    """Acting on another rater's label."""

    status = 403


class InvalidLabel(LabelingError):
    """A label that is not one of the project's classes."""

    status = 422


class DicomwebError(RuntimeError):
    """A DICOMweb server that cannot be used: unreachable, refusing, or answering wrongly.

    The message is one line and names the server, never the credentials.
    """
