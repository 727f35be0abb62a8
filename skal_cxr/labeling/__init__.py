"""Labeling projects: the active-learning loop with radiologists in the browser.

A project is a folder holding one SQLite database (images registered by
relative path and content hash, raters, append-only labels, rounds), model
checkpoints and a preview cache; the images stay where they are.

- :func:`init_project` creates one, :func:`open_project` opens one; the
  :class:`LabelingProject` object does everything the commands and the web
  app do (add raters, hand out images, record labels, train and query,
  status, export).
- :func:`init_dicomweb_project` creates one over the images a PACS query
  matches (DICOMweb), :func:`pull_dicomweb` adds those that arrived since,
  :func:`export_dicom` writes (and sends) the labels as DICOM Structured
  Reports (``pip install 'skal-cxr[pacs]'``).
- :func:`create_app` / :func:`serve`: the web page and JSON API (FastAPI and
  uvicorn, ``pip install 'skal-cxr[label]'``).

The ``skal-cxr label init|add-rater|serve|status|export`` commands are thin
layers over this module. Rounds are run by the round engine
(:mod:`skal_cxr.engine`), as in a simulation.
"""

from .._lazy_names import lazy_names

#: Public name -> the module that defines it, loaded on first use (:pep:`562`)
#: so that ``skal-cxr label serve`` answers before torch is imported.
_LAZY = {
    "init_project": "._init",
    "open_project": "._init",
    "LabelingProject": "._project",
    "create_app": ".web._app",
    "serve": ".web._app",
    "init_dicomweb_project": ".pacs._dicomweb_project",
    "pull_dicomweb": ".pacs._dicomweb_project",
    "export_dicom": ".pacs._dicomweb_project",
    "LabelingError": "..exceptions",
    "NotFound": "..exceptions",
    "Conflict": "..exceptions",
    "Forbidden": "..exceptions",
    "InvalidLabel": "..exceptions",
    "COLD_STARTS": "._settings",
}

__all__ = [
    "init_project",
    "open_project",
    "LabelingProject",
    "create_app",
    "serve",
    "init_dicomweb_project",
    "pull_dicomweb",
    "export_dicom",
    "LabelingError",
    "NotFound",
    "Conflict",
    "Forbidden",
    "InvalidLabel",
    "COLD_STARTS",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
