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

from ._app import create_app, serve
from ._backend import Backend
from ._settings import BackendSettings, load_settings

__all__ = ["Backend", "BackendSettings", "create_app", "load_settings", "serve"]
