"""A project's settings and folder layout: names spelled once, old settings read.

The settings are the JSON dict stored in the database by
:func:`~skal_cxr.labeling.init_project`. Projects written by earlier
versions stay readable: :func:`read_settings` brings their keys up to date
in memory (the database is not rewritten).
"""

from pathlib import Path

from ..engine import COLD_STARTS, RoundConfig

__all__ = [
    "COLD_STARTS",
    "PREVIEW_DIR",
    "CHECKPOINT_DIR",
    "CACHE_DIR",
    "DICOM_DIR",
    "VIEW_DIR",
    "ROUND_KEYS",
    "read_settings",
    "round_config",
    "cache_dir",
    "checkpoint_path",
    "view_dir",
]


#: The project folder's subfolders (the database is ``_db.DB_FILE``).
PREVIEW_DIR, CHECKPOINT_DIR, CACHE_DIR = "previews", "checkpoints", "cache"
#: The DICOM store of a project over a PACS (see ``_dicomweb_project``).
DICOM_DIR = "dicom"
#: The project's view of its pool: the encoder files and ``current.json`` (see ``_view``).
VIEW_DIR = "view"

#: The round-engine settings stored under ``"engine"`` (the fields of
#: :class:`~skal_cxr.engine.RoundConfig` that a project does not keep at top level).
ROUND_KEYS = (
    "model",
    "view",
    "head",
    "n_mc_samples",
    "pool_size",
    "class_weight",
    "sampler",
    "warm_start",
    "estimator",
    "training",
    "torch_threads",
)


def read_settings(settings):
    """The settings of a project, with the keys of earlier versions renamed.

    ``batch_size`` (images per round) is now ``query_size``, the round
    settings once stored under ``"simulation"`` are under ``"engine"``, and
    a project stored without a ``model`` trains the CNN (``"cnn"``), as it
    did when it was made.

    Parameters
    ----------
    settings : dict
        As stored in the database.

    Returns
    -------
    settings : dict
        A new dict in the current form.
    """
    settings = dict(settings)
    if "query_size" not in settings and "batch_size" in settings:
        settings["query_size"] = settings.pop("batch_size")
    if "engine" not in settings and "simulation" in settings:
        settings["engine"] = settings.pop("simulation")
    engine = dict(settings.get("engine", {}))
    engine.setdefault("sampler", None)
    engine.setdefault("model", "cnn")  # projects made before the view: the CNN, as they were
    settings["engine"] = engine
    return settings


def round_config(settings):
    """The :class:`~skal_cxr.engine.RoundConfig` of a project's (current) settings.

    Parameters
    ----------
    settings : dict
        As returned by :func:`read_settings`.

    Returns
    -------
    config : RoundConfig
        Strategy, query size and seed of the project, with its engine settings.
    """
    return RoundConfig.from_dict(
        settings["engine"],
        strategy=settings["strategy"],
        query_size=settings["query_size"],
        seed=settings["random_state"],
    )


def cache_dir(path, image_size):
    """The image cache folder of the project in ``path`` at ``image_size``.

    Parameters
    ----------
    path : path-like
        The project folder.
    image_size : (int, int)
        Height and width.

    Returns
    -------
    folder : Path
        ``cache/images-HxW``.
    """
    height, width = image_size
    return Path(path) / CACHE_DIR / f"images-{height}x{width}"


def checkpoint_path(path, round_):
    """The model checkpoint of round ``round_`` of the project in ``path``.

    Parameters
    ----------
    path : path-like
        The project folder.
    round_ : int
        The round.

    Returns
    -------
    file : Path
        ``checkpoints/round-R.joblib``.
    """
    return Path(path) / CHECKPOINT_DIR / f"round-{round_}.joblib"


def view_dir(path):
    """The folder of the project in ``path`` that holds its view of the pool.

    Parameters
    ----------
    path : path-like
        The project folder.

    Returns
    -------
    folder : Path
        ``view/``: ``encoder-<fingerprint>.pkl`` files and ``current.json``.
    """
    return Path(path) / VIEW_DIR
