"""Where datasets live on disk."""

import os
from pathlib import Path

__all__ = ["get_data_home", "DATA_HOME_ENV"]

DATA_HOME_ENV = "SKAL_CXR_DATA"


def get_data_home(data_home=None):
    """Folder where skal_cxr looks for (and downloads) datasets.

    The first of these that is set wins:

    1. the ``data_home`` argument;
    2. the ``SKAL_CXR_DATA`` environment variable;
    3. ``skal_cxr`` in the user cache folder: ``$XDG_CACHE_HOME/skal_cxr``,
       or ``~/.cache/skal_cxr`` when ``XDG_CACHE_HOME`` is unset.

    A leading ``~`` is expanded. The folder is not created here: loaders
    create it only when they download into it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Explicit folder.

    Returns
    -------
    data_home : pathlib.Path

    Examples
    --------
    >>> from skal_cxr.datasets import get_data_home
    >>> str(get_data_home("/data/cxr"))
    '/data/cxr'
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or None
    if data_home is None:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        data_home = os.path.join(cache, "skal_cxr")
    return Path(os.fspath(data_home)).expanduser()
