"""The ``skal-cxr label`` commands; their options are in :mod:`skal_cxr.labeling.cli`.

Every command ends on an error in one line and exit code 2
(:func:`one_line_errors`); ``serve``, ``pull`` and ``init`` hold the
project's lock (:func:`~skal_cxr.labeling.store._lock.project_lock`) while they run.
"""

import functools
import os
import sys
from pathlib import Path


def _one_line(text):
    """``text`` with its lines joined by ``"; "``."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def one_line_errors(command):
    """``command`` with every user-facing error made one :class:`LabelingError` line.

    Unreadable data, CSV and file errors, text that is not UTF-8 and
    storage failures are reported like any other refusal: one line, exit
    code 2 (see :func:`skal_cxr.cli.main`). A programming error keeps its
    traceback.

    Parameters
    ----------
    command : callable
        ``command(args)``.

    Returns
    -------
    command : callable
    """

    @functools.wraps(command)
    def run(args):
        import sqlite3

        from ..exceptions import DataError, DicomwebError, LabelingError
        from .store._storage import storage_error

        try:
            return command(args)
        except LabelingError as exc:
            if "\n" not in str(exc):
                raise
            raise LabelingError(_one_line(exc)) from exc
        except UnicodeError as exc:
            raise LabelingError(f"text that is not UTF-8: {_one_line(exc)}.") from exc
        except sqlite3.Error as exc:
            raise (storage_error(exc) or LabelingError(_one_line(exc))) from exc
        except (DataError, DicomwebError, OSError, ValueError) as exc:
            raise LabelingError(_one_line(exc)) from exc

    return run


def _utf8(text, what):
    """``text``, refused in one line when it is not UTF-8 (a non-UTF-8 command-line byte)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        from ..exceptions import LabelingError

        raise LabelingError(
            f"the {what} {os.fsencode(text)!r} is not UTF-8 text; give it in UTF-8."
        ) from None
    return text


def _query_size(args):
    """``--query-size``, or the deprecated ``--batch-size`` (with a one-line warning)."""
    if args.batch_size is None:
        if args.query_size is None:
            from ._cli_options import init_defaults

            return init_defaults()["query_size"]
        return args.query_size
    if args.query_size is not None:
        from ..exceptions import LabelingError

        raise LabelingError("give --query-size only (--batch-size is its deprecated alias).")
    print(
        "skal-cxr: warning: --batch-size was renamed --query-size in 0.2 and will be "
        "removed in 0.3.",
        file=sys.stderr,
    )
    return args.batch_size


def _connection(args):
    return {
        "credentials_file": args.credentials_file,
        "credentials_env": args.credentials_env,
        "ca_bundle": args.ca_bundle,
    }


def _source(args):
    """``init_project`` or ``init_dicomweb_project``, with their keyword arguments.

    Every ``init`` option goes to the keyword its declaration names
    (:func:`skal_cxr.labeling.cli.init_options`); those under ``folder.``
    and ``pacs.`` apply to one source only.
    """
    from .._options import collect, given_flags
    from ..exceptions import LabelingError
    from . import init_dicomweb_project, init_project
    from ._cli_options import init_defaults, init_options

    kwargs = collect(args, init_options(), skip_none=False)  # None is a value (pool_size)
    folder, pacs = kwargs.pop("folder", {}), kwargs.pop("pacs", {})
    kwargs["query_size"] = _query_size(args)
    if args.dicomweb is None:
        pacs_only = given_flags(args, init_options(), "pacs.", init_defaults())
        if pacs_only:
            raise LabelingError(f"{', '.join(pacs_only.values())} need --dicomweb.")
        return init_project, {**kwargs, **folder}
    folder_only = given_flags(args, init_options(), "folder.", init_defaults())
    folder_only.pop("image_dir", None)
    if folder_only:
        raise LabelingError(f"{', '.join(folder_only.values())} do not apply to --dicomweb.")
    return init_dicomweb_project, {**kwargs, **pacs}


def _init(args):
    from .store._lock import LOCK_FILE, project_lock

    make, kwargs = _source(args)
    folder = Path(args.project)
    created = not folder.exists()
    try:
        with project_lock(folder, "init"):
            project = make(**kwargs, progress=sys.stderr.isatty())
    except BaseException:
        if created and {p.name for p in folder.iterdir()} <= {LOCK_FILE}:
            (folder / LOCK_FILE).unlink(missing_ok=True)  # leave no folder behind
            folder.rmdir()
        raise
    n = project.n_images()
    print(f"Created {project.path}: {n} images, classes {', '.join(project.classes)}.")
    print(f"Next: skal-cxr label add-rater {args.project} NAME")


def _link_base(project, args):
    """``--url``, else ``--host``/``--port``, else where ``serve`` last listened."""
    from .web._app import HOST, PORT

    if args.url:
        if args.host or args.port:
            from ..exceptions import LabelingError

            raise LabelingError("give --url, or --host and --port, not both.")
        return args.url.rstrip("/")
    served = project.serve_address()
    host = args.host or served.get("public_host") or served.get("host", HOST)
    port = args.port or served.get("port", PORT)
    if host in ("0.0.0.0", "::"):
        host = HOST
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def _add_rater(args):
    from . import open_project

    _utf8(args.name, "rater name")
    project = open_project(args.project)
    base = _link_base(project, args)
    token = project.add_rater(args.name, "adjudicator" if args.adjudicator else "rater")
    role = " (adjudicator)" if args.adjudicator else ""
    print(
        f"Secret link of {args.name}{role} (shown once; anyone with it labels as "
        f"{args.name}):\n{base}/#token={token}"
    )


def _serve(args):
    from .store._lock import project_lock

    with project_lock(_project_folder(args.project), "serve"):
        _serve_locked(args)


def _project_folder(project):
    """The folder of ``project``, refused in one line when it is not one (no lock file made)."""
    from ..exceptions import LabelingError
    from .store._db import DB_FILE

    folder = Path(project)
    if not (folder / DB_FILE).is_file():
        raise LabelingError(f"{folder} is not a labeling project (no {DB_FILE}).")
    return folder


def _serve_locked(args):
    from . import open_project
    from .web._app import _allowed_hosts, check_bind, serve

    project = open_project(args.project)
    check_bind(args.host, args.allow_remote)
    _allowed_hosts(args.host, args.public_host)  # refused before anything starts
    if args.score_scheduler is not None:
        from .._dask import check_scheduler
        from ..exceptions import LabelingError

        try:
            check_scheduler(args.score_scheduler, "--score-scheduler")
        except (ImportError, ValueError) as exc:
            raise LabelingError(str(exc)) from exc
        project.score_scheduler = args.score_scheduler
    project.record_serve_address(args.host, args.port, args.public_host)
    print(f"Serving {project.path} on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    serve(
        project, args.host, args.port, allow_remote=args.allow_remote, public_host=args.public_host
    )


def _status(args):
    from . import open_project

    st = open_project(args.project).status()
    print(f"Project {st['project']}: classes {', '.join(st['classes'])}")
    for r in st["raters"]:
        print(f"  rater {r['name']}: {r['n_labels']} labels")
    print(f"Fleiss' kappa: {'n/a' if st['kappa'] is None else format(st['kappa'], '.3f')}")
    for r in st["rounds"]:
        fit = "" if r["fit_time"] is None else f", fit {r['fit_time']:.1f} s"
        print(
            f"  round {r['round']}: {r['strategy']}, trained on {r['n_labeled']} "
            f"{r['class_counts']}, queried {r['n_queried']}{fit}"
        )
    stop = st["stopping"]
    kappas = ", ".join(f"{k:.3f}" for k in stop["kappa_window"]) or "none yet"
    print(
        f"Stopping signal: {'STOP' if stop['stop'] else 'go on'} (kappas {kappas}; "
        f"threshold {stop['threshold']}; budget left "
        f"{'n/a' if stop['budget_left'] is None else stop['budget_left']}; "
        f"images never queued {stop['pool_left']})"
    )
    for stuck in st.get("agreement", {}).get("stuck", []):
        print(stuck["message"])
    if st.get("skipped"):
        print(f"PACS films skipped (not in the pool): {len(st['skipped'])}")
        for film in st["skipped"]:
            print(f"  skipped {film['sop']}: {film['reason']}")


def _backup(args):
    from . import open_project
    from .store._db import DB_FILE
    from .store._storage import backup_database

    project = open_project(args.project)  # checks the database first
    out = backup_database(project.path / DB_FILE, args.output)
    print(f"Backed up {project.path / DB_FILE} to {out}", file=sys.stderr)


def _pull(args):
    from . import open_project, pull_dicomweb
    from .store._lock import project_lock
    from .worker._view import view_advice

    with project_lock(_project_folder(args.project), "pull"):
        project = open_project(args.project)
        n = pull_dicomweb(project, **_connection(args), progress=sys.stderr.isatty())
        print(f"{project.path}: {n} new images, {project.n_images()} in all.")
        if args.retrain_view:
            _retrain(project)
            return
    advice = view_advice(project.path, project.n_images())
    if advice:
        print(advice)


def _retrain(project):
    from .worker._view import retrain_view

    info = retrain_view(project, progress=sys.stderr.isatty())
    how = f"trained in {info['seconds']:.1f} s" if info["seconds"] else "already trained"
    print(f"{project.path}: the view of its {info['n_images']} images is in use ({how}).")


def _retrain_view(args):
    from . import open_project
    from .store._lock import project_lock

    with project_lock(_project_folder(args.project), "retrain-view"):
        _retrain(open_project(args.project))


def _export(args):
    from ..exceptions import LabelingError
    from . import export_dicom, open_project

    project = open_project(args.project)
    if args.to_dicom is None:
        if args.stow or args.auth or args.credentials_file or args.credentials_env:
            raise LabelingError("--stow and credentials go with --to-dicom.")
        n = project.export(args.output, args.format)
        what = "labeled images" if args.format == "csv" else "events"
        print(f"Wrote {n} {what} to {args.output}", file=sys.stderr)
        return
    n, stored = export_dicom(
        project, args.to_dicom, stow=args.stow, auth=args.auth, **_connection(args)
    )
    sent = f"; {args.stow} stored {stored}" if args.stow else ""
    print(f"Wrote {n} structured reports to {args.to_dicom}{sent}", file=sys.stderr)
