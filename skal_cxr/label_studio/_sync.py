"""Reading a project's tasks and annotations back from Label Studio's REST API."""

import json
import urllib.request

__all__ = ["fetch_project_tasks"]

#: Seconds to wait for Label Studio's export.
TIMEOUT = 120


def fetch_project_tasks(url, token, project):
    """Every task of a project with its annotations (Label Studio's JSON export).

    Parameters
    ----------
    url : str
        Label Studio's URL.
    token : str
        An API token (``Authorization: Token ...``).
    project : str or int
        The project's id.

    Returns
    -------
    tasks : list of dict
        ``id``, ``data`` and ``annotations`` of each task.

    Raises
    ------
    OSError
        When Label Studio cannot be reached or refuses the token.
    ValueError
        When the answer is not a JSON list.
    """
    export = (
        f"{url.rstrip('/')}/api/projects/{int(project)}/export"
        "?exportType=JSON&download_all_tasks=true"
    )
    request = urllib.request.Request(export, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        tasks = json.loads(response.read())
    if not isinstance(tasks, list):
        raise ValueError(f"{export}: expected a JSON list of tasks.")
    return tasks
