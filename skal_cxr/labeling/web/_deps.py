"""Dependencies of the labeling API: the project served, and the rater of a request.

The project lives in ``app.state.project`` (set by
:func:`~skal_cxr.labeling.create_app`); a rater is whoever's bearer token
the request carries.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .._project import LabelingProject

__all__ = ["Unauthorized", "get_project", "current_rater", "ProjectDep", "RaterDep"]

_bearer = HTTPBearer(auto_error=False)


class Unauthorized(Exception):
    """No valid rater token: answered 401 with ``WWW-Authenticate: Bearer``."""


def get_project(request: Request) -> LabelingProject:
    """The project the app serves."""
    return request.app.state.project


ProjectDep = Annotated[LabelingProject, Depends(get_project)]


def current_rater(
    project: ProjectDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The name of the rater whose token the request carries; :class:`Unauthorized` if none."""
    name = project.rater_for_token(credentials.credentials if credentials else None)
    if name is None:
        raise Unauthorized()
    return name


RaterDep = Annotated[str, Depends(current_rater)]
