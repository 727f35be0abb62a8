"""The backend's settings: one typed object, read once from its folder or a JSON file."""

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import ConfigError

__all__ = ["BackendSettings", "load_settings", "CONFIG_NAME", "COLD_STARTS", "HOST", "PORT"]

#: Served on loopback by default; Label Studio on the same machine reaches it there.
HOST = "127.0.0.1"
#: Label Studio's customary ML backend port.
PORT = 9090
#: The settings file of a backend folder.
CONFIG_NAME = "backend.json"
#: Label-free acquisitions that give the scores before the first annotation.
COLD_STARTS = ("typicality", "random")
#: Settings also read from the environment (when the file does not set them).
_ENV = {
    "label_studio_url": "LABEL_STUDIO_URL",
    "api_token": "LABEL_STUDIO_API_KEY",
    "document_root": "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT",
}


@dataclass(frozen=True)
class BackendSettings:
    """What the backend needs: its folder, the model, the acquisition and Label Studio.

    Parameters
    ----------
    folder : path-like
        The backend's folder: annotations received, model checkpoint and
        version, image cache (created if needed).
    strategy : str, default="mean_std"
        Acquisition function once a model is trained (a key of
        :data:`skal_cxr.strategies.STRATEGIES`).
    cold_start : {"typicality", "random"}, default="typicality"
        Label-free acquisition before the first model.
    retrain_every : int, default=10
        Retrain after this many new, changed or deleted annotations.
    min_annotations : int, default=2
        Annotations (of at least two classes) before the first model.
    image_size : int, default=64
        Images are resized to ``image_size x image_size``.
    seed : int, default=0
        Seeds the network and the acquisition.
    rounds : dict, default={}
        Round parameters of :meth:`skal_cxr.engine.RoundConfig.from_params`
        (``n_mc_samples``, ``estimator``, ``training``, ``class_weight``, ...).
    label_studio_url : str or None, default=None
        Label Studio's URL, for ``/data/upload/`` images and the sync of
        annotations (default: ``LABEL_STUDIO_URL`` or the ``hostname`` of
        ``/setup``).
    api_token : str or None, default=None
        A Label Studio API token (default: ``LABEL_STUDIO_API_KEY`` or the
        ``access_token`` of ``/setup``).
    document_root : str or None, default=None
        Label Studio's local-files document root, for ``/data/local-files/``
        images (default: ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``).
    """

    folder: Path
    strategy: str = "mean_std"
    cold_start: str = "typicality"
    retrain_every: int = 10
    min_annotations: int = 2
    image_size: int = 64
    seed: int = 0
    rounds: dict = field(default_factory=dict)
    label_studio_url: str | None = None
    api_token: str | None = None
    document_root: str | None = None

    def round_config(self):
        """The checked round configuration (:class:`skal_cxr.engine.RoundConfig`).

        Returns
        -------
        config : RoundConfig
        """
        from ._engine import round_config

        return round_config(self.strategy, self.seed, self.rounds)

    def check(self):
        """Check every value; return ``self``.

        Returns
        -------
        self : BackendSettings

        Raises
        ------
        ConfigError
            For a value out of range or an unknown strategy.
        """
        for name in ("retrain_every", "min_annotations", "image_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}.")
        if self.cold_start not in COLD_STARTS:
            raise ConfigError(f"cold_start must be one of {COLD_STARTS}; got {self.cold_start!r}.")
        if not isinstance(self.rounds, dict):
            raise ConfigError(f"rounds must be a JSON object; got {self.rounds!r}.")
        self.round_config()
        return self


def load_settings(config_or_dir, **overrides):
    """The settings of a backend folder or of a JSON settings file.

    Parameters
    ----------
    config_or_dir : path-like
        A folder (its ``backend.json`` is read when present; the folder
        holds the state) or a JSON file (whose ``folder`` key, relative to
        the file, names the state folder; default: the file's folder).
    **overrides
        Settings that replace the file's (``None`` values are ignored).

    Returns
    -------
    settings : BackendSettings
        Checked.

    Raises
    ------
    ConfigError
        For an unreadable file, an unknown key or an invalid value.
    """
    path = Path(config_or_dir)
    if path.is_dir() or not path.suffix:
        folder, file = path, path / CONFIG_NAME
    else:
        folder, file = path.parent, path
    values = {}
    if file.exists():
        try:
            values = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{file}: not a JSON settings file ({exc}).") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"{file}: expected a JSON object.")
    elif path != folder:
        raise ConfigError(f"{file}: no such settings file.")
    known = {f.name for f in dataclasses.fields(BackendSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{file}: unknown settings {unknown}; known: {sorted(known)}.")
    values["folder"] = file.parent / values["folder"] if "folder" in values else folder
    for name, env in _ENV.items():
        if values.get(name) is None and os.environ.get(env):
            values[name] = os.environ[env]
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["folder"] = Path(values["folder"])
    return BackendSettings(**values).check()
