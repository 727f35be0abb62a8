"""The ``skal-cxr simulate``, ``study`` and ``report`` commands (options: ``_cli_parser``)."""

#: ``--backbone`` choices and the ``CXRNet`` backbone each names.
_BACKBONES = {"cnn": "small", "resnet18": "resnet18", "densenet121": "densenet121"}


def _data_spec(args):
    from .datasets._sources import FOLDER_OPTIONS

    folder_only = [
        f"--{k.replace('_', '-')}" for k in FOLDER_OPTIONS if getattr(args, k) is not None
    ]
    if folder_only and not (args.csv or args.image_dir):
        raise _UsageError(f"{', '.join(folder_only)} apply to image folders (--csv, --image-dir)")
    if args.csv or args.image_dir:
        if not (args.csv and args.image_dir):
            raise _UsageError("--csv and --image-dir go together")
        spec = {"source": "folder", "csv": args.csv, "image_dir": args.image_dir}
        for key in FOLDER_OPTIONS:
            if getattr(args, key) is not None:
                spec[key] = getattr(args, key)
        return spec
    phantom_options = any(
        v is not None for v in (args.n_phantoms, args.phantom_size, args.n_raters)
    )
    if args.data is None and phantom_options:
        args.data = "phantoms"
    if phantom_options and args.data != "phantoms":
        raise _UsageError("--n-phantoms, --phantom-size and --n-raters need --data phantoms")
    if args.max_pool is not None and args.data == "phantoms":
        raise _UsageError("--max-pool applies to MedMNIST data, not to phantoms")
    if args.data == "phantoms":
        spec = {"source": "phantoms"}
        if args.n_phantoms is not None:
            spec["n_samples"] = args.n_phantoms
        if args.phantom_size is not None:
            spec["image_size"] = args.phantom_size
        if args.n_raters is not None:
            spec["n_raters"] = args.n_raters
        return spec
    from .simulation._config import resolve_data_spec

    spec = resolve_data_spec(args.data or "pneumoniamnist")
    if args.max_pool is not None:
        spec["max_pool"] = args.max_pool
    return spec


class _UsageError(Exception):
    pass


def _backbone_params(args):
    """``module__backbone`` / ``module__pretrained``, checked before any training."""
    params = {}
    if args.backbone is not None:
        params["module__backbone"] = _BACKBONES[args.backbone]
    if args.pretrained is None:
        return params
    backbone = params.get("module__backbone", "small")
    if backbone == "small":
        raise _UsageError("--pretrained needs --backbone resnet18 or densenet121")
    if args.pretrained == "imagenet":
        from .networks import cached_imagenet_weights

        path = cached_imagenet_weights(backbone)
        if not path.is_file():
            raise _UsageError(
                f"--pretrained imagenet: the {backbone} ImageNet weights are not in the local "
                f"torch cache ({path}); copy the file there or give --pretrained PATH"
            )
        params["module__pretrained"] = True
    else:
        import os

        if not os.path.isfile(args.pretrained):
            raise _UsageError(f"--pretrained: no such weights file: {args.pretrained}")
        params["module__pretrained"] = os.path.abspath(args.pretrained)
    return params


def _class_weight(choice):
    if choice is None:
        return "balanced"
    return None if choice == "none" else choice


def _simulate(args):
    if args.max_pixels is not None and args.max_pixels <= 0:
        raise _UsageError("--max-pixels must be a positive number of pixels")

    estimator = {
        k: v
        for k, v in {
            "lr": args.lr,
            "batch_size": args.batch_size,
            "module__width": args.width,
            "module__n_blocks": args.n_blocks,
            "module__dropout": args.dropout,
            "device": args.device,
        }.items()
        if v is not None
    }
    estimator.update(_backbone_params(args))
    training = {
        k: v
        for k, v in {
            "min_train_steps": args.min_train_steps,
            "max_epochs": args.max_epochs,
            "lr_schedule": args.lr_schedule,
        }.items()
        if v is not None
    }
    from .datasets import image_limits

    # the limit reaches the decoders through image_limits, not the environment
    with image_limits(max_pixels=args.max_pixels):
        result = _run_simulate(args, estimator, training, *_view_params(args))
    _report_and_print(result.results_dir, args.metric, (0.95, 1.0), args.quiet)


def _view_params(args):
    """The ``view`` and ``head`` settings given on the command line (None: the defaults)."""
    view = {
        k: v
        for k, v in {"max_epochs": args.view_epochs, "width": args.view_width}.items()
        if v is not None
    }
    head = {
        k: v
        for k, v in {"n_steps": args.head_steps, "hidden_units": args.head_units}.items()
        if v is not None
    }
    return view or None, head or None


def _run_simulate(args, estimator, training, view=None, head=None):
    from .simulation import simulate

    return simulate(
        args.output,
        data=_data_spec(args),
        strategies=args.strategies,
        seeds=args.seeds,
        n_initial=args.n_initial,
        initial=args.initial,
        query_size=args.query_size,
        budget=args.budget,
        n_mc_samples=args.n_mc_samples,
        pool_size=args.pool_size,
        class_weight=_class_weight(args.class_weight),
        sampler=args.sampler,
        warm_start=args.warm_start,
        baseline=args.baseline,
        model=args.model,
        view=view,
        head=head,
        estimator=estimator or None,
        training=training or None,
        torch_threads=args.torch_threads,
        n_jobs=args.n_jobs,
        scheduler=args.scheduler,
        score_scheduler=args.score_scheduler,
        metric=args.metric,
        overwrite=args.overwrite,
        progress=not args.quiet,
        report=False,
    )


def _study(args):
    from .study import run_reference_study

    paths = run_reference_study(
        args.output,
        scale=args.scale,
        seeds=args.seeds,
        strategies=args.strategies,
        initial=args.initial,
        n_jobs=args.n_jobs,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(paths["study"].read_text())


def _report(args):
    _report_and_print(args.results_dir, args.metric, args.targets, args.quiet)


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
