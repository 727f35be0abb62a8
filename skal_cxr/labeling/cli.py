"""``skal-cxr label init|pull|retrain-view|add-rater|serve|status|export|backup``.

Each option is one :class:`~skal_cxr._options.Option`; ``init``'s name the
keyword of :func:`~skal_cxr.labeling.init_project` they set (``folder.`` and
``pacs.``: the keywords of one source only, ``pacs.`` those of
:func:`~skal_cxr.labeling.init_dicomweb_project`), and their defaults are
read from those functions' signatures (:func:`init_defaults`).
"""

import argparse
import functools
import inspect

from .._cli_types import _budget, _str_list
from .._options import Option, add_options
from ._commands import (
    _add_rater,
    _backup,
    _defaults,
    _export,
    _init,
    _pull,
    _retrain_view,
    _serve,
    _status,
    one_line_errors,
)

__all__ = ["add_label_parser", "init_options", "init_defaults"]

_EPILOG = """\
quick start:
  skal-cxr label init cxr-project --image-dir dicoms/ --classes normal,moderate,severe \\
      --labels-per-image 3
  skal-cxr label add-rater cxr-project alice      (prints alice's secret link)
  skal-cxr label serve cxr-project                (http://127.0.0.1:8765)
  skal-cxr label export cxr-project -o labels.csv
  skal-cxr label backup cxr-project backup.sqlite  (safe while serving; restore: see docs)

from a PACS (DICOMweb; credentials from a file or an environment variable):
  skal-cxr label init cxr-pacs --dicomweb https://pacs.example.org/dicom-web \\
      --query 'Modality=CR,DX&StudyDate=20240101-20241231' \\
      --auth basic --credentials-file ~/.pacs-secret --classes normal,moderate,severe
  skal-cxr label pull cxr-pacs --credentials-file ~/.pacs-secret   (new studies)
  skal-cxr label retrain-view cxr-pacs     (once pull says the pool has grown enough)
  skal-cxr label export cxr-pacs --to-dicom reports/ \\
      --stow https://pacs.example.org/dicom-web --credentials-file ~/.pacs-secret
"""


def _connection(prefix="", *, auth=True, group=None):
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
        *_connection("pacs.", group=pacs),
        Option(
            ("--hash-patient-ids",),
            to="pacs.hash_patient_ids",
            action="store_true",
            group=pacs,
            help="keep only salted hashes of the patient ids (and strip the other patient "
            "attributes from the stored files)",
        ),
    )


_PROJECT = Option(("project",), metavar="PROJECT")


def add_label_parser(sub):
    """Register the ``label`` command on the ``skal-cxr`` subparsers ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subcommands of ``skal-cxr``.

    Returns
    -------
    label : argparse.ArgumentParser
        The ``label`` command's parser.
    """
    from .web._app import HOST, PORT

    label = sub.add_parser(
        "label",
        help="label images in the browser with active learning (a project folder)",
        description="Labeling projects: raters label the images the model queries, in the "
        "browser; the model retrains in the background after each batch.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lsub = label.add_subparsers(
        dest="label_command", metavar="SUBCOMMAND", parser_class=sub._parser_class
    )
    lsub.required = True

    p = lsub.add_parser("init", help="create a project from a folder of images or a PACS")
    add_options(p, init_options(), init_defaults(), fill_defaults=True)
    p.set_defaults(func=one_line_errors(_init))

    p = lsub.add_parser(
        "pull",
        help="retrieve the studies that arrived since into a PACS project (its query, run again)",
    )
    retrain = Option(
        ("--retrain-view",),
        action="store_true",
        help="then train the project's view of its pool again (the next rounds use it)",
    )
    add_options(p, [_PROJECT, *_connection(auth=False), retrain])
    p.set_defaults(func=one_line_errors(_pull))

    p = lsub.add_parser(
        "retrain-view",
        help="train a project's view of its pool again, on every image it has now",
    )
    add_options(p, [_PROJECT])
    p.set_defaults(func=one_line_errors(_retrain_view))

    p = lsub.add_parser("add-rater", help="add a rater and print their secret link")
    add_options(
        p,
        [
            _PROJECT,
            Option(("name",), metavar="NAME"),
            Option(
                ("--adjudicator",),
                action="store_true",
                help="this rater also decides the images whose raters disagree",
            ),
            Option(
                ("--url",),
                help="the server's address for the link, e.g. https://labels.example.org "
                f"(default: where 'serve' last listened, else http://{HOST}:{PORT})",
            ),
            Option(("--host",), help="host of the link (instead of --url)"),
            Option(("--port",), type=int, help="port of the link (instead of --url)"),
        ],
    )
    p.set_defaults(func=one_line_errors(_add_rater))

    p = lsub.add_parser("serve", help="serve the labeling page and API")
    add_options(
        p,
        [
            _PROJECT,
            Option(("--host",), default=HOST, help=f"address to bind ({HOST})"),
            Option(("--port",), type=int, default=PORT, help=f"port ({PORT})"),
            Option(
                ("--allow-remote",),
                action="store_true",
                help="allow binding a non-loopback address (use a TLS proxy)",
            ),
            Option(
                ("--public-host",),
                metavar="NAME",
                help="host name raters reach the server by (their links, or the TLS proxy's "
                "name); requests naming another host are refused. Needed with --host 0.0.0.0",
            ),
            Option(
                ("--score-scheduler",),
                metavar="ADDRESS",
                help="score the pool after each batch (MC dropout, pools over 4096 images) in "
                "chunks on this Dask scheduler's workers (tcp://host:8786), with the same "
                "queries as here",
            ),
        ],
    )
    p.set_defaults(func=one_line_errors(_serve))

    p = lsub.add_parser("status", help="print raters, rounds, agreement and stopping signal")
    add_options(p, [_PROJECT])
    p.set_defaults(func=one_line_errors(_status))

    p = lsub.add_parser(
        "export",
        help="write the labels as a CSV, or as DICOM "
        "Structured Reports (optionally sent to a PACS)",
    )
    add_options(
        p,
        [
            _PROJECT,
            Option(("--output", "-o"), metavar="FILE", exclusive="target", required=True),
            Option(
                ("--to-dicom",),
                metavar="DIR",
                exclusive="target",
                help="write one DICOM SR per labeled image into DIR",
            ),
            Option(
                ("--stow",),
                metavar="URL",
                help="with --to-dicom: also send the reports to this DICOMweb root (STOW-RS)",
            ),
            Option(
                ("--format",),
                choices=["csv", "jsonl"],
                default="csv",
                help="csv: one row per labeled image, every rater's label, note and seconds "
                "(default); jsonl: the full audit trail, one event per line",
            ),
            *_connection(),
        ],
    )
    p.set_defaults(func=one_line_errors(_export))

    p = lsub.add_parser(
        "backup",
        help="copy the project database consistently, even while "
        "it is served (restore: stop the server, put the copy in place of "
        "project.sqlite, delete project.sqlite-wal and -shm)",
    )
    add_options(
        p,
        [
            _PROJECT,
            Option(("output",), metavar="OUT", help="the backup file to create (must not exist)"),
        ],
    )
    p.set_defaults(func=one_line_errors(_backup))
    return label
