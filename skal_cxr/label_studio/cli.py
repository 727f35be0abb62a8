"""The ``skal-cxr label-studio-backend`` command (its parser and what it runs)."""

__all__ = ["add_label_studio_parser"]

_EPILOG = """\
example:
  skal-cxr label-studio-backend ls-backend/ --document-root /data/xrays
      serve on http://127.0.0.1:9090; in Label Studio: Settings > Model >
      Connect Model, URL http://127.0.0.1:9090
"""


def _options():
    from .._options import Option
    from ._settings import HOST, PORT

    return (
        Option(
            ("config_or_dir",),
            to="config_or_dir",
            metavar="CONFIG_OR_DIR",
            help="backend folder (state; its backend.json holds the settings) or a JSON "
            "settings file",
        ),
        Option(("--host",), to="serve.host", default=HOST, help=f"interface ({HOST})"),
        Option(("--port",), to="serve.port", type=int, default=PORT, help=f"port ({PORT})"),
        Option(("--strategy",), to="strategy", help="acquisition function once trained (mean_std)"),
        Option(
            ("--cold-start",),
            to="cold_start",
            choices=["typicality", "random"],
            help="before any model (typicality)",
        ),
        Option(
            ("--retrain-every",),
            to="retrain_every",
            type=int,
            metavar="N",
            help="annotations per retraining (10)",
        ),
        Option(
            ("--label-studio-url",),
            to="label_studio_url",
            metavar="URL",
            help="Label Studio's URL (LABEL_STUDIO_URL)",
        ),
        Option(
            ("--document-root",),
            to="document_root",
            metavar="DIR",
            help="Label Studio's local-files root (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)",
        ),
    )


def _run(args):
    from .._options import collect
    from ._app import serve
    from ._settings import load_settings

    # options not given are None: load_settings keeps the file's or its own defaults
    kwargs = collect(args, _options(), skip_none=False)
    server = kwargs.pop("serve")
    settings = load_settings(kwargs.pop("config_or_dir"), **kwargs)
    serve(settings, **server)


def add_label_studio_parser(sub):
    """Register ``label-studio-backend`` on the ``skal-cxr`` subparsers ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subcommands of ``skal-cxr``.
    """
    import argparse

    from .._options import add_options

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
    add_options(p, _options())
    p.set_defaults(func=_run)
