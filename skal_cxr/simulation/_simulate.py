"""``simulate``: the grid of strategies x seeds (+ baselines), in parallel, resumable."""

import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from joblib import Parallel, delayed, parallel_config
from sklearn.utils import Bunch

from .._reaper import reaped_children
from .._results import (
    CONFIG_FILE,
    RECORDS_DIR,
    REPORT_FILES,
    ResultsDirError,
    ResultsLock,
    claim_folder,
    own_files,
    owned_files,
    read_config,
    read_record_file,
    read_records,
    record_path,
    repair_records,
    write_config,
)
from ..engine import LEGACY_MODEL, RoundConfig, view_files
from ._checks import (  # MAX_PARAMETERS, metric_names: still importable from here
    MAX_PARAMETERS,  # noqa: F401
    _check_metric,
    _check_network,
    _check_scheduler,
    _scoring_on,
    metric_names,  # noqa: F401
)
from ._config import (
    DEFAULT_CONFIG,
    ConfigError,
    arm_models,
    config_diff,
    resolve_config,
    split_arm,
)
from ._data import load_simulation_data
from ._progress import _Progress
from ._runner import SimulationInterrupted, round_schedule, run_task

__all__ = ["simulate"]


def _version():
    from .._version import __version__

    return __version__


def _prepare_dir(results_dir, config, resolved, overwrite):
    """Create the folder, or check that its config.json matches (then resume)."""
    results_dir = Path(results_dir)
    config_path = results_dir / CONFIG_FILE
    if config_path.is_file() and not overwrite:
        try:
            meta = read_config(results_dir)
        except ValueError as exc:
            raise ResultsDirError(f"{exc} Use --overwrite.") from exc
        old, old_resolved = meta["config"], meta["resolved"]
        # a folder written before the view existed trained the CNN
        old = {"model": LEGACY_MODEL, **old}
        # a setting added since the folder was written has its default there
        old = {**{k: v for k, v in DEFAULT_CONFIG.items() if k not in old}, **old}
        # how the data are checked is no part of what they are
        diff = [k for k in config_diff(old, config) if k != "data.verify_cache"]
        # same settings but other data (a replaced file): the records would not fit
        diff += [f"data ({k})" for k in config_diff(old_resolved, resolved)]
        if diff:
            raise ResultsDirError(
                f"{results_dir} holds results of a different configuration "
                f"(differs in: {', '.join(diff)}); use another --output or --overwrite."
            )
        return False
    if results_dir.exists() and not overwrite and not config_path.is_file():
        if (results_dir / RECORDS_DIR).exists():
            raise ResultsDirError(f"{results_dir} holds records but no {CONFIG_FILE}.")
    if overwrite:  # remove only the files this tool wrote (listed in the folder's marker)
        for name in sorted(owned_files(results_dir) or ()):
            path = results_dir / name
            if path.is_file() and not path.is_symlink():
                path.unlink()
    results_dir.mkdir(parents=True, exist_ok=True)
    return True


def _stored_model(results_dir, overwrite):
    """The model of the simulation in ``results_dir`` (resumed), or None (a new one)."""
    if overwrite or not (Path(results_dir) / CONFIG_FILE).is_file():
        return None
    try:
        stored = read_config(results_dir)["config"]
    except (ValueError, KeyError, TypeError):
        return None  # _prepare_dir says what is wrong with it
    return stored.get("model", LEGACY_MODEL) if isinstance(stored, dict) else None


def _tasks(config):
    """The grid's tasks: the pool's encoder first, then seed by seed, the CNN's first.

    With the view, its encoder is trained by the first task; each seed's
    runs of the CNN (which do not need it) come before its baseline and its
    runs on the view, so that a parallel worker trains the CNN meanwhile,
    and seed by seed, so that an interrupted simulation has whole seeds to
    compare. Without the view the order is the one of earlier releases:
    baselines, then runs.
    """
    seeds, arms = config["seeds"], config["strategies"]
    baselines = [("baseline", None, s) for s in seeds if config["baseline"]]
    runs = [("active", a, s) for s in seeds for a in arms]
    if "view" not in arm_models(config):
        return baselines + runs
    tasks = [("view", None, None)]
    for seed in seeds:
        mine = [t for t in runs if t[2] == seed]
        cnn = [t for t in mine if split_arm(t[1], config)[1] == "cnn"]
        tasks += cnn + [t for t in baselines if t[2] == seed] + [t for t in mine if t not in cnn]
    return tasks


def _write_config(results_dir, config, resolved):
    write_config(
        results_dir, {"skal_cxr_version": _version(), "config": config, "resolved": resolved}
    )


def _run_grid(tasks, data, config, schedule, results_dir, n_jobs, scheduler, token):
    def jobs(owner):
        return (
            delayed(run_task)(t, data, config, schedule, str(results_dir), owner) for t in tasks
        )

    if scheduler is not None:
        from distributed import Client

        with Client(scheduler), parallel_config(backend="dask", wait_for_workers_timeout=60):
            return Parallel(n_jobs=-1)(jobs((token, False)))
    if n_jobs in (None, 1):
        return Parallel(n_jobs=1)(jobs(None))
    jobs = jobs((token, True))
    # A worker that never got a task has no parent watch (see skal_cxr._reaper.exit_with_parent):
    # a short idle timeout ends it too, so no worker outlives a killed parent
    # (holding its output pipes open) for loky's default 300 s.
    # The reaper kills every worker and resource tracker of the pool when this
    # process dies, at any moment (pool start-up and shut-down included).
    with (
        reaped_children(),
        parallel_config(
            backend="loky", inner_max_num_threads=config["torch_threads"], idle_worker_timeout=2
        ),
    ):
        # max_nbytes=None: no read-only memmaps (torch warns on them)
        return Parallel(n_jobs=n_jobs, max_nbytes=None)(jobs)


@contextmanager
def _sigterm_interrupts():
    """SIGTERM stops the simulation like Ctrl-C: finished rounds are kept, rerun resumes.

    The handler raises :class:`SimulationInterrupted`, which (unlike
    ``KeyboardInterrupt``) skorch does not swallow; joblib then ends its
    worker processes. Only the main thread can install it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SimulationInterrupted(
            "terminated (SIGTERM); rerun the same command to resume.", signum=signum
        )

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_complete(results_dir, tasks, schedule):
    """Every planned round is recorded, or the simulation did not succeed."""
    missing = []
    for task in tasks:
        n = 1 if task[0] == "baseline" else len(schedule)
        if len(read_record_file(record_path(results_dir, *task))) < n:
            missing.append(record_path(results_dir, *task).name)
    if missing:
        raise SimulationInterrupted(
            f"{len(missing)} run(s) are incomplete ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); rerun the same command to resume."
        )


def simulate(
    output_dir,
    *,
    data=None,
    strategies=None,
    seeds=None,
    n_initial=None,
    initial=None,
    query_size=None,
    budget=None,
    n_mc_samples=None,
    pool_size=None,
    class_weight="balanced",
    sampler=None,
    warm_start=None,
    baseline=None,
    model=None,
    view=None,
    head=None,
    estimator=None,
    training=None,
    torch_threads=None,
    n_jobs=None,
    scheduler=None,
    score_scheduler=None,
    metric=None,
    overwrite=False,
    progress=False,
    report=True,
):
    """Simulate pool-based active learning and compare query strategies.

    For every strategy and seed, an :class:`~skal_cxr.ActiveLearner` starts
    from an initial labeled set chosen without labels (``initial``) and
    acquires ``query_size`` images per round (their labels revealed from the
    data) until ``budget`` images are labeled. Its model (``model``) is by
    default a :class:`~skal_cxr.FrozenViewClassifier`: an MC Dropout head on
    the pool's contrastive encoder, trained once per simulation on the whole
    pool without labels and kept in the results folder
    (:func:`skal_cxr.engine.pool_view`); ``model="cnn"`` trains the
    :class:`~skal_cxr.MCDropoutCNN` from pixels instead, and an arm
    ``"strategy@cnn"`` (or ``@view``) sets the model of one strategy. Every
    round the model is retrained (from scratch unless ``warm_start``) and
    evaluated on the test split; see
    :func:`skal_cxr.metrics.classification_metrics` for the metrics and the
    validation-chosen operating point. With ``baseline`` each model of the
    arms is also trained on the whole pool, once per seed; the better one
    (test AUROC) is the seed's full-data reference.

    Every finished round is appended to ``<output_dir>/records/`` at once.
    Calling ``simulate`` again with the same configuration and folder resumes
    an interrupted simulation: finished rounds are kept and the results are
    identical to those of an uninterrupted run. The folder is locked while
    the simulation runs; see :ref:`simulation-guarantees` for what is
    atomic, locked and checked.

    Parameters
    ----------
    output_dir : path-like
        Results folder: ``config.json``, ``records/*.jsonl`` and the report.
    data : str or dict, default=None
        ``None``: PneumoniaMNIST, the copy shipped with skal_cxr (see
        :func:`~skal_cxr.datasets.load_pneumoniamnist`; a
        ``pneumoniamnist.npz`` in ``$SKAL_CXR_DATA`` is used instead when
        present): the train split is the pool, val chooses operating
        points, test is the test set. ``"phantoms"``: built-in phantoms (3000 images of 32x32,
        normal / moderate / severe in proportions 0.6 / 0.3 / 0.1, split
        into 25% test, 10% validation and the pool). A MedMNIST name or
        ``.npz`` path uses that file's train (pool), val and test splits. A
        dict sets every option of a source, for example
        ``{"source": "folder", "csv": ..., "image_dir": ...,
        "label_columns": [...], "group_column": "patient_id"}`` (split by
        patient when a group column is given); ``resolve_config(data=...)``
        shows every option of a source with its default.
    strategies : list of str, default=None
        Keys of :data:`skal_cxr.strategies.STRATEGIES`, each run with
        ``model``, or arms ``"strategy@model"`` run with that model; ``None``
        is ``["typicality_until_5_then_max_entropy", "random",
        "random@cnn"]``: the default against random on the same view and
        random with the CNN from pixels (see :doc:`/benchmarks/main_job`).
    seeds : int or list of int, default=None
        Seeds (an int ``k`` means ``0 .. k-1``); ``None`` is ``0 .. 7``
        (8 paired seeds: the exact Wilcoxon test needs at least 6 for
        ``p < 0.05``).
        A seed fixes the initial set, the network initialisation, the
        dropout masks and the queries' randomness; the data split is fixed
        by the data's own ``random_state``.
    n_initial : int, default=None
        Initial labeled images (10).
    initial : str, default=None
        How the initial set is chosen (see
        :func:`skal_cxr.engine.initial_set`); never from labels unless
        ``"stratified"``. ``"strategy"`` (the default): each label-free
        strategy (typicality, ProbCover, schedules starting with one) picks
        its own first labels, as in the low-budget study; the others, random
        sampling included, start from the same label-free random draw.
        ``"random"``: every run starts from that random draw. A label-free
        strategy's name: it picks the initial set of every run.
        ``"stratified"``: drawn by class, an oracle that uses labels no
        project has; the report marks it.
    query_size : int, default=None
        Images acquired per round (10): the ``n_instances`` of each round's
        :meth:`ActiveLearner.query <skal_cxr.ActiveLearner.query>` (the last
        round's may be smaller, to end at the budget).
    budget : int or float, default=None
        Labeled images at the end, initial set included: a count, or a
        fraction in ``(0, 1]`` of the pool (100).
    n_mc_samples : int, default=None
        Monte Carlo dropout samples per acquisition (20).
    pool_size : int, default=None
        Score a random subset of this many unlabeled images per query
        (``None``: all of them).
    class_weight : {"balanced", None}, default="balanced"
        Loss weighting of the classes, recomputed each round from the
        labeled set (as in the reference study); ``None`` for none.
    sampler : str, default=None
        An imbalanced-learn sampler applied to the labeled set at every fit
        (see :class:`~skal_cxr.MCDropoutCNN`): a class name of
        :mod:`imblearn.over_sampling`, ``under_sampling`` or ``combine``, or
        ``"random_over"``, ``"random_under"``, ``"smote"``; ``None`` for none.
    warm_start : bool, default=None
        Continue training the previous round's network instead of
        retraining from scratch (False).
    baseline : bool, default=None
        Also train on the whole pool, once per seed (True).
    model : {"view", "cnn"}, default=None
        The model of the strategies without ``@model``: ``"view"``, an MC
        Dropout head on the pool's contrastive view; ``"cnn"``, the MC
        Dropout CNN from pixels (earlier releases' only model). ``None``:
        the model of the simulation being resumed in ``output_dir`` (the CNN
        for a folder written before the view existed), else ``"view"``.
    view : dict, default=None
        Settings of the pool's :class:`~skal_cxr.embeddings.ContrastiveEncoder`
        merged into the defaults ``max_epochs=5, width=16, n_blocks=3,
        projection_dim=64, batch_size=256, lr=1e-3, temperature=0.5,
        random_state=0`` (one encoder for every seed).
    head : dict, default=None
        Settings of the :class:`~skal_cxr.heads.MCDropoutHead` merged into
        the defaults ``hidden_units=128, dropout=0.5, input_dropout=0.0,
        n_steps=300, batch_size=256, lr=1e-3, weight_decay=0.0,
        mc_predict=False``.
    estimator : dict, default=None
        The CNN's :class:`~skal_cxr.MCDropoutCNN` parameters merged into the
        defaults ``lr=1e-3, batch_size=32, module__width=16,
        module__n_blocks=3, module__dropout=0.5, mc_predict=False,
        device="auto"``.
    training : dict, default=None
        The epoch rule of :func:`~skal_cxr.models.training_epochs`
        (``max_epochs=5`` passes over the labeled set, raised to reach
        ``min_train_steps=150`` optimizer steps) and the learning rate within
        each fit (``lr_schedule="cosine"``, annealed to 0; or ``"constant"``).
    torch_threads : int, default=None
        PyTorch threads per run (1); results are reproducible for a fixed
        value.
    n_jobs : int, default=None
        Runs in parallel (joblib; ``None`` is 1, ``-1`` all cores).
    scheduler : str, default=None
        Address of a Dask scheduler (``"tcp://host:8786"``): run the grid on
        that cluster through joblib's Dask backend instead (needs
        ``dask[distributed]``). Workers must see
        ``output_dir`` (a shared file system) and should be processes with
        one thread each (``dask worker --nthreads 1``): seeded runs reseed
        torch's process-wide random generator, so two runs sharing a process
        in threads would disturb each other's dropout masks.
    score_scheduler : str, default=None
        Address of a Dask scheduler on which every run scores its pool
        (:class:`~skal_cxr.MCDropoutCNN` ``scheduler=``): each query's MC
        scoring of pools over 4096 images is cut into chunks scored by that
        cluster's workers, with results identical to local scoring. Unlike
        ``scheduler``, the runs themselves (training, evaluation, the
        records) stay where ``n_jobs`` puts them, and the workers need no
        shared file system. Not part of the configuration: a simulation may
        be resumed with or without it.
    metric : str, default=None
        Learning-curve metric of the report (``None``: ``"auroc"``); an
        unknown name is refused before any training.
    overwrite : bool, default=False
        Delete earlier results in ``output_dir`` instead of resuming;
        needed to reuse a folder with another configuration.
    progress : bool, default=False
        Show tqdm progress bars of runs and rounds.
    report : bool, default=True
        Write the report (:func:`skal_cxr.report.make_report`) at the end.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``results_dir`` (Path), ``config`` (dict), ``resolved`` (split
        sizes, classes, the round schedule), ``records`` (list of dict) and
        ``report`` (dict of written paths, or None).

    Raises
    ------
    ConfigError
        For invalid parameters.
    DataError
        When the data cannot be read.
    ResultsDirError
        When ``output_dir`` holds results of another configuration or other
        data, is in use by another simulation, or is a non-empty folder that
        skal-cxr did not create.
    SimulationInterrupted
        On SIGTERM (and when a fit was cut short by Ctrl-C); the finished
        rounds are kept and a rerun resumes.

    Warns
    -----
    RecordsWarning
        For each invalid line found in ``records/`` (set aside in
        ``<file>.jsonl.rejected`` and recomputed).
    """
    if model is None:  # a resumed simulation keeps its model (the CNN before the view)
        model = _stored_model(Path(output_dir).absolute(), overwrite)
    config = resolve_config(
        data=data,
        strategies=strategies,
        seeds=seeds,
        n_initial=n_initial,
        initial=initial,
        query_size=query_size,
        budget=budget,
        n_mc_samples=n_mc_samples,
        pool_size=pool_size,
        class_weight=class_weight,
        sampler=sampler,
        warm_start=warm_start,
        baseline=baseline,
        model=model,
        view=view,
        head=head,
        estimator=estimator,
        training=training,
        torch_threads=torch_threads,
    )
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0
    ):
        raise ConfigError(f"n_jobs must be a non-zero integer; got {n_jobs!r}.")
    _check_scheduler(scheduler, "scheduler")
    _check_scheduler(score_scheduler, "score_scheduler")
    results_dir = Path(output_dir).absolute()  # record paths are absolute, cwd-proof
    data_ = load_simulation_data(config["data"])
    _check_metric(metric, data_)
    if "cnn" in arm_models(config):
        _check_network(config, data_)
    resolved = data_.summary()
    resolved["schedule"] = round_schedule(
        resolved["n_pool"], config["n_initial"], config["query_size"], config["budget"]
    )
    claim_folder(results_dir)
    with ResultsLock(results_dir) as lock, _sigterm_interrupts():
        tasks = _tasks(config)
        record_tasks = [t for t in tasks if t[0] != "view"]
        records = [record_path(results_dir, *t) for t in record_tasks]
        views = []
        if "view" in arm_models(config):
            views = view_files(data_.X_pool, RoundConfig.from_dict(config), results_dir)
        own_files(
            results_dir,
            [CONFIG_FILE, *records, *(p.with_name(p.name + ".rejected") for p in records)]
            + views
            + (list(REPORT_FILES) if report else []),
        )
        # (listed before they are written: every file this run writes is listed)
        if _prepare_dir(results_dir, config, resolved, overwrite):
            _write_config(results_dir, config, resolved)
        repair_records(results_dir)
        schedule = resolved["schedule"]
        bars = _Progress(results_dir, record_tasks, schedule, views[1:2]) if progress else None
        try:
            _run_grid(
                tasks,
                data_,
                _scoring_on(config, score_scheduler),
                schedule,
                results_dir,
                n_jobs,
                scheduler,
                lock.token,
            )
        finally:
            if bars is not None:
                bars.close()
        _check_complete(results_dir, record_tasks, schedule)
        paths = None
        if report:
            from ..report import make_report

            paths = make_report(results_dir, metric=metric or "auroc")
    return Bunch(
        results_dir=results_dir,
        config=config,
        resolved=resolved,
        records=read_records(results_dir),
        report=paths,
    )
