"""The ``skal-cxr`` console script: ``simulate``, ``report`` and ``label``.

User errors (bad arguments, a results folder of another configuration) end
with one line ``skal-cxr: error: ...`` on stderr and exit code 2; data that
cannot be read, exit code 1; an interrupted simulation, exit code 130 for
Ctrl-C and 143 for SIGTERM (rerun the same command to resume). No traceback
is shown for these. Invalid lines found in the records are reported as
``skal-cxr: warning: ...`` lines and left out.
"""

import contextlib
import signal
import sys
import warnings

from ._cli_commands import _backbone_params, _data_spec, _UsageError  # noqa: F401 (API of tests)
from ._cli_parser import PROG, build_parser

__all__ = ["main", "build_parser"]


@contextlib.contextmanager
def _one_line_warnings():
    """Print UserWarnings about the user's settings or folder as ``skal-cxr: warning: ...``.

    Each message is printed once (the results folder is read more than once);
    other warnings keep Python's format.
    """
    shown = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning):
            if str(message) not in shown:
                shown.add(str(message))
                print(f"{PROG}: warning: {message}", file=sys.stderr)
        else:
            print(
                warnings.formatwarning(message, category, filename, lineno, line),
                file=sys.stderr,
                end="",
            )

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv=None):
    """Entry point of the ``skal-cxr`` console script.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 for unreadable data or results, 2 for bad arguments
        (or a results folder in use, of another configuration, or not
        created by skal-cxr), 130 when interrupted, 143 when terminated.
    """
    from .exceptions import (  # the errors only: no torch before a command needs it
        ConfigError,
        DataError,
        LabelingError,
        ResultsDirError,
        SimulationInterrupted,
    )

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _one_line_warnings():
            args.func(args)
    except (_UsageError, ConfigError, ResultsDirError, LabelingError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (DataError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        if args.command != "report":
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SimulationInterrupted) as exc:
        signum = getattr(exc, "signum", None) or signal.SIGINT
        what = "terminated" if signum == signal.SIGTERM else "interrupted"
        print(f"\n{PROG}: {what}; rerun the same command to resume.", file=sys.stderr)
        return 128 + signum
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
