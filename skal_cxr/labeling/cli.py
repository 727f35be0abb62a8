"""``skal-cxr label init|pull|retrain-view|add-rater|serve|status|export|backup``.

The options are declared once each (:class:`~skal_cxr._options.Option`);
``init``'s, which name the ``init_project`` keyword they set, are in
:mod:`skal_cxr.labeling._cli_options`.
"""

import argparse

from .._options import Option, add_options
from ._cli_options import connection_options, init_defaults, init_options
from ._commands import (
    _add_rater,
    _backup,
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
    add_options(p, [_PROJECT, *connection_options(auth=False), retrain])
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
            *connection_options(),
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
