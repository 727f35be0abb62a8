"""The ``skal-cxr label-studio-backend`` command (its parser and what it runs)."""

__all__ = ["add_label_studio_parser"]

_EPILOG = """\
example:
  skal-cxr label-studio-backend ls-backend/ --document-root /data/xrays
      serve on http://127.0.0.1:9090; in Label Studio: Settings > Model >
      Connect Model, URL http://127.0.0.1:9090
"""


def _run(args):
    from ._app import serve
    from ._settings import load_settings

    settings = load_settings(
        args.config_or_dir,
        strategy=args.strategy,
        cold_start=args.cold_start,
        retrain_every=args.retrain_every,
        label_studio_url=args.label_studio_url,
        document_root=args.document_root,
    )
    serve(settings, host=args.host, port=args.port)


def add_label_studio_parser(sub):
    """Register ``label-studio-backend`` on the ``skal-cxr`` subparsers ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subcommands of ``skal-cxr``.
    """
    import argparse

    from ._settings import HOST, PORT

    p = sub.add_parser(
        "label-studio-backend",
        help="serve the model and its acquisition to Label Studio (an ML backend)",
        description="A Label Studio ML backend: predictions with MC Dropout probabilities "
        "and a score ordering the tasks by the acquisition function (lowest: label "
        "next); retrains in the background on the annotations. The API token is read "
        "from LABEL_STUDIO_API_KEY (or sent by Label Studio in /setup).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "config_or_dir",
        metavar="CONFIG_OR_DIR",
        help="backend folder (state; its backend.json holds the settings) or a JSON settings file",
    )
    p.add_argument("--host", default=HOST, help=f"interface ({HOST})")
    p.add_argument("--port", type=int, default=PORT, help=f"port ({PORT})")
    p.add_argument("--strategy", help="acquisition function once trained (mean_std)")
    p.add_argument(
        "--cold-start", choices=["typicality", "random"], help="before any model (typicality)"
    )
    p.add_argument("--retrain-every", type=int, metavar="N", help="annotations per retraining (10)")
    p.add_argument(
        "--label-studio-url", metavar="URL", help="Label Studio's URL (LABEL_STUDIO_URL)"
    )
    p.add_argument(
        "--document-root",
        metavar="DIR",
        help="Label Studio's local-files root (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)",
    )
    p.set_defaults(func=_run)
