"""The image sources of simulations and labeling projects, declared once.

The simulation (``skal-cxr simulate``, :func:`skal_cxr.simulation.simulate`)
and the labeling tool (``skal-cxr label init``) read their images from the
sources below; their command lines, configuration checks and loaders take
the names and choices from here, so that a source or an option is added in
one place.
"""

from ._agreement import CONSENSUS
from ._image_io import DICOM_SUFFIXES

__all__ = [
    "DATA_SOURCES",
    "FOLDER_OPTIONS",
    "IMAGE_SUFFIXES",
    "CONSENSUS",
    "LABELING_CONSENSUS",
    "ON_ERROR",
    "DUPLICATES",
]

#: Every image source: what it is and which tools read it. The simulation's
#: data specifications (``{"source": name, ...}``) name the first three.
DATA_SOURCES = {
    "medmnist": {
        "what": "a MedMNIST .npz file (PneumoniaMNIST is shipped with the package)",
        "simulation": True,
        "labeling": False,
    },
    "phantoms": {
        "what": "generated chest-film phantoms with graded severity",
        "simulation": True,
        "labeling": False,
    },
    "folder": {
        "what": "a folder of PNG / JPEG / TIFF / DICOM images, listed by a CSV",
        "simulation": True,
        "labeling": True,
    },
    "dicomweb": {
        "what": "the images of a PACS, found with QIDO-RS and retrieved with WADO-RS",
        "simulation": False,
        "labeling": True,
    },
}

#: Files an image folder holds (any case): what a labeling project finds
#: without a CSV, and what :func:`~skal_cxr.datasets._image_io.read_image` reads.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", *DICOM_SUFFIXES, ".tif", ".tiff", ".bmp")

#: Options of :func:`~skal_cxr.datasets.load_image_folder` a simulation's
#: folder source may set (the ``skal-cxr simulate`` image-folder options),
#: in the order the command line names them.
FOLDER_OPTIONS = (
    "image_column",
    "label_columns",
    "score_column",
    "bins",
    "classes",
    "consensus",
    "group_column",
    "image_size",
    "on_error",
    "duplicates",
    "encoding",
    "delimiter",
    "cache_dir",
    "verify_cache",
)

#: Consensus rules of a labeling project: those of an image folder
#: (:data:`CONSENSUS`), or an adjudicator's decision on disagreements.
LABELING_CONSENSUS = (*CONSENSUS, "adjudicate")

#: An image folder's bad rows: stop listing them all, or skip them.
ON_ERROR = ("raise", "skip")

#: An image listed twice: an error, or its first row kept.
DUPLICATES = ("raise", "keep_first")
