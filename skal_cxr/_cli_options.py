"""The options of ``skal-cxr simulate``, ``study`` and ``report``, each declared once.

Every :class:`~skal_cxr._options.Option` names where its value goes in the
arguments of :func:`~skal_cxr.simulation.simulate` (``estimator.lr``,
``data.folder.image_size``, ...); the defaults the help shows are read from
the simulation's configuration at the same path (:func:`simulate_defaults`).
"""

import functools

from ._cli_data_options import data_options
from ._cli_types import _budget, _float_list, _seeds, _str_list
from ._options import Option

__all__ = [
    "BACKBONES",
    "simulate_options",
    "STUDY_OPTIONS",
    "REPORT_OPTIONS",
    "simulate_defaults",
]

#: ``--backbone`` choices and the ``CXRNet`` backbone each names.
BACKBONES = {"cnn": "small", "resnet18": "resnet18", "densenet121": "densenet121"}


def simulate_defaults():
    """The defaults ``simulate``'s options read: the configuration, with every data source's."""
    from .simulation._config import DATA_DEFAULTS, DEFAULT_CONFIG

    return {**DEFAULT_CONFIG, "data": DATA_DEFAULTS}


def _none(value):
    return value or "none"


def _class_weight(choice):
    return None if choice == "none" else choice


def _options():
    al, model, est, run = "active learning", "model", "estimator (the CNN)", "execution"
    return [
        *data_options(),
        Option(
            ("--strategies",),
            to="strategies",
            type=_str_list,
            metavar="S1,S2",
            group=al,
            show=",".join,
            help="query strategies ({default}); also max_entropy, mean_std, bald, "
            "margin, least_confident, variation_ratios, batch_bald, power_bald, coreset, "
            "typicality, probcover, badge",
        ),
        Option(
            ("--seeds",),
            to="seeds",
            type=_seeds,
            metavar="N|S1,S2",
            group=al,
            show=len,
            help="N seeds 0..N-1, or a list ({default})",
        ),
        Option(
            ("--n-initial",),
            to="n_initial",
            type=int,
            metavar="N",
            group=al,
            help="initial labeled images ({default})",
        ),
        Option(
            ("--initial",),
            to="initial",
            metavar="HOW",
            group=al,
            help="how the initial set is chosen without labels: strategy (each "
            "label-free strategy picks its own, the others start at random), random, a "
            "label-free strategy such as typicality, or stratified (an oracle that uses "
            "the labels) ({default})",
        ),
        Option(
            ("--query-size",),
            to="query_size",
            type=int,
            metavar="N",
            group=al,
            help="images acquired per round ({default})",
        ),
        Option(
            ("--budget",),
            to="budget",
            type=_budget,
            metavar="N|FRAC",
            group=al,
            help="labeled images at the end, initial set included: a count, or a "
            "fraction of the pool such as 0.2 ({default})",
        ),
        Option(
            ("--n-mc-samples",),
            to="n_mc_samples",
            type=int,
            metavar="T",
            group=al,
            help="MC dropout samples per query ({default})",
        ),
        Option(
            ("--pool-size",),
            to="pool_size",
            type=int,
            metavar="N",
            group=al,
            show=lambda v: v or "all",
            help="score a random subset of N unlabeled images per query ({default})",
        ),
        Option(
            ("--class-weight",),
            to="class_weight",
            choices=["none", "balanced"],
            group=al,
            show=_none,
            convert=_class_weight,
            help="class weighting of the loss ({default})",
        ),
        Option(
            ("--sampler",),
            to="sampler",
            metavar="NAME",
            group=al,
            show=_none,
            help="imbalanced-learn sampler of the labeled set at every fit: random_over, "
            "random_under, smote, or a class name such as NearMiss ({default})",
        ),
        Option(
            ("--warm-start",),
            to="warm_start",
            action="store_true",
            default=None,
            group=al,
            help="continue training between rounds instead of retraining from scratch",
        ),
        Option(
            ("--no-baseline",),
            to="baseline",
            dest="baseline",
            action="store_false",
            default=None,
            group=al,
            help="skip the full-data baseline",
        ),
        Option(
            ("--model",),
            to="model",
            choices=["view", "cnn"],
            group=model,
            help="view: an MC Dropout head on the pool's contrastive view; cnn: the MC "
            "Dropout CNN from pixels (earlier releases' model); a strategy written "
            "name@cnn or name@view sets the model of that strategy (view; a resumed "
            "folder keeps its own)",
        ),
        Option(
            ("--view-epochs",),
            to="view.max_epochs",
            type=int,
            metavar="N",
            group=model,
            help="passes of the pool's contrastive encoder over the pool ({default})",
        ),
        Option(
            ("--view-width",),
            to="view.width",
            type=int,
            metavar="N",
            group=model,
            help="channels of the encoder's first block ({default})",
        ),
        Option(
            ("--head-steps",),
            to="head.n_steps",
            type=int,
            metavar="N",
            group=model,
            help="Adam steps of the head per fit ({default})",
        ),
        Option(
            ("--head-units",),
            to="head.hidden_units",
            type=int,
            metavar="N",
            group=model,
            help="hidden units of the head ({default})",
        ),
        Option(
            ("--lr",), to="estimator.lr", type=float, group=est, help="learning rate ({default:g})"
        ),
        Option(
            ("--batch-size",),
            to="estimator.batch_size",
            type=int,
            group=est,
            help="images per optimizer step, -1 for all ({default})",
        ),
        Option(
            ("--width",),
            to="estimator.module__width",
            type=int,
            group=est,
            help="channels of the first CXRNet block ({default})",
        ),
        Option(
            ("--n-blocks",),
            to="estimator.module__n_blocks",
            type=int,
            group=est,
            help="CXRNet convolution blocks ({default})",
        ),
        Option(
            ("--dropout",),
            to="estimator.module__dropout",
            type=float,
            group=est,
            help="dropout of the MC head ({default})",
        ),
        Option(
            ("--backbone",),
            to="estimator.module__backbone",
            choices=sorted(BACKBONES),
            convert=BACKBONES.get,
            group=est,
            help="network: cnn (small CXRNet), resnet18 or densenet121 (cnn)",
        ),
        Option(
            ("--pretrained",),
            to="estimator.module__pretrained",
            metavar="PATH|imagenet",
            group=est,
            help="initial weights of a resnet18/densenet121 backbone: a local state-dict "
            "file, or 'imagenet' for torchvision's weights from the local torch cache",
        ),
        Option(
            ("--device",), to="estimator.device", group=est, help="auto, cpu or cuda ({default})"
        ),
        Option(
            ("--max-epochs",),
            to="training.max_epochs",
            type=int,
            group=est,
            help="passes over the labeled set per fit, raised by --min-train-steps ({default})",
        ),
        Option(
            ("--min-train-steps",),
            to="training.min_train_steps",
            type=int,
            group=est,
            help="fewest optimizer steps per fit ({default})",
        ),
        Option(
            ("--lr-schedule",),
            to="training.lr_schedule",
            choices=["cosine", "constant"],
            group=est,
            help="learning rate within each fit: cosine annealing to 0, or constant ({default})",
        ),
        Option(
            ("--output", "-o"),
            to="output_dir",
            default="skal-cxr-results",
            metavar="DIR",
            group=run,
            help="results folder (skal-cxr-results)",
        ),
        Option(
            ("--overwrite",),
            to="overwrite",
            action="store_true",
            group=run,
            help="discard earlier results in DIR instead of resuming",
        ),
        Option(
            ("--n-jobs",),
            to="n_jobs",
            type=int,
            default=-1,
            metavar="N",
            group=run,
            help="runs in parallel with joblib, -1 for every core (-1)",
        ),
        Option(
            ("--scheduler",),
            to="scheduler",
            metavar="ADDRESS",
            group=run,
            help="run on this Dask scheduler (tcp://host:8786); workers must see DIR",
        ),
        Option(
            ("--score-scheduler",),
            to="score_scheduler",
            metavar="ADDRESS",
            group=run,
            help="score the pool of each query (MC dropout, pools over 4096 images) in "
            "chunks on this Dask scheduler's workers (tcp://host:8786), with the same "
            "results as here; unlike --scheduler, the runs stay on this machine and the "
            "workers need not see DIR",
        ),
        Option(
            ("--torch-threads",),
            to="torch_threads",
            type=int,
            metavar="N",
            group=run,
            help="PyTorch threads per run ({default})",
        ),
        Option(
            ("--metric",),
            to="metric",
            default="auroc",
            group=run,
            help="learning-curve metric of the report",
        ),
        Option(
            ("--quiet", "-q"),
            to="progress",
            action="store_true",
            convert=_not,
            group=run,
            help="no progress bars or messages",
        ),
    ]


def _not(value):
    return not value


@functools.cache
def simulate_options():
    """The options of ``simulate`` (built when first asked for: the choices are read then).

    Returns
    -------
    options : tuple of Option
    """
    return tuple(_options())


#: The options of ``study`` (its defaults are :func:`~skal_cxr.study.run_reference_study`'s).
STUDY_OPTIONS = (
    Option(
        ("--output", "-o"),
        to="output_dir",
        default="skal-cxr-study",
        metavar="DIR",
        help="study folder (skal-cxr-study)",
    ),
    Option(
        ("--scale",),
        to="scale",
        choices=["small", "tiny"],
        default="small",
        help="small: minutes on 2 CPU cores (default); tiny: a smoke test",
    ),
    Option(("--seeds",), to="seeds", type=_seeds, metavar="N|S1,S2", help="seeds (3)"),
    Option(
        ("--strategies",),
        to="strategies",
        type=_str_list,
        metavar="S1,S2",
        help="random,max_entropy,mean_std,bald,variation_ratios",
    ),
    Option(
        ("--initial",),
        to="initial",
        default="random",
        metavar="HOW",
        help="initial labeled set: random (no labels, default), strategy, a label-free "
        "strategy, or stratified (an oracle)",
    ),
    Option(
        ("--n-jobs",),
        to="n_jobs",
        type=int,
        default=-1,
        metavar="N",
        help="runs in parallel, -1 for every core (-1)",
    ),
    Option(("--overwrite",), to="overwrite", action="store_true", help="discard earlier results"),
    Option(
        ("--quiet", "-q"), to="progress", action="store_true", convert=_not, help="no progress bars"
    ),
)

#: The options of ``report``.
REPORT_OPTIONS = (
    Option(("results_dir",), to="results_dir", metavar="RESULTS_DIR"),
    Option(
        ("--metric",),
        to="metric",
        default="auroc",
        help="learning-curve metric: auroc, auprc, balanced_accuracy, ... (auroc)",
    ),
    Option(
        ("--targets",),
        to="targets",
        type=_float_list,
        default=[0.95, 1.0],
        metavar="F1,F2",
        help="fractions of the full-data score to reach (0.95,1.0)",
    ),
    Option(("--quiet", "-q"), to="quiet", action="store_true", help="print nothing"),
)
