"""The argument parser of the ``skal-cxr`` console script (:func:`build_parser`).

The commands themselves are in :mod:`skal_cxr.cli`; the ``label`` commands'
options are added by :func:`skal_cxr.labeling.cli.add_label_parser`.
"""

import argparse
import math

from ._cli_commands import _report, _simulate, _study
from ._cli_options import add_model_options
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


def _list_of(kind, what):
    """An argparse type: comma-separated values of ``kind``."""

    def parse(text):
        try:
            return [kind(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what}, got {text!r}"
            ) from None

    return parse


_int_list = _list_of(int, "integers")
_float_list = _list_of(float, "numbers")


def _seeds(text):
    if "," in text:
        return _int_list(text)
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count N (seeds 0..N-1) or a comma-separated list, got {text!r}"
        ) from None


def _str_list(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _budget(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}")
    if "." not in text and "e" not in text.lower():
        return int(value)
    return value


def build_parser():
    """The argument parser of ``skal-cxr`` (exposed for documentation tools).

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser with every subcommand.
    """
    from .datasets._sources import CONSENSUS, DUPLICATES, ON_ERROR
    from .simulation._config import DATA_DEFAULTS, DEFAULT_CONFIG

    # the defaults shown in the help are the configuration's, never restated here
    D = DEFAULT_CONFIG
    P, F = DATA_DEFAULTS["phantoms"], DATA_DEFAULTS["folder"]
    split = [1 - P["test_size"] - P["val_size"], P["val_size"], P["test_size"]]
    parser = _ArgumentParser(
        prog=PROG,
        description="Deep Bayesian active learning for chest X-rays: simulate query "
        "strategies on labeled data and report learning curves.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    g = sim.add_argument_group("data")
    g.add_argument(
        "--data",
        metavar="SOURCE",
        help="pneumoniamnist (default: real pediatric CXRs shipped with "
        "skal_cxr, normal vs pneumonia), 'phantoms' (generated, 3 severity "
        "classes; implied by --n-phantoms/--phantom-size), another MedMNIST "
        "name such as medmnist:chestmnist (read from $SKAL_CXR_DATA), or a path "
        "to its .npz file",
    )
    g.add_argument(
        "--n-phantoms",
        type=int,
        metavar="N",
        help=f"phantoms to generate, split "
        f"{'/'.join(str(round(100 * f)) for f in split)}%% pool/validation/test "
        f"({P['n_samples']})",
    )
    g.add_argument(
        "--phantom-size", type=int, metavar="PX", help=f"phantom image size ({P['image_size']})"
    )
    g.add_argument(
        "--n-raters",
        type=int,
        metavar="N",
        help="phantoms: simulate N raters (3 to 6 typical) whose disagreement "
        "concentrates near class boundaries; labels are their majority vote",
    )
    g.add_argument(
        "--max-pool",
        type=int,
        metavar="N",
        help="MedMNIST: subsample the train split to N pool images (stratified)",
    )
    g.add_argument("--csv", metavar="CSV", help="image folder: CSV of file names and labels")
    g.add_argument("--image-dir", metavar="DIR", help="image folder: folder of the images")
    g.add_argument(
        "--image-column", metavar="COL", help=f"CSV column of file names ({F['image_column']})"
    )
    g.add_argument(
        "--label-columns",
        type=_str_list,
        metavar="A,B",
        help="CSV label column(s), one per rater; several are combined by --consensus",
    )
    g.add_argument(
        "--score-column",
        metavar="COL",
        help="CSV column of a numeric score per image, cut into classes by --bins "
        "(instead of --label-columns)",
    )
    g.add_argument(
        "--bins",
        type=_float_list,
        metavar="E1,E2",
        help="increasing edges turning numeric scores or ratings into classes "
        "0..len(bins): class i when E_i <= score < E_i+1",
    )
    g.add_argument(
        "--classes",
        type=_str_list,
        metavar="C1,C2",
        help="the labels in ordinal order, least to most severe (for example "
        "none,mild,severe); consensus ties and macro MAE follow this order; "
        "with --bins, the names of the bins (default: sorted labels)",
    )
    g.add_argument(
        "--consensus",
        choices=list(CONSENSUS),
        help="how several raters' labels become one: majority (ties to the more "
        "severe), mean (rounded half up) or max (majority)",
    )
    g.add_argument(
        "--on-error",
        choices=list(ON_ERROR),
        help="bad CSV rows or images: stop listing them all, or skip and report "
        f"them ({F['on_error']})",
    )
    g.add_argument(
        "--group-column",
        metavar="COL",
        help="CSV patient column: pool, validation and test split by patient",
    )
    g.add_argument(
        "--image-size",
        type=int,
        metavar="PX",
        help=f"image folder: resize to PX ({F['image_size']})",
    )
    g.add_argument(
        "--duplicates",
        choices=DUPLICATES,
        help="image folder: a file or image listed twice is an error (raise), or "
        "only its first row is used (keep_first)",
    )
    g.add_argument(
        "--csv-encoding",
        dest="encoding",
        metavar="ENC",
        help="image folder: encoding of the CSV, e.g. cp1252 (UTF-8, or UTF-16 "
        "with a byte-order mark)",
    )
    g.add_argument(
        "--csv-delimiter",
        dest="delimiter",
        metavar="CHAR",
        help="image folder: delimiter of the CSV (default: the first of , ; tab | "
        "that gives the needed columns)",
    )
    g.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="image folder: decode the images once into this on-disk cache and "
        "read them from it (memory stays flat however large the folder)",
    )
    g.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        help="image folder: refuse images of more than N pixels before decoding "
        "them (default 50000000, or $SKAL_CXR_MAX_PIXELS)",
    )
    g.add_argument(
        "--verify-cache",
        action="store_const",
        const=True,
        default=None,
        help="image folder with --cache-dir: hash every image file again "
        "instead of trusting unchanged size, times and inode",
    )

    g = sim.add_argument_group("active learning")
    g.add_argument(
        "--strategies",
        type=_str_list,
        metavar="S1,S2",
        help=f"query strategies ({','.join(D['strategies'])}); also max_entropy, "
        "mean_std, bald, margin, least_confident, variation_ratios, batch_bald, "
        "power_bald, coreset, typicality, probcover, badge",
    )
    g.add_argument(
        "--seeds",
        type=_seeds,
        metavar="N|S1,S2",
        help=f"N seeds 0..N-1, or a list ({len(D['seeds'])})",
    )
    g.add_argument(
        "--n-initial", type=int, metavar="N", help=f"initial labeled images ({D['n_initial']})"
    )
    g.add_argument(
        "--initial",
        metavar="HOW",
        help="how the initial set is chosen without labels: strategy (each "
        "label-free strategy picks its own, the others start at random), "
        "random, a label-free strategy such as typicality, or stratified (an "
        f"oracle that uses the labels) ({D['initial']})",
    )
    g.add_argument(
        "--query-size", type=int, metavar="N", help=f"images acquired per round ({D['query_size']})"
    )
    g.add_argument(
        "--budget",
        type=_budget,
        metavar="N|FRAC",
        help="labeled images at the end, initial set included: a count, or a "
        f"fraction of the pool such as 0.2 ({D['budget']})",
    )
    g.add_argument(
        "--n-mc-samples",
        type=int,
        metavar="T",
        help=f"MC dropout samples per query ({D['n_mc_samples']})",
    )
    g.add_argument(
        "--pool-size",
        type=int,
        metavar="N",
        help=f"score a random subset of N unlabeled images per query ({D['pool_size'] or 'all'})",
    )
    g.add_argument(
        "--class-weight",
        choices=["none", "balanced"],
        help=f"class weighting of the loss ({D['class_weight'] or 'none'})",
    )
    g.add_argument(
        "--sampler",
        metavar="NAME",
        help="imbalanced-learn sampler of the labeled set at every fit: "
        "random_over, random_under, smote, or a class name such as NearMiss "
        f"({D['sampler'] or 'none'})",
    )
    g.add_argument(
        "--warm-start",
        action="store_true",
        default=None,
        help="continue training between rounds instead of retraining from scratch",
    )
    g.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        default=None,
        help="skip the full-data baseline",
    )

    add_model_options(sim)

    g = sim.add_argument_group("execution")
    g.add_argument(
        "--output",
        "-o",
        default="skal-cxr-results",
        metavar="DIR",
        help="results folder (skal-cxr-results)",
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="discard earlier results in DIR instead of resuming",
    )
    g.add_argument(
        "--n-jobs",
        type=int,
        default=-1,
        metavar="N",
        help="runs in parallel with joblib, -1 for every core (-1)",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on this Dask scheduler (tcp://host:8786); workers must see DIR",
    )
    g.add_argument(
        "--score-scheduler",
        metavar="ADDRESS",
        help="score the pool of each query (MC dropout, pools over 4096 images) "
        "in chunks on this Dask scheduler's workers (tcp://host:8786), with the "
        "same results as here; unlike --scheduler, the runs stay on this machine "
        "and the workers need not see DIR",
    )
    g.add_argument(
        "--torch-threads",
        type=int,
        metavar="N",
        help=f"PyTorch threads per run ({D['torch_threads']})",
    )
    g.add_argument("--metric", default="auroc", help="learning-curve metric of the report")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bars or messages")
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
    st.add_argument(
        "--output",
        "-o",
        default="skal-cxr-study",
        metavar="DIR",
        help="study folder (skal-cxr-study)",
    )
    st.add_argument(
        "--scale",
        choices=["small", "tiny"],
        default="small",
        help="small: minutes on 2 CPU cores (default); tiny: a smoke test",
    )
    st.add_argument("--seeds", type=_seeds, metavar="N|S1,S2", help="seeds (3)")
    st.add_argument(
        "--strategies",
        type=_str_list,
        metavar="S1,S2",
        help="random,max_entropy,mean_std,bald,variation_ratios",
    )
    st.add_argument(
        "--initial",
        default="random",
        metavar="HOW",
        help="initial labeled set: random (no labels, default), strategy, a "
        "label-free strategy, or stratified (an oracle)",
    )
    st.add_argument(
        "--n-jobs",
        type=int,
        default=-1,
        metavar="N",
        help="runs in parallel, -1 for every core (-1)",
    )
    st.add_argument("--overwrite", action="store_true", help="discard earlier results")
    st.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    st.set_defaults(func=_study)

    rep = sub.add_parser(
        "report",
        help="write the report of a results folder",
        description="Write learning_curves.png, summary.csv and report.md in RESULTS_DIR "
        "from its records (also done at the end of simulate).",
    )
    rep.add_argument("results_dir", metavar="RESULTS_DIR")
    rep.add_argument(
        "--metric",
        default="auroc",
        help="learning-curve metric: auroc, auprc, balanced_accuracy, ... (auroc)",
    )
    rep.add_argument(
        "--targets",
        type=_float_list,
        default=[0.95, 1.0],
        metavar="F1,F2",
        help="fractions of the full-data score to reach (0.95,1.0)",
    )
    rep.add_argument("--quiet", "-q", action="store_true", help="print nothing")
    rep.set_defaults(func=_report)

    from .labeling.cli import add_label_parser

    add_label_parser(sub, _str_list)

    from .label_studio.cli import add_label_studio_parser

    add_label_studio_parser(sub)
    return parser
