"""The options of ``skal-cxr label init``, each naming the keyword it sets.

Each :class:`~skal_cxr._options.Option` names the keyword of
:func:`~skal_cxr.labeling.init_project` its value goes to (``folder.KEY``
and ``pacs.KEY``: the keywords of one source only, ``pacs.`` those of
:func:`~skal_cxr.labeling.init_dicomweb_project`); the defaults are read
from those functions' signatures (:func:`init_defaults`), never restated.
"""

import argparse
import functools
import inspect

from .._cli_types import _budget, _str_list
from .._options import Option

__all__ = ["connection_options", "init_defaults", "init_options"]


def _defaults(function):
    """``{parameter: default}`` of a function (the help shows them, never restated)."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()}


def connection_options(prefix="", *, auth=True, group=None):
    """The DICOMweb credential options (secrets never on the command line)."""
    options = (
        [
            Option(
                ("--auth",),
                to=prefix + "auth",
                choices=["basic", "bearer"],
                group=group,
                help="authentication: basic (user:password) or bearer (a token)",
            ),
        ]
        if auth
        else []
    )
    return options + [
        Option(
            ("--credentials-file",),
            to=prefix + "credentials_file",
            metavar="PATH",
            group=group,
            help="file holding user:password (basic) or the token (bearer)",
        ),
        Option(
            ("--credentials-env",),
            to=prefix + "credentials_env",
            metavar="VAR",
            group=group,
            help="environment variable holding the same",
        ),
        Option(
            ("--ca-bundle",),
            to=prefix + "ca_bundle",
            metavar="PATH",
            group=group,
            help="certificate authorities to trust (PEM); TLS is always verified",
        ),
    ]


def _pool_size(text):
    """``--pool-size``: ``auto``, ``all`` or a positive count."""
    if text in ("auto", "all"):
        return None if text == "all" else text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected auto, all or a positive count; got {text!r}")
    return value


def _class_weight(choice):
    return None if choice == "none" else choice


def _minutes(seconds):
    return None if seconds is None else seconds / 60


def _seconds(minutes):
    return 60 * minutes


def _choices(module, name):
    import importlib

    return list(getattr(importlib.import_module(module, __package__), name))


def init_defaults():
    """The defaults ``label init``'s options read: ``init_project``'s, and the PACS source's.

    Returns
    -------
    defaults : dict
        ``init_project``'s keyword defaults, with ``"folder"`` (the same) and
        ``"pacs"`` (``init_dicomweb_project``'s).
    """
    from . import init_dicomweb_project
    from ._init import init_project

    def given(function):  # the keywords with a default (not path, image_dir, classes)
        return {k: v for k, v in _defaults(function).items() if v is not inspect.Parameter.empty}

    defaults = given(init_project)
    return {**defaults, "folder": defaults, "pacs": given(init_dicomweb_project)}


@functools.cache
def init_options():
    """The options of ``label init``, each naming the ``init_project`` keyword it sets.

    Returns
    -------
    options : tuple of Option
    """
    pacs = "with --dicomweb"
    return (
        Option(("project",), to="path", metavar="PROJECT", help="new project folder"),
        Option(
            ("--image-dir",),
            to="folder.image_dir",
            metavar="DIR",
            exclusive="source",
            required=True,
            help="folder of PNG / JPEG / DICOM images (they stay there)",
        ),
        Option(
            ("--dicomweb",),
            to="pacs.url",
            metavar="URL",
            exclusive="source",
            help="DICOMweb root of a PACS (e.g. https://pacs/dicom-web): the images its "
            "query matches are retrieved into PROJECT/dicom/",
        ),
        Option(
            ("--classes",),
            to="classes",
            required=True,
            type=_str_list,
            metavar="A,B,C",
            help="class names, from least to most severe",
        ),
        Option(
            ("--csv",),
            to="folder.csv",
            metavar="CSV",
            help="CSV listing the images (default: every image file under DIR)",
        ),
        Option(
            ("--image-column",),
            to="folder.image_column",
            metavar="COL",
            help="CSV column of file names ({default})",
        ),
        Option(
            ("--group-column",), to="folder.group_column", metavar="COL", help="CSV patient column"
        ),
        Option(
            ("--date-column",),
            to="folder.date_column",
            metavar="COL",
            help="CSV study date column (related films are shown oldest to newest)",
        ),
        Option(
            ("--header-tags",),
            to="header_tags",
            type=_str_list,
            metavar="KEYWORDS",
            help="DICOM keywords shown beside the film (ViewPosition,PatientAge,"
            "PatientSex,StudyDate,Modality)",
        ),
        Option(
            ("--labels-per-image",),
            to="labels_per_image",
            type=int,
            metavar="K",
            help="labels per image, from different raters ({default})",
        ),
        Option(
            ("--model",),
            to="model",
            choices=("view", "cnn"),
            help="a head on a view of the pool trained here, or the CNN each round ({default})",
        ),
        Option(("--strategy",), to="strategy", help="query strategy ({default})"),
        # not filled: the deprecated --batch-size may stand for it (_commands._query_size)
        Option(
            ("--query-size",),
            to="query_size",
            default=None,
            type=int,
            metavar="N",
            help="images queried per round ({default})",
        ),
        Option(
            ("--batch-size",), dest="batch_size", type=int, metavar="N", help=argparse.SUPPRESS
        ),  # deprecated alias of --query-size
        Option(
            ("--initial-size",),
            to="initial_size",
            type=int,
            metavar="N",
            help="size of the first (cold-start) batch (--query-size)",
        ),
        Option(
            ("--cold-start",),
            to="cold_start",
            choices=_choices("._settings", "COLD_STARTS"),
            help="how the first batch is chosen without labels ({default}; typicality is "
            "the steadiest, see docs/benchmarks.rst)",
        ),
        Option(
            ("--budget",),
            to="budget",
            type=_budget,
            metavar="N|FRAC",
            help="images to label in all: a count, or a fraction of the pool such as 0.2 (all)",
        ),
        Option(
            ("--reserve-size",),
            to="reserve_size",
            type=int,
            metavar="N",
            help="next-ranked images handed out while the next batch is computed "
            "(--query-size; 0: raters wait)",
        ),
        Option(
            ("--pool-size",),
            to="pool_size",
            type=_pool_size,
            metavar="N|all",
            help="unlabeled images scored per round: a random N, or all (auto: all up to "
            "2000 images, else a random 2000)",
        ),
        Option(
            ("--lease-minutes",),
            to="lease_seconds",
            type=float,
            metavar="M",
            show=_minutes,
            convert=_seconds,
            help="an image held this long without a label goes to another rater ({default:g})",
        ),
        Option(
            ("--image-size",),
            to="image_size",
            type=int,
            metavar="PX",
            help="training resolution ({default})",
        ),
        Option(
            ("--class-weight",),
            to="class_weight",
            choices=["none", "balanced"],
            show=lambda v: v or "none",
            convert=_class_weight,
            help="class weighting of the loss ({default})",
        ),
        Option(
            ("--consensus",),
            to="consensus",
            choices=_choices("..datasets._sources", "LABELING_CONSENSUS"),
            help="how several raters' labels become one ({default}); adjudicate: "
            "disagreements wait for an adjudicator's decision",
        ),
        Option(
            ("--adjudicate-spread",),
            to="adjudicate_spread",
            type=int,
            metavar="N",
            help="with --consensus adjudicate: labels N or more classes apart call for "
            "adjudication ({default}: any disagreement)",
        ),
        Option(
            ("--scoring",),
            to="scoring",
            choices=["brixia", "rale"],
            help="label each film with zone scores: brixia (6 zones 0-3, total 0-18) or "
            "rale (4 quadrants, extent 0-4 x density 1-3, total 0-48); the class is the "
            "binned total",
        ),
        Option(
            ("--bins",),
            to="bins",
            metavar="E1,E2",
            help="with --scoring: the class boundaries on the total, as simulate --bins "
            "takes them (e.g. 7,12: totals 0-6, 7-11, 12 and over; a leading 0 is allowed)",
        ),
        Option(
            ("--show-prediction",),
            to="show_prediction",
            action="store_true",
            help="show raters the model's prediction (hidden by default: it biases)",
        ),
        Option(("--seed",), to="random_state", type=int, help="random seed ({default})"),
        Option(
            ("--n-jobs",),
            to="n_jobs",
            type=int,
            metavar="N",
            help="threads decoding the images into the project's image cache (1; -1 for "
            "every core)",
        ),
        Option(
            ("--query",),
            to="pacs.query",
            metavar="QUERY",
            group=pacs,
            help="which instances, e.g. 'Modality=CR,DX&StudyDate=20240101-20241231' "
            "(every image instance)",
        ),
        *connection_options("pacs.", group=pacs),
        Option(
            ("--hash-patient-ids",),
            to="pacs.hash_patient_ids",
            action="store_true",
            group=pacs,
            help="keep only salted hashes of the patient ids (and strip the other patient "
            "attributes from the stored files)",
        ),
    )
