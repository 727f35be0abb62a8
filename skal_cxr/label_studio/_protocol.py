"""Label Studio's ML backend protocol: request bodies, the labeling config, predictions.

Label Studio posts JSON to the backend: ``/setup`` (``project``,
``schema``: the labeling config, ``hostname``, ``access_token``),
``/predict`` (``tasks``, ``label_config``, ``project``, ``params``),
``/webhook`` (an ``action`` such as ``ANNOTATION_CREATED`` with the
``annotation``, its ``task`` and ``project``) and ``/train``. Only the fields
read here are declared; others are accepted and ignored, so that newer Label
Studio versions still talk to the backend.
"""

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "SetupRequest",
    "PredictRequest",
    "WebhookEvent",
    "TrainRequest",
    "ChoicesControl",
    "parse_label_config",
    "project_id",
    "make_prediction",
    "annotation_label",
    "ANNOTATION_EVENTS",
]

#: The webhook actions that change the annotations.
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED")


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class SetupRequest(_Body):
    """``POST /setup``: Label Studio connects a project to the backend."""

    project: str | int | None = None
    schema_: str | None = None
    hostname: str | None = None
    access_token: str | None = None
    model_version: str | None = None

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @classmethod
    def parse(cls, body):
        """Read a request body (``schema`` shadows a pydantic name, hence ``schema_``)."""
        body = dict(body)
        return cls(schema_=body.pop("schema", None), **body)


class PredictRequest(_Body):
    """``POST /predict``: predictions for ``tasks``."""

    tasks: list[dict[str, Any]] = []
    label_config: str | None = None
    project: str | int | None = None
    params: dict[str, Any] | None = None


class WebhookEvent(_Body):
    """``POST /webhook``: an event of Label Studio (``ANNOTATION_CREATED``, ...)."""

    action: str
    annotation: dict[str, Any] | None = None
    task: dict[str, Any] | None = None
    project: dict[str, Any] | None = None


class TrainRequest(_Body):
    """``POST /train``: retrain now (the body's annotations are optional)."""

    annotations: list[dict[str, Any]] | None = None
    project: str | int | dict[str, Any] | None = None
    label_config: str | None = None


@dataclass(frozen=True)
class ChoicesControl:
    """The ``<Choices>`` control a backend predicts, and the image it labels.

    Parameters
    ----------
    from_name : str
        The ``name`` of the ``<Choices>`` tag.
    to_name : str
        Its ``toName``: the ``name`` of the ``<Image>`` tag.
    data_key : str
        The task's ``data`` key of the image (``$image`` gives ``image``).
    labels : tuple of str
        The ``value`` of each ``<Choice>``, in order: class codes ``0 .. k-1``.
    """

    from_name: str
    to_name: str
    data_key: str
    labels: tuple[str, ...]


def parse_label_config(config):
    """The first ``<Choices>`` control of a labeling config and its ``<Image>``.

    Parameters
    ----------
    config : str
        Label Studio's labeling config (XML).

    Returns
    -------
    control : ChoicesControl

    Raises
    ------
    ValueError
        When the config is not XML, has no ``<Choices>`` with at least two
        ``<Choice>`` values, or its ``toName`` is not an ``<Image>``.
    """
    try:
        root = ET.fromstring(config)
    except ET.ParseError as exc:
        raise ValueError(f"the labeling config is not XML ({exc}).") from exc
    images = {e.get("name"): e.get("value", "") for e in root.iter() if e.tag == "Image"}
    for choices in root.iter("Choices"):
        labels = tuple(c.get("value") or c.get("alias") or "" for c in choices.iter("Choice"))
        to_name = (choices.get("toName") or "").split(",")[0]
        if len(labels) < 2 or to_name not in images:
            continue
        return ChoicesControl(
            from_name=choices.get("name", ""),
            to_name=to_name,
            data_key=images[to_name].lstrip("$"),
            labels=labels,
        )
    raise ValueError(
        "the labeling config has no <Choices> control of at least two <Choice> values "
        "whose toName is an <Image>."
    )


def project_id(project):
    """The project's id in Label Studio's ``"ID.TIMESTAMP"`` (or a plain id, or a dict).

    Parameters
    ----------
    project : str, int, dict or None
        The ``project`` field of a request.

    Returns
    -------
    project_id : str or None
    """
    if isinstance(project, dict):
        project = project.get("id")
    if project is None or project == "":
        return None
    return str(project).split(".")[0]


def make_prediction(control, probabilities, score, model_version, acquisition):
    """One task's prediction: the most probable class, its probabilities and the score.

    Parameters
    ----------
    control : ChoicesControl
        The project's control.
    probabilities : sequence of float
        Mean MC Dropout probability of each class (``None`` before any model).
    score : float
        The task's place in the acquisition order: lowest first.
    model_version : str
        The backend's model version.
    acquisition : dict
        ``{"function": name, "value": acquisition value or None, "rank": int}``.

    Returns
    -------
    prediction : dict
        ``result`` (one ``choices`` item, with ``meta`` holding the
        probabilities and the acquisition), ``score`` and ``model_version``.
    """
    meta = {"acquisition": acquisition}
    result = []
    if probabilities is not None:
        probs = [float(p) for p in probabilities]
        best = max(range(len(probs)), key=probs.__getitem__)
        meta["probabilities"] = dict(zip(control.labels, probs))
        result.append(
            {
                "from_name": control.from_name,
                "to_name": control.to_name,
                "type": "choices",
                "value": {"choices": [control.labels[best]]},
                "score": probs[best],
                "meta": meta,
            }
        )
    return {
        "result": result,
        "score": float(score),
        "model_version": model_version,
        "meta": meta,
    }


def annotation_label(annotation, control):
    """The class code of an annotation: its ``choices`` result for ``control``.

    Parameters
    ----------
    annotation : dict
        A Label Studio annotation (``result``: list of result items).
    control : ChoicesControl
        The project's control.

    Returns
    -------
    code : int or None
        The position of the chosen label in ``control.labels``; ``None`` for
        a skipped or cancelled annotation, or one without a known choice.
    """
    if annotation.get("was_cancelled"):
        return None
    for item in annotation.get("result") or []:
        if item.get("type") != "choices" or item.get("from_name") != control.from_name:
            continue
        chosen = (item.get("value") or {}).get("choices") or []
        if chosen and chosen[0] in control.labels:
            return control.labels.index(chosen[0])
    return None
