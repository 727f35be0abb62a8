"""The model and estimator options of ``skal-cxr simulate`` (see :mod:`skal_cxr._cli_parser`)."""

from ._cli_commands import _BACKBONES

__all__ = ["add_model_options"]


def add_model_options(sim):
    """Add the ``model`` and ``estimator (the CNN)`` option groups to ``sim``.

    Parameters
    ----------
    sim : argparse.ArgumentParser
        The ``simulate`` subcommand's parser.
    """
    from .simulation._config import DEFAULT_CONFIG

    # the defaults shown in the help are the configuration's, never restated here
    E, T = DEFAULT_CONFIG["estimator"], DEFAULT_CONFIG["training"]
    V, H = DEFAULT_CONFIG["view"], DEFAULT_CONFIG["head"]
    g = sim.add_argument_group("model")
    g.add_argument(
        "--model",
        choices=["view", "cnn"],
        help="view: an MC Dropout head on the pool's contrastive view; cnn: the MC "
        "Dropout CNN from pixels (earlier releases' model); a strategy written "
        "name@cnn or name@view sets the model of that strategy (view; a resumed "
        "folder keeps its own)",
    )
    g.add_argument(
        "--view-epochs",
        type=int,
        metavar="N",
        help=f"passes of the pool's contrastive encoder over the pool ({V['max_epochs']})",
    )
    g.add_argument(
        "--view-width",
        type=int,
        metavar="N",
        help=f"channels of the encoder's first block ({V['width']})",
    )
    g.add_argument(
        "--head-steps",
        type=int,
        metavar="N",
        help=f"Adam steps of the head per fit ({H['n_steps']})",
    )
    g.add_argument(
        "--head-units",
        type=int,
        metavar="N",
        help=f"hidden units of the head ({H['hidden_units']})",
    )

    g = sim.add_argument_group("estimator (the CNN)")
    g.add_argument("--lr", type=float, help=f"learning rate ({E['lr']:g})")
    g.add_argument(
        "--batch-size", type=int, help=f"images per optimizer step, -1 for all ({E['batch_size']})"
    )
    g.add_argument(
        "--width", type=int, help=f"channels of the first CXRNet block ({E['module__width']})"
    )
    g.add_argument(
        "--n-blocks", type=int, help=f"CXRNet convolution blocks ({E['module__n_blocks']})"
    )
    g.add_argument("--dropout", type=float, help=f"dropout of the MC head ({E['module__dropout']})")
    g.add_argument(
        "--backbone",
        choices=sorted(_BACKBONES),
        help="network: cnn (small CXRNet), resnet18 or densenet121 (cnn)",
    )
    g.add_argument(
        "--pretrained",
        metavar="PATH|imagenet",
        help="initial weights of a resnet18/densenet121 backbone: a local state-"
        "dict file, or 'imagenet' for torchvision's weights from the local torch "
        "cache",
    )
    g.add_argument("--device", help=f"auto, cpu or cuda ({E['device']})")
    g.add_argument(
        "--max-epochs",
        type=int,
        help="passes over the labeled set per fit, "
        f"raised by --min-train-steps ({T['max_epochs']})",
    )
    g.add_argument(
        "--min-train-steps",
        type=int,
        help=f"fewest optimizer steps per fit ({T['min_train_steps']})",
    )
    g.add_argument(
        "--lr-schedule",
        choices=["cosine", "constant"],
        help="learning rate within each fit: cosine annealing to 0, or constant "
        f"({T['lr_schedule']})",
    )
