"""The image sources are declared once (skal_cxr/datasets/_sources.py) and read everywhere."""

import argparse

from skal_cxr.cli import build_parser
from skal_cxr.datasets import _sources
from skal_cxr.datasets._image_io import DICOM_SUFFIXES
from skal_cxr.datasets._sources import (
    CONSENSUS,
    DATA_SOURCES,
    DUPLICATES,
    FOLDER_OPTIONS,
    IMAGE_SUFFIXES,
    LABELING_CONSENSUS,
    ON_ERROR,
)


def _choices(parser, *path):
    """``{dest: choices}`` of the subcommand ``path`` of ``parser``."""
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return {a.dest: a.choices for a in parser._actions if a.choices is not None}


def test_simulation_sources_are_those_declared():
    from skal_cxr.simulation._config import DATA_DEFAULTS
    from skal_cxr.simulation._data import _LOADERS

    declared = {name for name, s in DATA_SOURCES.items() if s["simulation"]}
    assert declared == set(DATA_DEFAULTS) == set(_LOADERS) == {"medmnist", "phantoms", "folder"}
    assert {name for name, s in DATA_SOURCES.items() if s["labeling"]} == {"folder", "dicomweb"}
    # every folder option has a default in the simulation's configuration
    assert set(FOLDER_OPTIONS) <= set(DATA_DEFAULTS["folder"])
    assert DATA_DEFAULTS["folder"]["consensus"] in CONSENSUS


def test_the_command_lines_read_the_declared_choices():
    parser = build_parser()
    simulate = _choices(parser, "simulate")
    assert simulate["consensus"] == list(CONSENSUS) == ["majority", "mean", "max"]
    assert simulate["on_error"] == list(ON_ERROR) == ["raise", "skip"]
    assert simulate["duplicates"] == DUPLICATES == ("raise", "keep_first")
    init = _choices(parser, "label", "init")
    assert init["consensus"] == list(LABELING_CONSENSUS)
    assert LABELING_CONSENSUS == ("majority", "mean", "max", "adjudicate")


def test_one_list_of_image_suffixes():
    from skal_cxr.labeling.store import _image_files

    assert _image_files.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    assert set(DICOM_SUFFIXES) <= set(IMAGE_SUFFIXES)
    assert IMAGE_SUFFIXES == (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".tif", ".tiff", ".bmp")


def test_folder_options_are_importable_from_the_simulation_too():
    from skal_cxr.simulation import _data

    assert _data.FOLDER_OPTIONS is _sources.FOLDER_OPTIONS
