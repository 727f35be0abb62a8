"""Creating and opening a labeling project folder."""

import os
import warnings
from pathlib import Path

import numpy as np

from .._budget import budget_count
from .._random import derived_rng
from ..engine import RoundConfig
from ..exceptions import LabelingError
from ._init_recovery import (
    _Draft,
    _only_a_cache,
    _remove_database,
    _write_database,
)
from ._project import LabelingProject
from ._settings import CACHE_DIR, CHECKPOINT_DIR, PREVIEW_DIR, ROUND_KEYS
from .store._db import DB_FILE
from .store._image_files import HEADER_TAGS, film_context, find_images
from .store._pool import build_pool_cache

__all__ = ["init_project", "open_project"]


_QUERY_SIZE = 20  # the default of init_project's query_size

#: Unlabeled images a round scores by default (``pool_size="auto"``): a random
#: subset of this many once the pool is larger, so that a round's scoring time
#: does not grow with the pool (see docs/benchmarks.rst, scoring a subset).
AUTO_POOL_SIZE = 2000


def _resolve_pool_size(pool_size, n_images, query_size, reserve_size):
    """The ``pool_size`` stored in a new project: ``"auto"`` resolved, the reserve checked."""
    if isinstance(pool_size, str):  # "auto" (checked by init_project)
        size = max(AUTO_POOL_SIZE, query_size, reserve_size)
        return None if n_images <= size else size
    if pool_size is not None and reserve_size > pool_size:
        raise LabelingError(
            f"pool_size ({pool_size}) is smaller than reserve_size "
            f"({reserve_size}): a reserve query could not find enough images."
        )
    return pool_size


def _renamed_query_size(query_size, batch_size):
    """``query_size``, or the deprecated ``batch_size`` given instead (with a warning)."""
    if isinstance(batch_size, str) and batch_size == "deprecated":
        return query_size
    if query_size != _QUERY_SIZE and query_size != batch_size:
        raise TypeError("Pass query_size only; batch_size is its deprecated alias.")
    warnings.warn(
        "init_project's batch_size was renamed query_size in 0.2 (batch_size means images "
        "per optimizer step elsewhere) and will be removed in 0.3.",
        FutureWarning,
        stacklevel=3,
    )
    return batch_size


def init_project(
    path,
    image_dir,
    classes,
    *,
    csv=None,
    image_column="filename",
    group_column=None,
    date_column=None,
    labels_per_image=1,
    model="view",
    strategy="auto",
    query_size=_QUERY_SIZE,
    initial_size=None,
    budget=None,
    image_size=64,
    class_weight=None,
    consensus="majority",
    adjudicate_spread=1,
    header_tags=None,
    cold_start="auto",
    reserve_size=None,
    lease_seconds=3600,
    show_prediction=False,
    stop_set_size=1000,
    stop_window=3,
    stop_threshold=0.99,
    n_mc_samples=20,
    pool_size="auto",
    estimator=None,
    training=None,
    view=None,
    head=None,
    torch_threads=1,
    random_state=0,
    n_jobs=None,
    progress=False,
    batch_size="deprecated",
    dicomweb=None,
    prepare=None,
    scoring=None,
    bins=None,
):
    """Create a labeling project in the new folder ``path``.

    Registers every image (path relative to ``image_dir`` and SHA-256 of its
    bytes), decodes them once into the project's on-disk image cache
    (``cache/images-HxW/``, see :func:`~skal_cxr.datasets.build_image_cache`),
    trains the project's view of the pool on that cache (``model="view"``,
    :mod:`skal_cxr.labeling.worker._view`), draws the fixed stop set and queues the
    first batch (the cold start: no model exists yet). Training and queries
    read the images from that cache (a memory map), so memory does not grow
    with the pool. An interrupted ``init_project`` (even killed) resumes the
    cache where it stopped, and loads a view it finished, when called again
    with the same folder.

    Parameters
    ----------
    path : path-like
        The project folder; it must not exist or be empty.
    image_dir : path-like
        Folder of PNG / JPEG / DICOM images, which stay where they are.
    classes : list of str
        Class names, ordered from least to most severe (the consensus rules
        use this order).
    csv : path-like, default=None
        CSV listing the images (column ``image_column``, paths relative to
        ``image_dir``) and optionally a patient column ``group_column``;
        ``None`` takes every image file under ``image_dir``, sorted by path.
    image_column : str, default="filename"
        The column of ``csv`` holding the image paths.
    group_column : str, default=None
        The column of ``csv`` naming each image's patient, if any. Without
        it, DICOM files give their ``PatientID``.
    date_column : str, default=None
        The column of ``csv`` with each image's study date (any sortable
        text, e.g. ``2024-03-01``); DICOM files give their ``StudyDate``.
        The page shows a patient's films side by side, oldest to newest.
    labels_per_image : int, default=1
        Labels each queried image gets, from different raters.
    model : {"view", "cnn"}, default="view"
        ``"view"``: an encoder is trained once on the whole pool here, at
        ``init`` (its view of the pool, stored in ``view/``; a few minutes
        for 10,000 images of 64 px, see docs/labeling.rst), and each round
        fits only a small MC Dropout head on its features
        (:class:`~skal_cxr.FrozenViewClassifier`): a round takes about a
        second. ``"cnn"``: each round trains the whole
        :class:`~skal_cxr.MCDropoutCNN` (projects made before the view).
    strategy : str, default="auto"
        A key of :data:`skal_cxr.strategies.STRATEGIES`; ``"auto"``:
        ``"typicality_until_5_then_max_entropy"`` with the view,
        ``"mean_std"`` with the CNN.
    query_size : int, default=20
        Images queried per round (``query_size`` of
        :func:`~skal_cxr.simulation.simulate`).
    initial_size : int, default=None
        Size of the cold-start batch (``query_size``).
    budget : int or float, default=None
        Images to label in all: a count, or a fraction of the pool in
        (0, 1] (``0.2``: a fifth of it), as
        :func:`~skal_cxr.simulation.simulate` takes it (``None``: the whole
        pool).
    image_size : int, default=64
        Training resolution (images are resized, see
        :func:`~skal_cxr.datasets.load_image_folder`); raters see the
        original files.
    class_weight : {None, "balanced"}, default=None
    consensus : {"majority", "mean", "max", "adjudicate"}, default="majority"
        How several raters' labels become one (see
        :func:`~skal_cxr.datasets.load_image_folder`). ``"adjudicate"``: an
        image whose labels disagree (see ``adjudicate_spread``) waits for a
        rater with the adjudicator role to decide, and does not train the
        model until then; other images take the majority.
    adjudicate_spread : int, default=1
        With ``consensus="adjudicate"``: the spread of an image's labels, in
        ordinal steps of ``classes``, that calls for adjudication (1: any
        disagreement; 2: e.g. normal against severe, not normal against
        moderate).
    header_tags : list of str, default=None
        DICOM keywords the page's film panel shows (``None``: view position,
        patient age and sex, study date, modality).
    cold_start : {"auto", "random", "k_center", "typicality", "probcover"}, default="auto"
        The first batch, chosen without labels: a uniform random draw,
        greedy k-center on the embeddings of the untrained network, or the
        typical images (TypiClust) / the best-covering images (ProbCover)
        in the project's view of the pool (with the CNN: 50 principal
        components of the pool's pixels, computed at ``init`` and cached
        beside the image cache). ``"auto"``: typicality with the view,
        random with the CNN. Measured on
        PneumoniaMNIST (docs/benchmarks.rst, "Labeling cold start"):
        typicality's first 20 images trained a model as good as random's
        on average and steadier across seeds; k-center's were far worse
        (it picks outliers); ProbCover's held no normal film in any seed,
        so it is not a cold start for pixel views.
    reserve_size : int, default=None
        Next-ranked images kept per round for raters who run out before the
        next batch is ready (``query_size``); 0 makes them wait instead.
    lease_seconds : float or None, default=3600
        An image a rater has held open this long without labeling it goes to
        another rater who asks for work (the first one's label is then
        refused); ``None`` keeps it with the rater forever.
    show_prediction : bool, default=False
        Show raters the model's prediction (it biases them: off by default).
    stop_set_size : int, default=1000
        Images of the fixed stop set of the stopping signal.
    stop_window, stop_threshold : int, float, default=3, 0.99
        Stop when the mean Cohen's kappa between successive models on the
        stop set, over the last ``stop_window`` pairs, reaches ``stop_threshold``.
    pool_size : int, None or "auto", default="auto"
        Unlabeled images each round scores: a random subset of this many
        (drawn with the round's seed), or all of them (``None``, as
        :func:`skal_cxr.simulation.simulate` does by default). ``"auto"``:
        all of them when the pool has at most 2,000 images, else a random
        2,000 (at least ``query_size`` and ``reserve_size``), so that the
        time from the last label of a batch to the next batch does not grow
        with the pool. Give a simulation the same ``pool_size`` to acquire
        the same images.
    n_mc_samples, estimator, training, torch_threads
        As in :func:`skal_cxr.simulation.simulate` (``estimator`` and
        ``training``: the CNN's).
    view, head : dict, default=None
        Settings of the view's encoder and of its head (``model="view"``),
        merged into :data:`skal_cxr.engine.ROUND_DEFAULTS`' ``"view"`` and
        ``"head"``.
    random_state : int, default=0
        Seeds the cold start, the stop set, the network and the queries
        exactly like a simulation seed.
    n_jobs : int, default=None
        Threads decoding the images into the cache (``None``: 1,
        ``-1``: every core).
    progress : bool, default=False
        Show progress bars of the cache build and of the view's training.
    batch_size : int
        Deprecated alias of ``query_size`` (``batch_size`` is the images per
        optimizer step of the estimator); removed in 0.3.
    dicomweb : dict, default=None
        The DICOMweb source of a project over a PACS (URL, query, auth
        scheme, hashed patient ids), recorded in its settings; set by
        :func:`init_dicomweb_project`, which makes ``image_dir`` the
        project's own ``dicom/`` store.
    prepare : callable, default=None
        Called without arguments once every option is checked, before the
        images are listed: :func:`init_dicomweb_project` retrieves the PACS's
        images into ``image_dir`` there, so that a wrong option fails before
        a long retrieval.
    scoring : {"brixia", "rale"}, default=None
        Label each film with zone scores (Brixia: six zones 0-3; RALE: four
        quadrants, extent 0-4 x density 1-3); its class is the binned total
        (see :mod:`skal_cxr.labeling._scoring`). None: whole-image labels.
    bins : sequence of int or str, default=None
        With ``scoring``: the class boundaries on the total, as
        ``skal-cxr simulate --bins`` takes them (``"7,12"``: totals 0-6,
        7-11 and 12 and over; a leading 0, ``"0,7,12"``, means the same).

    Returns
    -------
    project : LabelingProject

    Raises
    ------
    LabelingError
        In one line, for the first wrong argument: the arguments are
        grouped into frozen settings checked with scikit-learn's
        constraints (:mod:`skal_cxr.labeling._init_settings`) before any
        image is read.
    """
    query_size = _renamed_query_size(query_size, batch_size)
    keywords = {k: v for k, v in locals().items() if k not in ("path", "image_dir")}
    path = Path(path)
    if path.exists() and not _only_a_cache(path):
        raise LabelingError(f"{path} exists and is not empty; choose a new project folder.")
    leftover = path / DB_FILE
    if leftover.exists():  # an unfinished database of an earlier version's init
        _remove_database(leftover)
    # scikit-learn's constraints, read when a project is made (not to serve one)
    from ._init_settings import InitSettings

    settings = InitSettings.from_keywords(**keywords)  # every check, before any image is read
    source, rounds = settings.images, settings.rounds
    if prepare is not None:
        prepare()
    try:
        rows = find_images(image_dir, source.csv, source.image_column, source.group_column)
    except ValueError as exc:
        raise LabelingError(str(exc)) from exc
    for rel, _ in rows:
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            raise LabelingError(
                f"the image file name {os.fsencode(rel)!r} in {image_dir} is not UTF-8 text; "
                "rename it (the project stores names as text)."
            ) from None
    image_dir = Path(image_dir).resolve()
    n = len(rows)
    engine = RoundConfig.from_dict(
        rounds.engine.to_dict(),
        pool_size=_resolve_pool_size(rounds.pool_size, n, rounds.query_size, rounds.reserve_size),
    )
    if rounds.initial_size > n:
        raise LabelingError(
            f"initial_size ({rounds.initial_size}) is larger than the pool ({n} images)."
        )
    config = _project_config(path, image_dir, settings, engine, n)
    if dicomweb is not None:
        config["dicomweb"] = dict(dicomweb)
    if config["budget"] is not None and config["budget"] < rounds.initial_size:
        raise LabelingError(
            f"budget ({config['budget']}) is smaller than the initial batch "
            f"({rounds.initial_size})."
        )
    # the round engine (torch) only now: opening a project (``serve``) does not import it
    from .worker._rounds import cold_start as first_batch
    from .worker._view import train_view

    image_size, csv, image_column = source.image_size, source.csv, source.image_column
    # one pass over the files: the cache records each one's SHA-256
    cache = build_pool_cache(
        path,
        image_size,
        [image_dir / rel for rel, _ in rows],
        n_jobs=source.n_jobs,
        progress=progress,
    )
    hashes = [entry["sha256"] for entry in cache.index]
    if rounds.model == "view":  # before the database: a killed init trains or loads it again
        train_view(path, image_size, n, engine, progress=progress)
    context = film_context(image_dir, rows, csv, image_column, source.date_column)
    for sub in (PREVIEW_DIR, CHECKPOINT_DIR, CACHE_DIR):
        (path / sub).mkdir(exist_ok=True)
    stop_set = (
        np.sort(
            derived_rng(rounds.random_state, 1).choice(n, config["stop_set_size"], replace=False)
        )
        + 1
    )
    table = [
        (str(i + 1), rel, h, ctx[0])
        for i, ((rel, _), h, ctx) in enumerate(zip(rows, hashes, context))
    ]
    batch, reserve, strategy = first_batch(_Draft(path, config, table))  # round 0, no model
    images = [
        (i + 1, rel, h, *ctx) for i, ((rel, _), h, ctx) in enumerate(zip(rows, hashes, context))
    ]
    _write_database(path, images, config, stop_set, batch, reserve, strategy)
    return LabelingProject(path)


def _project_config(path, image_dir, settings, engine, n):
    """The settings stored in the database of a new project of ``n`` images."""
    images, labels, rounds = settings.images, settings.labels, settings.rounds
    raters, stop = settings.raters, settings.stop
    config = {
        "name": path.resolve().name,
        "image_dir": str(image_dir),
        "csv": None if images.csv is None else str(Path(images.csv).resolve()),
        "classes": labels.classes,
        "labels_per_image": raters.labels_per_image,
        "strategy": rounds.strategy,
        "query_size": rounds.query_size,
        "initial_size": rounds.initial_size,
        "budget": budget_count(rounds.budget, n),
        "image_size": images.image_size,
        "consensus": raters.consensus,
        "adjudicate_spread": raters.adjudicate_spread,
        "cold_start": rounds.cold_start,
        "header_tags": list(HEADER_TAGS if images.header_tags is None else images.header_tags),
        "reserve_size": rounds.reserve_size,
        "show_prediction": raters.show_prediction,
        "lease_seconds": raters.lease_seconds,
        "stop_set_size": min(stop.stop_set_size, n),
        "stop_window": stop.stop_window,
        "stop_threshold": stop.stop_threshold,
        "random_state": rounds.random_state,
        "engine": {k: v for k, v in engine.to_dict().items() if k in ROUND_KEYS},
    }
    if labels.scheme is not None:
        config["scoring"] = labels.scheme
    return config


def open_project(path):
    """Open an existing labeling project (see :class:`LabelingProject`).

    Parameters
    ----------
    path : path-like
        The project folder made by :func:`init_project`.

    Returns
    -------
    project : LabelingProject
        The project.
    """
    return LabelingProject(path)
