"""``skal-cxr label init|pull|retrain-view|add-rater|serve|status|export|backup``."""

import argparse

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

__all__ = ["add_label_parser"]

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


def _add_connection(p, *, auth=True):
    """The DICOMweb credential options (secrets never on the command line)."""
    if auth:
        p.add_argument(
            "--auth",
            choices=["basic", "bearer"],
            help="authentication: basic (user:password) or bearer (a token)",
        )
    p.add_argument(
        "--credentials-file",
        metavar="PATH",
        help="file holding user:password (basic) or the token (bearer)",
    )
    p.add_argument("--credentials-env", metavar="VAR", help="environment variable holding the same")
    p.add_argument(
        "--ca-bundle",
        metavar="PATH",
        help="certificate authorities to trust (PEM); TLS is always verified",
    )


def add_label_parser(sub, list_of_str):
    """Register the ``label`` command on the ``skal-cxr`` subparsers ``sub``."""
    from ..datasets._sources import LABELING_CONSENSUS
    from ._init import init_project
    from ._settings import COLD_STARTS
    from .web._app import HOST, PORT

    D = _defaults(init_project)
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
    p.add_argument("project", metavar="PROJECT", help="new project folder")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--image-dir", metavar="DIR", help="folder of PNG / JPEG / DICOM images (they stay there)"
    )
    source.add_argument(
        "--dicomweb",
        metavar="URL",
        help="DICOMweb root of a PACS (e.g. https://pacs/dicom-web): the "
        "images its query matches are retrieved into PROJECT/dicom/",
    )
    p.add_argument(
        "--classes",
        required=True,
        type=list_of_str,
        metavar="A,B,C",
        help="class names, from least to most severe",
    )
    p.add_argument(
        "--csv", metavar="CSV", help="CSV listing the images (default: every image file under DIR)"
    )
    p.add_argument(
        "--image-column",
        default=D["image_column"],
        metavar="COL",
        help=f"CSV column of file names ({D['image_column']})",
    )
    p.add_argument("--group-column", metavar="COL", help="CSV patient column")
    p.add_argument(
        "--date-column",
        metavar="COL",
        help="CSV study date column (related films are shown oldest to newest)",
    )
    p.add_argument(
        "--header-tags",
        type=list_of_str,
        metavar="KEYWORDS",
        help="DICOM keywords shown beside the film (ViewPosition,PatientAge,"
        "PatientSex,StudyDate,Modality)",
    )
    p.add_argument(
        "--labels-per-image",
        type=int,
        default=D["labels_per_image"],
        metavar="K",
        help=f"labels per image, from different raters ({D['labels_per_image']})",
    )
    p.add_argument(
        "--model",
        choices=("view", "cnn"),
        default=D["model"],
        help=f"a head on a view of the pool trained here, or the CNN each round ({D['model']})",
    )
    p.add_argument("--strategy", default=D["strategy"], help=f"query strategy ({D['strategy']})")
    p.add_argument(
        "--query-size", type=int, metavar="N", help=f"images queried per round ({D['query_size']})"
    )
    p.add_argument(
        "--batch-size", type=int, metavar="N", dest="batch_size", help=argparse.SUPPRESS
    )  # deprecated alias of --query-size
    p.add_argument(
        "--initial-size",
        type=int,
        metavar="N",
        help="size of the first (cold-start) batch (--query-size)",
    )
    p.add_argument(
        "--cold-start",
        choices=COLD_STARTS,
        default=D["cold_start"],
        help=(
            f"how the first batch is chosen without labels ({D['cold_start']}; "
            "typicality is the steadiest, see docs/benchmarks.rst)"
        ),
    )
    p.add_argument("--budget", type=int, metavar="N", help="images to label in all (all)")
    p.add_argument(
        "--reserve-size",
        type=int,
        metavar="N",
        help="next-ranked images handed out while the next batch is computed "
        "(--query-size; 0: raters wait)",
    )
    p.add_argument(
        "--pool-size",
        type=_pool_size,
        default=D["pool_size"],
        metavar="N|all",
        help="unlabeled images scored per round: a random N, or all (auto: all "
        "up to 2000 images, else a random 2000)",
    )
    lease = D["lease_seconds"] / 60
    p.add_argument(
        "--lease-minutes",
        type=float,
        default=lease,
        metavar="M",
        help=f"an image held this long without a label goes to another rater ({lease:g})",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=D["image_size"],
        metavar="PX",
        help=f"training resolution ({D['image_size']})",
    )
    weight = D["class_weight"] or "none"
    p.add_argument(
        "--class-weight",
        choices=["none", "balanced"],
        default=weight,
        help=f"class weighting of the loss ({weight})",
    )
    p.add_argument(
        "--consensus",
        choices=list(LABELING_CONSENSUS),
        default=D["consensus"],
        help=f"how several raters' labels become one ({D['consensus']}); adjudicate: "
        "disagreements wait for an adjudicator's decision",
    )
    p.add_argument(
        "--adjudicate-spread",
        type=int,
        default=D["adjudicate_spread"],
        metavar="N",
        help="with --consensus adjudicate: labels N or more classes apart call "
        f"for adjudication ({D['adjudicate_spread']}: any disagreement)",
    )
    p.add_argument(
        "--scoring",
        choices=["brixia", "rale"],
        help="label each film with zone scores: brixia (6 zones 0-3, total 0-18) or rale "
        "(4 quadrants, extent 0-4 x density 1-3, total 0-48); the class is the binned total",
    )
    p.add_argument(
        "--bins",
        metavar="E1,E2",
        help="with --scoring: the class boundaries on the total, as simulate --bins takes "
        "them (e.g. 7,12: totals 0-6, 7-11, 12 and over; a leading 0 is allowed)",
    )
    p.add_argument(
        "--show-prediction",
        action="store_true",
        help="show raters the model's prediction (hidden by default: it biases)",
    )
    p.add_argument(
        "--seed", type=int, default=D["random_state"], help=f"random seed ({D['random_state']})"
    )
    p.add_argument(
        "--n-jobs",
        type=int,
        metavar="N",
        help="threads decoding the images into the project's image cache (1; -1 for every core)",
    )
    pacs = p.add_argument_group("with --dicomweb")
    pacs.add_argument(
        "--query",
        metavar="QUERY",
        help="which instances, e.g. 'Modality=CR,DX&StudyDate=20240101-20241231' "
        "(every image instance)",
    )
    _add_connection(pacs)
    pacs.add_argument(
        "--hash-patient-ids",
        action="store_true",
        help="keep only salted hashes of the patient ids (and strip the other "
        "patient attributes from the stored files)",
    )
    p.set_defaults(func=one_line_errors(_init))

    p = lsub.add_parser(
        "pull",
        help="retrieve the studies that arrived since into a PACS project (its query, run again)",
    )
    p.add_argument("project", metavar="PROJECT")
    _add_connection(p, auth=False)
    p.add_argument(
        "--retrain-view",
        action="store_true",
        help="then train the project's view of its pool again (the next rounds use it)",
    )
    p.set_defaults(func=one_line_errors(_pull))

    p = lsub.add_parser(
        "retrain-view",
        help="train a project's view of its pool again, on every image it has now",
    )
    p.add_argument("project", metavar="PROJECT")
    p.set_defaults(func=one_line_errors(_retrain_view))

    p = lsub.add_parser("add-rater", help="add a rater and print their secret link")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--adjudicator",
        action="store_true",
        help="this rater also decides the images whose raters disagree",
    )
    p.add_argument(
        "--url",
        help="the server's address for the link, e.g. "
        "https://labels.example.org (default: where 'serve' last listened, "
        f"else http://{HOST}:{PORT})",
    )
    p.add_argument("--host", help="host of the link (instead of --url)")
    p.add_argument("--port", type=int, help="port of the link (instead of --url)")
    p.set_defaults(func=one_line_errors(_add_rater))

    p = lsub.add_parser("serve", help="serve the labeling page and API")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--host", default=HOST, help=f"address to bind ({HOST})")
    p.add_argument("--port", type=int, default=PORT, help=f"port ({PORT})")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding a non-loopback address (use a TLS proxy)",
    )
    p.add_argument(
        "--public-host",
        metavar="NAME",
        help="host name raters reach the server by (their links, or the TLS "
        "proxy's name); requests naming another host are refused. Needed with "
        "--host 0.0.0.0",
    )
    p.add_argument(
        "--score-scheduler",
        metavar="ADDRESS",
        help="score the pool after each batch (MC dropout, pools over 4096 images) "
        "in chunks on this Dask scheduler's workers (tcp://host:8786), with the "
        "same queries as here",
    )
    p.set_defaults(func=one_line_errors(_serve))

    p = lsub.add_parser("status", help="print raters, rounds, agreement and stopping signal")
    p.add_argument("project", metavar="PROJECT")
    p.set_defaults(func=one_line_errors(_status))

    p = lsub.add_parser(
        "export",
        help="write the labels as a CSV, or as DICOM "
        "Structured Reports (optionally sent to a PACS)",
    )
    p.add_argument("project", metavar="PROJECT")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", "-o", metavar="FILE")
    target.add_argument(
        "--to-dicom", metavar="DIR", help="write one DICOM SR per labeled image into DIR"
    )
    p.add_argument(
        "--stow",
        metavar="URL",
        help="with --to-dicom: also send the reports to this DICOMweb root (STOW-RS)",
    )
    p.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        default="csv",
        help="csv: one row per labeled image, every rater's label, note and "
        "seconds (default); jsonl: the full audit trail, one event per line",
    )
    _add_connection(p)
    p.set_defaults(func=one_line_errors(_export))

    p = lsub.add_parser(
        "backup",
        help="copy the project database consistently, even while "
        "it is served (restore: stop the server, put the copy in place of "
        "project.sqlite, delete project.sqlite-wal and -shm)",
    )
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("output", metavar="OUT", help="the backup file to create (must not exist)")
    p.set_defaults(func=one_line_errors(_backup))
    return label


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
