"""``skal-cxr label init|add-rater|serve|status|export``."""

import argparse
import sys

__all__ = ["add_label_parser"]

_EPILOG = """\
quick start:
  skal-cxr label init cxr-project --image-dir dicoms/ --classes normal,moderate,severe \\
      --labels-per-image 3
  skal-cxr label add-rater cxr-project alice      (prints alice's secret link)
  skal-cxr label serve cxr-project                (http://127.0.0.1:8765)
  skal-cxr label export cxr-project -o labels.csv
"""


def add_label_parser(sub, list_of_str):
    """Register the ``label`` command on the ``skal-cxr`` subparsers ``sub``."""
    label = sub.add_parser(
        "label", help="label images in the browser with active learning (a project folder)",
        description="Labeling projects: raters label the images the model queries, in the "
        "browser; the model retrains in the background after each batch.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lsub = label.add_subparsers(dest="label_command", metavar="SUBCOMMAND",
                                parser_class=sub._parser_class)
    lsub.required = True

    p = lsub.add_parser("init", help="create a project from a folder of images")
    p.add_argument("project", metavar="PROJECT", help="new project folder")
    p.add_argument("--image-dir", required=True, metavar="DIR",
                   help="folder of PNG / JPEG / DICOM images (they stay there)")
    p.add_argument("--classes", required=True, type=list_of_str, metavar="A,B,C",
                   help="class names, from least to most severe")
    p.add_argument("--csv", metavar="CSV", help="CSV listing the images (default: every "
                   "image file under DIR)")
    p.add_argument("--image-column", default="filename", metavar="COL",
                   help="CSV column of file names (filename)")
    p.add_argument("--group-column", metavar="COL", help="CSV patient column")
    p.add_argument("--labels-per-image", type=int, default=1, metavar="K",
                   help="labels per image, from different raters (1)")
    p.add_argument("--strategy", default="mean_std", help="query strategy (mean_std)")
    p.add_argument("--query-size", type=int, metavar="N",
                   help="images queried per round (20)")
    p.add_argument("--batch-size", type=int, metavar="N", dest="batch_size",
                   help=argparse.SUPPRESS)  # deprecated alias of --query-size
    p.add_argument("--initial-size", type=int, metavar="N",
                   help="size of the first (cold-start) batch (--query-size)")
    p.add_argument("--cold-start", choices=["random", "k_center", "typicality", "probcover"],
                   default="random",
                   help="how the first batch is chosen without labels (random)")
    p.add_argument("--budget", type=int, metavar="N", help="images to label in all (all)")
    p.add_argument("--reserve-size", type=int, metavar="N",
                   help="next-ranked images handed out while the next batch is computed "
                   "(--query-size; 0: raters wait)")
    p.add_argument("--lease-minutes", type=float, default=60, metavar="M",
                   help="an image held this long without a label goes to another rater (60)")
    p.add_argument("--image-size", type=int, default=64, metavar="PX",
                   help="training resolution (64)")
    p.add_argument("--class-weight", choices=["none", "balanced"], default="none",
                   help="class weighting of the loss (none)")
    p.add_argument("--consensus", choices=["majority", "mean", "max"], default="majority",
                   help="how several raters' labels become one (majority)")
    p.add_argument("--show-prediction", action="store_true",
                   help="show raters the model's prediction (hidden by default: it biases)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--n-jobs", type=int, metavar="N",
                   help="threads decoding the images into the project's image cache "
                   "(1; -1 for every core)")
    p.set_defaults(func=_init)

    p = lsub.add_parser("add-rater", help="add a rater and print their secret link")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--host", default="127.0.0.1", help="host of the link (127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port of the link (8765)")
    p.set_defaults(func=_add_rater)

    p = lsub.add_parser("serve", help="serve the labeling page and API")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (8765)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding a non-loopback address (use a TLS proxy)")
    p.add_argument("--score-scheduler", metavar="ADDRESS",
                   help="score the pool after each batch (MC dropout, pools over 4096 images) "
                   "in chunks on this Dask scheduler's workers (tcp://host:8786), with the "
                   "same queries as here")
    p.set_defaults(func=_serve)

    p = lsub.add_parser("status", help="print raters, rounds, agreement and stopping signal")
    p.add_argument("project", metavar="PROJECT")
    p.set_defaults(func=_status)

    p = lsub.add_parser("export", help="write the labels as a CSV")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--output", "-o", required=True, metavar="CSV")
    p.set_defaults(func=_export)
    return label


def _query_size(args):
    """``--query-size``, or the deprecated ``--batch-size`` (with a one-line warning)."""
    if args.batch_size is None:
        return 20 if args.query_size is None else args.query_size
    if args.query_size is not None:
        from ..exceptions import LabelingError

        raise LabelingError("give --query-size only (--batch-size is its deprecated alias).")
    print("skal-cxr: warning: --batch-size was renamed --query-size in 0.2 and will be "
          "removed in 0.3.", file=sys.stderr)
    return args.batch_size


def _init(args):
    from . import init_project

    project = init_project(
        args.project, args.image_dir, args.classes, csv=args.csv,
        image_column=args.image_column, group_column=args.group_column,
        labels_per_image=args.labels_per_image, strategy=args.strategy,
        query_size=_query_size(args), initial_size=args.initial_size, budget=args.budget,
        image_size=args.image_size,
        class_weight=None if args.class_weight == "none" else args.class_weight,
        consensus=args.consensus, cold_start=args.cold_start,
        reserve_size=args.reserve_size, lease_seconds=60 * args.lease_minutes,
        show_prediction=args.show_prediction, random_state=args.seed, n_jobs=args.n_jobs,
        progress=sys.stderr.isatty(),
    )
    n = project.n_images()
    print(f"Created {project.path}: {n} images, classes {', '.join(project.classes)}.")
    print(f"Next: skal-cxr label add-rater {args.project} NAME")


def _add_rater(args):
    from . import open_project

    token = open_project(args.project).add_rater(args.name)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Secret link of {args.name} (shown once; anyone with it labels as "
          f"{args.name}):\nhttp://{host}:{args.port}/#token={token}")


def _serve(args):
    from . import open_project
    from ._app import check_bind, serve

    project = open_project(args.project)
    check_bind(args.host, args.allow_remote)
    if args.score_scheduler is not None:
        from .._dask import check_scheduler
        from ..exceptions import LabelingError

        try:
            check_scheduler(args.score_scheduler, "--score-scheduler")
        except (ImportError, ValueError) as exc:
            raise LabelingError(str(exc)) from exc
        project.score_scheduler = args.score_scheduler
    print(f"Serving {project.path} on http://{args.host}:{args.port}/ (Ctrl-C to stop)",
          flush=True)
    serve(project, args.host, args.port, allow_remote=args.allow_remote)


def _status(args):
    from . import open_project

    st = open_project(args.project).status()
    print(f"Project {st['project']}: classes {', '.join(st['classes'])}")
    for r in st["raters"]:
        print(f"  rater {r['name']}: {r['n_labels']} labels")
    print(f"Fleiss' kappa: {'n/a' if st['kappa'] is None else format(st['kappa'], '.3f')}")
    for r in st["rounds"]:
        fit = "" if r["fit_time"] is None else f", fit {r['fit_time']:.1f} s"
        print(f"  round {r['round']}: {r['strategy']}, trained on {r['n_labeled']} "
              f"{r['class_counts']}, queried {r['n_queried']}{fit}")
    stop = st["stopping"]
    kappas = ", ".join(f"{k:.3f}" for k in stop["kappa_window"]) or "none yet"
    print(f"Stopping signal: {'STOP' if stop['stop'] else 'go on'} (kappas {kappas}; "
          f"threshold {stop['threshold']}; budget left "
          f"{'n/a' if stop['budget_left'] is None else stop['budget_left']})")


def _export(args):
    from . import open_project

    n = open_project(args.project).export(args.output)
    print(f"Wrote {n} labeled images to {args.output}", file=sys.stderr)
