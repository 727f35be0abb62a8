"""The argument parser of the ``skal-cxr`` console script (:func:`build_parser`).

Each option is declared once (:mod:`skal_cxr._cli_options`, and
:mod:`skal_cxr.labeling.cli` for ``label``); :func:`skal_cxr._options.add_options`
adds them. The commands themselves are in :mod:`skal_cxr._cli_commands`.
"""

import argparse

from ._cli_commands import _report, _simulate, _study
from ._cli_options import REPORT_OPTIONS, STUDY_OPTIONS, simulate_defaults, simulate_options
from ._cli_types import _budget, _float_list, _int_list, _list_of, _seeds, _str_list  # noqa: F401
from ._options import Option, add_options
from ._version import __version__

__all__ = ["PROG", "build_parser"]


PROG = "skal-cxr"

_EPILOG_SIMULATE = """\
examples:
  skal-cxr simulate --output skal-cxr-results
      PneumoniaMNIST (shipped): typicality until 5 labels per class then max
      entropy, on the pool's contrastive view, against random on the same view
      and random with the CNN from pixels; 8 seeds, full-data baselines
  skal-cxr simulate --model cnn --strategies random,bald --output cnn
      the MC Dropout CNN from pixels (earlier releases' model)
  skal-cxr simulate --data phantoms --output phantoms
      built-in 3-class severity phantoms
  skal-cxr simulate --max-pool 2000 --budget 0.2 --output pm
      PneumoniaMNIST, pool subsampled to 2000 images, 20 % of it labeled
  skal-cxr simulate --csv labels.csv --image-dir images/ --label-columns r1,r2,r3 \\
      --group-column patient_id --output site-a
      an image folder, split by patient

Rerun the same command after an interruption to resume where it stopped.
"""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{PROG}: error: {message}\n")


_VERSION = Option(("--version",), action="version", version=f"%(prog)s {__version__}")


def build_parser():
    """The argument parser of ``skal-cxr`` (exposed for documentation tools).

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser with every subcommand.
    """
    parser = _ArgumentParser(
        prog=PROG,
        description="Deep Bayesian active learning for chest X-rays: simulate query "
        "strategies on labeled data and report learning curves.",
    )
    add_options(parser, [_VERSION])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    sub.required = True

    sim = sub.add_parser(
        "simulate",
        help="run an active-learning simulation (resumable)",
        description="Simulate pool-based active learning for several query strategies and "
        "seeds, then write a report. The model is by default an MC Dropout head on the "
        "pool's contrastive view (an encoder trained once on the pool without labels); "
        "--model cnn trains the MC Dropout CNN from pixels. Every finished round is saved "
        "at once under OUTPUT/records/.",
        epilog=_EPILOG_SIMULATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # the defaults shown in the help are the configuration's, never restated here
    add_options(sim, simulate_options(), simulate_defaults())
    sim.set_defaults(func=_simulate)

    st = sub.add_parser(
        "study",
        help="reproduce the reference study's design (two tasks) and its table",
        description="Binary normal vs pneumonia on PneumoniaMNIST and 3-class severity from "
        "simulated raters on the phantoms; random, max entropy, mean STD, BALD and "
        "variation ratios with a class-weighted loss. Writes OUTPUT/binary/, "
        "OUTPUT/severity/ (resumable results folders with their reports) and "
        "OUTPUT/study.md, our figures next to the published ones.",
    )
    add_options(st, STUDY_OPTIONS)
    st.set_defaults(func=_study)

    rep = sub.add_parser(
        "report",
        help="write the report of a results folder",
        description="Write learning_curves.png, summary.csv and report.md in RESULTS_DIR "
        "from its records (also done at the end of simulate).",
    )
    add_options(rep, REPORT_OPTIONS)
    rep.set_defaults(func=_report)

    from .labeling.cli import add_label_parser

    add_label_parser(sub)

    from .label_studio.cli import add_label_studio_parser

    add_label_studio_parser(sub)
    return parser
