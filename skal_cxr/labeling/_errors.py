"""The errors a labeling project reports to its users (one line each, with an HTTP status)."""

__all__ = ["LabelingError", "NotFound", "Conflict", "Forbidden", "InvalidLabel"]


class LabelingError(ValueError):
    """A request the project refuses (a user error, reported in one line)."""

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
