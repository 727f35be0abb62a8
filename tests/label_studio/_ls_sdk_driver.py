"""Label Studio driven with its SDK, run by Label Studio's own Python.

``label-studio-sdk`` (2.x) pins packages that clash with skal_cxr's
environment (numpy, Pillow, ...), so it is not imported by the tests: this
script runs in Label Studio's virtualenv, where the SDK is installed with
Label Studio, as a child process of the test (see ``_ls_server.SdkDriver``)::

    LS_VENV/bin/python _ls_sdk_driver.py URL API_TOKEN

It reads one command a line on stdin, a JSON object ``{"op": NAME, ...}``
whose other keys are the command's arguments, and answers each with one line
on stdout: ``{"ok": RESULT}`` (JSON) or ``{"error": MESSAGE, "status": HTTP
STATUS or null}``. It imports nothing from skal_cxr or the tests.
"""

import json
import sys

from label_studio_sdk.client import LabelStudio
from label_studio_sdk.core.api_error import ApiError


def _dump(model):
    """An SDK object (pydantic) as JSON-ready data, its fields unknown to the SDK too."""
    return model.model_dump(mode="json")


def create_project(ls, title, label_config):
    """Create a project; its id."""
    return ls.projects.create(title=title, label_config=label_config).id


def import_tasks(ls, project, tasks):
    """Import tasks (``[{"data": {...}}, ...]``) into a project; their ids."""
    response = ls.projects.import_tasks(project, request=tasks, return_task_ids=True)
    return list(response.task_ids)


def connect_backend(ls, project, url, title):
    """Connect an ML backend to a project (Label Studio calls its ``/setup``)."""
    return _dump(ls.ml.create(project=project, url=url, title=title))


def create_view(ls, project, title, ordering):
    """A Data Manager tab of the project sorted by ``ordering``; its id."""
    return ls.views.create(project=project, data={"title": title, "ordering": ordering}).id


def retrieve_predictions(ls, project):
    """The Data Manager's *Retrieve Predictions* on every task of the project."""
    ls.actions.create(
        id="retrieve_tasks_predictions",
        project=project,
        selected_items={"all": True, "excluded": []},
    )


def list_tasks(ls, project, view=None):
    """The project's tasks (in the order of ``view``, when given), with their annotations."""
    pages = ls.tasks.list(project=project, view=view, page_size=1000)
    return [_dump(task) for task in pages]


def annotate(ls, task, project, result):
    """Create an annotation of a task; its id."""
    return ls.annotations.create(task, project=project, result=result).id


def predictions(ls, project):
    """Every prediction of the project's tasks."""
    return [_dump(p) for p in ls.predictions.list(project=project)]


def export(ls, project):
    """The project's JSON export, every task included."""
    chunks = ls.projects.exports.download_sync(project, export_type="JSON", download_all_tasks=True)
    return json.loads(b"".join(chunks))


COMMANDS = {
    f.__name__: f
    for f in (
        create_project,
        import_tasks,
        connect_backend,
        create_view,
        retrieve_predictions,
        list_tasks,
        annotate,
        predictions,
        export,
    )
}


def main(url, api_key):
    """Answer the commands on stdin until it is closed."""
    answers, sys.stdout = sys.stdout, sys.stderr  # (stdout is for the answers only)
    ls = LabelStudio(base_url=url, api_key=api_key, timeout=300)
    for line in sys.stdin:
        if not line.strip():
            continue
        args = json.loads(line)
        op = COMMANDS[args.pop("op")]
        try:
            answer = {"ok": op(ls, **args)}
        except ApiError as e:
            answer = {"error": f"{e.status_code}: {e.body}", "status": e.status_code}
        print(json.dumps(answer), file=answers, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
