"""The ``skal-cxr simulate``, ``study`` and ``report`` commands (options: ``_cli_options``).

Each command takes the values of its declared options where they go
(:func:`skal_cxr._options.collect`) and passes them on as they are.
"""

from ._cli_options import BACKBONES as _BACKBONES  # noqa: F401 (the choices, importable here)
from ._cli_options import REPORT_OPTIONS, STUDY_OPTIONS, simulate_options
from ._options import collect, given_flags


class _UsageError(Exception):
    pass


def _data_spec(args):
    """The ``data`` argument of ``simulate`` from the data options given."""
    from .datasets._sources import FOLDER_OPTIONS

    given = collect(args, simulate_options()).get("data", {})
    folder, phantoms = given.get("folder", {}), given.get("phantoms", {})
    medmnist, source = given.get("medmnist", {}), given.get("source")
    flags = given_flags(args, simulate_options(), "data.folder.")
    folder_only = [flags[k] for k in FOLDER_OPTIONS if k in flags]
    if folder_only and not (folder.get("csv") or folder.get("image_dir")):
        raise _UsageError(f"{', '.join(folder_only)} apply to image folders (--csv, --image-dir)")
    if folder.get("csv") or folder.get("image_dir"):
        if not (folder.get("csv") and folder.get("image_dir")):
            raise _UsageError("--csv and --image-dir go together")
        spec = {"source": "folder", "csv": folder["csv"], "image_dir": folder["image_dir"]}
        return {**spec, **{k: folder[k] for k in FOLDER_OPTIONS if k in folder}}
    if source is None and phantoms:
        source = "phantoms"
    if phantoms and source != "phantoms":
        raise _UsageError("--n-phantoms, --phantom-size and --n-raters need --data phantoms")
    if medmnist and source == "phantoms":
        raise _UsageError("--max-pool applies to MedMNIST data, not to phantoms")
    if source == "phantoms":
        return {"source": "phantoms", **phantoms}
    from .simulation._config import resolve_data_spec

    return {**resolve_data_spec(source or "pneumoniamnist"), **medmnist}


def _backbone_params(args):
    """``module__backbone`` / ``module__pretrained``, checked before any training."""
    estimator = collect(args, simulate_options()).get("estimator", {})
    return _checked_backbone(
        {k: v for k, v in estimator.items() if k in ("module__backbone", "module__pretrained")}
    )


def _checked_backbone(estimator):
    """``estimator`` with ``module__pretrained`` checked and resolved (a path, or ``True``)."""
    pretrained = estimator.get("module__pretrained")
    if pretrained is None:
        return estimator
    backbone = estimator.get("module__backbone", "small")
    if backbone == "small":
        raise _UsageError("--pretrained needs --backbone resnet18 or densenet121")
    if pretrained == "imagenet":
        from .networks import cached_imagenet_weights

        path = cached_imagenet_weights(backbone)
        if not path.is_file():
            raise _UsageError(
                f"--pretrained imagenet: the {backbone} ImageNet weights are not in the local "
                f"torch cache ({path}); copy the file there or give --pretrained PATH"
            )
        return {**estimator, "module__pretrained": True}
    import os

    if not os.path.isfile(pretrained):
        raise _UsageError(f"--pretrained: no such weights file: {pretrained}")
    return {**estimator, "module__pretrained": os.path.abspath(pretrained)}


def _simulate(args):
    kwargs = _simulate_arguments(args)
    max_pixels = kwargs.pop("max_pixels", None)
    if max_pixels is not None and max_pixels <= 0:
        raise _UsageError("--max-pixels must be a positive number of pixels")
    if "estimator" in kwargs:
        kwargs["estimator"] = _checked_backbone(kwargs["estimator"])
    from .datasets import image_limits

    # the limit reaches the decoders through image_limits, not the environment
    with image_limits(max_pixels=max_pixels):
        result = _run_simulate(kwargs)
    _report_and_print(result.results_dir, args.metric, (0.95, 1.0), args.quiet)


def _simulate_arguments(args):
    """The keyword arguments of ``simulate`` given on the command line (and ``max_pixels``)."""
    kwargs = collect(args, simulate_options())
    kwargs["data"] = _data_spec(args)
    return kwargs


def _run_simulate(kwargs):
    from .simulation import simulate

    kwargs = dict(kwargs)
    return simulate(kwargs.pop("output_dir"), **kwargs, report=False)


def _study(args):
    from .study import run_reference_study

    kwargs = collect(args, STUDY_OPTIONS)
    paths = run_reference_study(kwargs.pop("output_dir"), **kwargs)
    if not args.quiet:
        print(paths["study"].read_text())


def _report(args):
    kwargs = collect(args, REPORT_OPTIONS)
    _report_and_print(kwargs["results_dir"], kwargs["metric"], kwargs["targets"], kwargs["quiet"])


def _report_and_print(results_dir, metric, targets, quiet):
    from .report import make_report, verdict_vs_random

    paths = make_report(results_dir, metric=metric, targets=targets)
    if quiet:
        return
    print(f"\nReport: {paths['report']}")
    print(f"Summary table: {paths['summary']}; learning curves: {paths['figure']}")
    rows = [r for r in paths["rows"] if r["strategy"] != "full_data"]
    width = max(len(r["strategy"]) for r in rows)
    print(f"\n{'strategy':<{width}}  AULC {metric} (mean ± SD over seeds)")
    for r in rows:
        print(f"{r['strategy']:<{width}}  {r['aulc_mean']:.3f} ± {r['aulc_std']:.3f}")
    if any(r["strategy"] == "random" for r in rows):
        print()
        for r in rows:
            if r["strategy"] != "random":
                print(verdict_vs_random(r))
