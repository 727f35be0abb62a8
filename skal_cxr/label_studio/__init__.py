"""A Label Studio ML backend: skal_cxr's MC Dropout model and acquisition in Label Studio.

Labeling teams that work in `Label Studio <https://labelstud.io>`_ keep their
tool: ``skal-cxr label-studio-backend DIR`` serves Label Studio's ML backend
protocol (``GET /health``, ``POST /setup``, ``/predict``, ``/webhook``,
``/train``). Each prediction carries the predicted class (a ``choices``
result for the project's ``<Choices>`` control), the per-class MC Dropout
probabilities and a ``score`` that orders the tasks by the acquisition
function: the lowest score is the task to label next (Label Studio's Data
Manager sorts ascending). The network retrains in a background thread every
``retrain_every`` annotations; before any annotation a label-free
acquisition (``cold_start``) gives the scores.

- :class:`BackendSettings`: the typed settings, read by :func:`load_settings`
  from a backend folder or a JSON file;
- :class:`Backend`: the state (annotations, model, version) and what the
  routes call, without HTTP;
- :func:`create_app`: the FastAPI application.
"""

import importlib

__all__ = ["Backend", "BackendSettings", "create_app", "load_settings", "serve"]

# imported when first used, so that ``skal-cxr --help`` works without the
# ``label`` extra (FastAPI, pydantic)
_WHERE = {
    "Backend": "._backend",
    "BackendSettings": "._settings",
    "create_app": "._app",
    "load_settings": "._settings",
    "serve": "._app",
}


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
