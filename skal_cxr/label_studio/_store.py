"""The backend's state on disk: tasks seen, annotations received, the model and its version.

Every change is written before the request that brought it is answered,
with :func:`skal_cxr._atomic.atomic_write` (``state.json``) and
:func:`skal_cxr._atomic.replacing` (``model.joblib``): a backend killed at
any moment restarts with every annotation it acknowledged, and with the
last complete model.
"""

import json
import threading
from pathlib import Path

from .._atomic import atomic_write, replacing

__all__ = ["StateStore", "STATE_NAME", "MODEL_NAME", "numeric_id"]

STATE_NAME = "state.json"
MODEL_NAME = "model.joblib"
#: The state's format (written in the file, checked when read).
FORMAT = 1


def numeric_id(task_id):
    """Sort key of Label Studio ids stored as strings: numerically, then others."""
    return (0, int(task_id), "") if str(task_id).isdigit() else (1, 0, str(task_id))


def _recency(item):
    """Sort key of ``(annotation id, entry)``: its time, then its id (numerically)."""
    annotation_id, entry = item
    return entry["updated_at"], int(annotation_id) if annotation_id.isdigit() else -1


def _empty():
    return {
        "format": FORMAT,
        "project": None,
        "control": None,
        "tasks": {},
        "annotations": {},
        "changes": 0,
        "model": None,
    }


class StateStore:
    """The state of a backend folder, read once and written on every change.

    Parameters
    ----------
    folder : path-like
        The backend's folder (created if needed).

    Attributes
    ----------
    state : dict
        ``project`` (Label Studio's id), ``control`` (the ``<Choices>``
        control as a dict), ``tasks`` (``{task id: image address}``),
        ``annotations`` (``{task id: {annotation id: {"label": code or
        None, "updated_at": str}}}``), ``changes`` (annotation changes since
        the model was trained) and ``model`` (``version``, ``n_annotations``,
        ``labels``, ``fit_time``; ``None`` before the first model).
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.lock = threading.RLock()
        self.state = self._read()

    @property
    def path(self):
        return self.folder / STATE_NAME

    @property
    def model_path(self):
        return self.folder / MODEL_NAME

    def _read(self):
        if not self.path.exists():
            return _empty()
        state = json.loads(self.path.read_text(encoding="utf-8"))
        if state.get("format") != FORMAT:
            raise ValueError(f"{self.path}: not a state file of this version.")
        return {**_empty(), **state}

    def save(self):
        """Write the state atomically and durably."""
        with self.lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(self.state, indent=1, sort_keys=True))

    def add_tasks(self, addresses):
        """Remember tasks' image addresses; return whether any was new.

        Parameters
        ----------
        addresses : dict
            ``{task id: image address}``.

        Returns
        -------
        changed : bool
        """
        with self.lock:
            tasks = self.state["tasks"]
            new = {str(k): v for k, v in addresses.items() if tasks.get(str(k)) != v}
            tasks.update(new)
            return bool(new)

    def set_annotation(self, task_id, annotation_id, label, updated_at):
        """Record an annotation (created or updated); return whether it changed.

        Parameters
        ----------
        task_id, annotation_id : int or str
            Label Studio's ids.
        label : int or None
            Class code; ``None`` for a skipped annotation.
        updated_at : str
            Its time (ISO 8601): the latest annotation of a task is its label.

        Returns
        -------
        changed : bool
        """
        entry = {"label": label, "updated_at": str(updated_at or "")}
        with self.lock:
            task = self.state["annotations"].setdefault(str(task_id), {})
            if task.get(str(annotation_id)) == entry:
                return False
            task[str(annotation_id)] = entry
            self.state["changes"] += 1
            return True

    def delete_annotation(self, task_id, annotation_id):
        """Forget an annotation; return whether it was known.

        Parameters
        ----------
        task_id : int, str or None
            Label Studio's task id; ``None`` looks the annotation up (Label
            Studio's ``ANNOTATIONS_DELETED`` names the annotations only).
        annotation_id : int or str
            Label Studio's annotation id.

        Returns
        -------
        changed : bool
        """
        with self.lock:
            if task_id is None:
                task_id = next(
                    (t for t, a in self.state["annotations"].items() if str(annotation_id) in a),
                    None,
                )
            task = self.state["annotations"].get(str(task_id), {})
            if task.pop(str(annotation_id), None) is None:
                return False
            if not task:
                self.state["annotations"].pop(str(task_id), None)
            self.state["changes"] += 1
            return True

    def consensus(self):
        """The label of each annotated task: its latest annotation's (skips left out).

        Returns
        -------
        labels : dict
            ``{task id: class code}``, for tasks whose latest annotation has a label.
        """
        out = {}
        with self.lock:
            for task_id, annotations in self.state["annotations"].items():
                latest = max(annotations.items(), key=_recency)
                if latest[1]["label"] is not None:
                    out[task_id] = int(latest[1]["label"])
        return out

    def save_model(self, estimator, info):
        """Write the model, then its version in the state (the model first: never ahead).

        Parameters
        ----------
        estimator : MCDropoutCNN
            The fitted network.
        info : dict
            ``version``, ``n_annotations``, ``labels``, ``fit_time``.
        """
        import joblib

        self.folder.mkdir(parents=True, exist_ok=True)
        with replacing(self.model_path, suffix=".joblib") as tmp:
            joblib.dump(estimator, tmp)
        with self.lock:
            self.state["model"] = info
            self.save()

    def load_model(self):
        """The saved network, or ``None`` before the first model.

        Returns
        -------
        estimator : MCDropoutCNN or None
        """
        import joblib

        if self.state["model"] is None or not self.model_path.exists():
            return None
        return joblib.load(self.model_path)
