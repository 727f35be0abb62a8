"""The backend without HTTP: annotations in, predictions with acquisition scores out.

:class:`Backend` keeps the state of one Label Studio project (one backend
folder per project): the tasks it has seen, the annotations received (the
latest annotation of a task is its label), the model and its version. The
routes of :mod:`._app` parse requests and call its methods.
"""

import logging
import threading

import numpy as np

from ._images import ImageError, ImageFetcher
from ._protocol import (
    ChoicesControl,
    annotation_label,
    make_prediction,
    parse_label_config,
    project_id,
)
from ._store import StateStore, numeric_id
from ._sync import fetch_project_tasks
from ._training import TrainingMixin

__all__ = ["Backend", "BackendError"]

logger = logging.getLogger(__name__)

#: ``model_version`` before the first model.
COLD_START_VERSION = "skal_cxr-cold-start"


class BackendError(ValueError):
    """A request the backend refuses; ``status`` is the HTTP status it answers with."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


class Backend(TrainingMixin):
    """The state of a backend folder and the protocol's operations on it.

    Parameters
    ----------
    settings : BackendSettings
        The checked settings.

    Attributes
    ----------
    store : StateStore
        The state on disk.
    config : RoundConfig
        The round configuration (network, training, acquisition).
    """

    def __init__(self, settings):
        self.settings = settings
        self.config = settings.round_config()
        self.store = StateStore(settings.folder)
        self.label_studio_url = settings.label_studio_url
        self.api_token = settings.api_token
        self._lock = threading.RLock()
        self._learner = None
        self._ranking = None
        self._training = None
        self._train_again = False
        self.last_error = None
        self._restore_model()

    # -- state -----------------------------------------------------------------
    @property
    def control(self):
        """The project's ``<Choices>`` control (``None`` before ``/setup`` or ``/predict``)."""
        control = self.store.state["control"]
        return (
            None
            if control is None
            else ChoicesControl(**{**control, "labels": tuple(control["labels"])})
        )

    @property
    def model_version(self):
        """``skal_cxr-N`` after the N-th training; ``skal_cxr-cold-start`` before."""
        model = self.store.state["model"]
        return COLD_START_VERSION if model is None else model["version"]

    def fetcher(self):
        """The image reader with the current Label Studio URL and token."""
        return ImageFetcher(
            self.settings.folder / "images",
            self.settings.image_size,
            document_root=self.settings.document_root,
            label_studio_url=self.label_studio_url,
            api_token=self.api_token,
        )

    def _set_control(self, label_config):
        if not label_config:
            if self.control is None:
                raise BackendError("no labeling config yet: Label Studio sends it in /setup.")
            return self.control
        try:
            control = parse_label_config(label_config)
        except ValueError as exc:
            raise BackendError(str(exc), status=422) from exc
        old = self.control
        if old is not None and old.labels != control.labels and self.store.state["model"]:
            raise BackendError(
                f"the project's choices changed from {list(old.labels)} to "
                f"{list(control.labels)}: start a new backend folder.",
                status=409,
            )
        if old != control:
            with self.store.lock:
                self.store.state["control"] = {**control.__dict__, "labels": list(control.labels)}
                self.store.save()
        return control

    def _set_project(self, project):
        pid = project_id(project)
        if pid is None:
            return
        with self.store.lock:
            known = self.store.state["project"]
            if known is None:
                self.store.state["project"] = pid
                self.store.save()
            elif known != pid:
                raise BackendError(
                    f"this backend folder serves Label Studio project {known}, not {pid}: "
                    "start one backend (folder) per project.",
                    status=409,
                )

    def _task_address(self, task, control):
        data = task.get("data") or {}
        address = data.get(control.data_key)
        if not isinstance(address, str) or not address:
            raise BackendError(f"task {task.get('id')}: no image in data[{control.data_key!r}].")
        return address

    # -- the protocol ----------------------------------------------------------
    def health(self):
        """``GET /health``: status, model version, labels and whether it trains."""
        model = self.store.state["model"] or {}
        return {
            "status": "UP",
            "model_class": "skal_cxr.MCDropoutCNN",
            "model_version": self.model_version,
            "is_training": self.is_training,
            "n_labeled": len(self.store.consensus()),
            "n_trained_on": model.get("n_annotations", 0),
        }

    def setup(self, project, schema, hostname=None, access_token=None):
        """``POST /setup``: the project, its labeling config and Label Studio's address.

        The annotations are synced from Label Studio when its URL and a
        token are known (settings, or the ``hostname`` and ``access_token``
        Label Studio sends); the token is kept in memory only.

        Parameters
        ----------
        project : str or None
            Label Studio's ``"ID.TIMESTAMP"`` of the project.
        schema : str or None
            The labeling config.
        hostname : str or None, default=None
            Label Studio's URL.
        access_token : str or None, default=None
            A token of the project's owner.

        Returns
        -------
        response : dict
            ``{"model_version": ...}``.
        """
        self._set_project(project)
        self._set_control(schema)
        self.label_studio_url = self.settings.label_studio_url or hostname or None
        self.api_token = self.settings.api_token or access_token or None
        self.try_sync()
        return {"model_version": self.model_version}

    def try_sync(self):
        """:meth:`sync` when Label Studio's URL, a token and the project are known.

        A failure is logged and shown by ``/health``, never raised: the
        backend keeps serving from its folder.

        Returns
        -------
        synced : bool
        """
        if not (self.label_studio_url and self.api_token and self.store.state["project"]):
            return False
        try:
            self.sync()
        except (OSError, ValueError) as exc:
            logger.warning("sync from Label Studio failed: %s", exc)
            self.last_error = f"sync from Label Studio failed: {exc}"
            return False
        return True

    def sync(self):
        """Read every task and annotation of the project from Label Studio's API.

        Returns
        -------
        n_tasks : int
            Tasks read.
        """
        tasks = fetch_project_tasks(
            self.label_studio_url, self.api_token, self.store.state["project"]
        )
        control = self.control
        if control is None:
            return 0
        with self.store.lock:
            addresses = {}
            for task in tasks:
                try:
                    addresses[task["id"]] = self._task_address(task, control)
                except BackendError:  # (a task of another data key: not predicted)
                    continue
            self.store.add_tasks(addresses)
            for task in tasks:
                known = set(self.store.state["annotations"].get(str(task["id"]), {}))
                seen = set()
                for annotation in task.get("annotations") or []:
                    seen.add(str(annotation["id"]))
                    self._record(task["id"], annotation, control)
                for gone in known - seen:
                    self.store.delete_annotation(task["id"], gone)
            self.store.save()
        self._maybe_train()
        return len(tasks)

    def predict(self, tasks, label_config=None, project=None):
        """``POST /predict``: one prediction per task, scored by the acquisition order.

        Parameters
        ----------
        tasks : list of dict
            Label Studio's tasks (``id`` and ``data``).
        label_config : str or None, default=None
            The labeling config (``None``: the one of ``/setup``).
        project : str or None, default=None
            The project.

        Returns
        -------
        response : dict
            ``results`` (one prediction per task, see
            :func:`make_prediction`) and ``model_version``.
        """
        self._set_project(project)
        control = self._set_control(label_config)
        addresses = {str(t["id"]): self._task_address(t, control) for t in tasks}
        with self.store.lock:
            if self.store.add_tasks(addresses):
                self.store.save()
        with self._lock:
            ranking = self._rank(control)
            learner, version = self._learner, self.model_version
        ids = [str(t["id"]) for t in tasks]
        ok = [i for i in ids if i in ranking["score"]]
        probas = {}
        if learner is not None and ok:
            from ._engine import mc_probabilities

            X = self.fetcher().get_many([addresses[i] for i in ok])
            probas = dict(zip(ok, mc_probabilities(learner, self.config, X)))
        results = []
        for i in ids:
            if i not in ranking["score"]:
                results.append(
                    {
                        "result": [],
                        "score": None,
                        "model_version": version,
                        "meta": {"error": ranking["errors"].get(i, "unreadable image")},
                    }
                )
                continue
            acquisition = {
                "function": ranking["function"],
                "value": ranking["value"].get(i),
                "rank": ranking["rank"][i],
            }
            results.append(
                make_prediction(control, probas.get(i), ranking["score"][i], version, acquisition)
            )
        return {"results": results, "model_version": version}

    def _rank(self, control):
        """The acquisition order of every known task, cached per model and pool."""
        with self.store.lock:
            tasks = dict(self.store.state["tasks"])
        key = (self.model_version, tuple(sorted(tasks)))
        if self._ranking is not None and self._ranking["key"] == key:
            return self._ranking
        from ._engine import acquisition_order, cold_start_order

        fetcher, ids, images, errors = self.fetcher(), [], [], {}
        for task_id in sorted(tasks, key=numeric_id):
            try:
                images.append(fetcher.get(tasks[task_id]))
                ids.append(task_id)
            except ImageError as exc:
                errors[task_id] = str(exc)
        size = self.settings.image_size
        X = np.stack(images) if images else np.zeros((0, 1, size, size), np.float32)
        if self._learner is None:
            order = cold_start_order(self.settings.cold_start, self.config, len(control.labels), X)
            values, function = None, self.settings.cold_start
        else:
            order, values = acquisition_order(self._learner, self.config, X, self.config.seed)
            function = self.config.strategy
        ranking = {"key": key, "function": function, "score": {}, "rank": {}, "value": {}}
        for r, pos in enumerate(order):
            task_id = ids[pos]
            ranking["rank"][task_id] = r
            if values is None:
                ranking["score"][task_id] = float(r)
            else:
                ranking["value"][task_id] = float(values[r])
                ranking["score"][task_id] = -float(values[r])
        ranking["errors"] = errors
        self._ranking = ranking
        return ranking

    def webhook(self, event):
        """``POST /webhook``: record annotation events; retrain every ``retrain_every``.

        Parameters
        ----------
        event : dict
            Label Studio's webhook payload (``action`` and its objects).

        Returns
        -------
        response : dict
            ``action``, ``recorded`` (annotations changed) and ``training``.
        """
        action = event.get("action")
        if action == "START_TRAINING":
            return {"action": action, "recorded": 0, "training": self._maybe_train(force=True)}
        if action not in _ANNOTATION_ACTIONS:
            return {"action": action, "recorded": 0, "training": self.is_training}
        self._set_project(event.get("project"))
        control = self.control
        if control is None:
            raise BackendError("no labeling config yet: Label Studio sends it in /setup.", 409)
        recorded = 0
        with self.store.lock:
            if action.endswith("_DELETED"):
                annotations = event.get("annotations") or [event.get("annotation") or {}]
                for annotation in annotations:
                    task = annotation.get("task")
                    task_id = task.get("id") if isinstance(task, dict) else task
                    if annotation.get("id") is not None:
                        recorded += self.store.delete_annotation(task_id, annotation["id"])
            else:
                annotations, tasks = event.get("annotation"), event.get("task")
                if not isinstance(annotations, list):
                    annotations, tasks = [annotations], [tasks]
                tasks = {t["id"]: t for t in tasks or [] if isinstance(t, dict)}
                for annotation in annotations:
                    task_id = annotation.get("task")
                    task_id = task_id.get("id") if isinstance(task_id, dict) else task_id
                    if task_id in tasks and tasks[task_id].get("data"):
                        address = self._task_address(tasks[task_id], control)
                        self.store.add_tasks({task_id: address})
                    recorded += self._record(task_id, annotation, control)
            self.store.save()
        return {"action": action, "recorded": recorded, "training": self._maybe_train()}

    def _record(self, task_id, annotation, control):
        time = annotation.get("updated_at") or annotation.get("created_at")
        label = annotation_label(annotation, control)
        return self.store.set_annotation(task_id, annotation["id"], label, time)

    def train(self, annotations=None, label_config=None, project=None):
        """``POST /train``: record the tasks' annotations sent, then retrain now.

        Parameters
        ----------
        annotations : list of dict or None, default=None
            Tasks with their ``annotations`` (Label Studio's export).
        label_config : str or None, default=None
            The labeling config.
        project : str or None, default=None
            The project.

        Returns
        -------
        response : dict
            ``{"job": ...}`` naming the training, or ``{}`` when there is
            too little to train on.
        """
        self._set_project(project)
        control = self._set_control(label_config)
        with self.store.lock:
            for task in annotations or []:
                if task.get("data"):
                    self.store.add_tasks({task["id"]: self._task_address(task, control)})
                for annotation in task.get("annotations") or []:
                    self._record(task["id"], annotation, control)
            self.store.save()
        return {"job": self.model_version} if self._maybe_train(force=True) else {}


_ANNOTATION_ACTIONS = (
    "ANNOTATION_CREATED",
    "ANNOTATIONS_CREATED",
    "ANNOTATION_UPDATED",
    "ANNOTATION_DELETED",
    "ANNOTATIONS_DELETED",
)
