"""The errors a labeling project reports to its users (one line each, with an HTTP status).

Defined in :mod:`skal_cxr.exceptions`; re-exported here for older imports.
"""

from ..exceptions import Conflict, Forbidden, InvalidLabel, LabelingError, NotFound

__all__ = ["LabelingError", "NotFound", "Conflict", "Forbidden", "InvalidLabel"]
