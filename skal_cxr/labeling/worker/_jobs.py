"""The typed, frozen records a labeling project's worker process takes and gives back.

A round's job is checked once, when it is made, and pickled to the worker
(:class:`~skal_cxr.labeling.worker._process.TrainerProcess`) as it is; the worker
runs the function of its type (:data:`~skal_cxr.labeling.worker._process.RUNNERS`).
"""

from dataclasses import dataclass, field

from ...engine import RoundConfig
from .._errors import TrainingFailed, WorkerDied

__all__ = [
    "TrainJob",
    "ReserveJob",
    "Ping",
    "WarmJob",
    "TrainResult",
    "ReserveResult",
    "TrainingFailed",
    "WorkerDied",
]


def _ints(values):
    return tuple(int(v) for v in values)


def _check_positions(name, positions, n_images):
    bad = [p for p in positions if not 0 <= p < n_images]
    if bad:
        raise ValueError(f"{name} holds positions outside the pool of {n_images}: {bad[:5]}.")


def _normalise_pool(job):
    """Coerce the fields every job that opens the pool has: path, view, image size, size."""
    set_ = object.__setattr__
    set_(job, "path", str(job.path))
    if job.view is not None:
        set_(job, "view", str(job.view))
    set_(job, "image_size", _ints(job.image_size))
    set_(job, "n_images", int(job.n_images))


@dataclass(frozen=True)
class _PoolJob:
    path: str
    round: int
    image_size: tuple
    n_images: int
    rounds: RoundConfig
    n_classes: int
    exclude: tuple
    score_scheduler: str | None = None
    view: str | None = None

    def __post_init__(self):
        _normalise_pool(self)
        set_ = object.__setattr__
        set_(self, "round", int(self.round))
        set_(self, "n_classes", int(self.n_classes))
        set_(self, "exclude", _ints(self.exclude))
        if not isinstance(self.rounds, RoundConfig):
            set_(self, "rounds", RoundConfig.from_dict(self.rounds))
        if self.round < 1:
            raise ValueError(f"a job's round is at least 1; got {self.round}.")
        if self.n_classes < 2:
            raise ValueError(f"a project has at least 2 classes; got {self.n_classes}.")
        if getattr(self.rounds, "model", "cnn") == "view" and self.view is None:
            raise ValueError(
                "a round of the view model needs the view's encoder file (the project has "
                "no view: run `skal-cxr label retrain-view`)."
            )


@dataclass(frozen=True)
class TrainJob(_PoolJob):
    """Train round ``round``'s model on the labels at hand, predict the stop set, query.

    Parameters
    ----------
    path : str
        The project folder.
    round : int
        The round to make (at least 1).
    image_size : tuple of (int, int)
        ``(height, width)`` of the project's image cache.
    n_images : int
        Images of the project.
    rounds : RoundConfig
        The project's round configuration (a mapping is read with
        :meth:`RoundConfig.from_dict`).
    n_classes : int
        Classes of the project.
    exclude : tuple of int
        Pool positions never to query: everything queued.
    score_scheduler : str or None, default=None
        A Dask scheduler address that scores the pool, or None.
    view : str or None, default=None
        The file of the project's fitted encoder (its view of the pool,
        ``view/encoder-*.pkl``) when the round fits a head on it
        (``rounds.model == "view"``); the worker loads it once. None: the CNN.
    labeled : tuple of int
        Pool positions with a consensus label, in queue order.
    codes : tuple of int
        Their consensus class codes.
    n_next : int
        Images to query (0: the last round).
    stop_set : tuple of int
        Pool positions of the stop set.
    query_seed : int
        Seeds the query.
    """

    labeled: tuple = ()
    codes: tuple = ()
    n_next: int = 0
    stop_set: tuple = ()
    query_seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        set_ = object.__setattr__
        for name in ("labeled", "codes", "stop_set"):
            set_(self, name, _ints(getattr(self, name)))
        set_(self, "n_next", int(self.n_next))
        set_(self, "query_seed", int(self.query_seed))
        if len(self.codes) != len(self.labeled):
            raise ValueError(
                f"{len(self.labeled)} labeled images but {len(self.codes)} class codes."
            )
        if not self.labeled:
            raise ValueError("a round needs at least one labeled image.")
        if any(not 0 <= c < self.n_classes for c in self.codes):
            raise ValueError(f"class codes must lie in 0 .. {self.n_classes - 1}.")
        if self.n_next < 0:
            raise ValueError(f"n_next must be at least 0; got {self.n_next}.")


@dataclass(frozen=True)
class ReserveJob(_PoolJob):
    """Query round ``round``'s reserve with its model: the next-ranked images.

    Parameters
    ----------
    path, round, image_size, n_images, rounds, n_classes, score_scheduler, view
        As for :class:`TrainJob`.
    exclude : tuple of int
        Pool positions queued or just queried.
    n_reserve : int
        Images to query.
    reserve_seed : int
        Seeds the query.
    """

    n_reserve: int = 0
    reserve_seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "n_reserve", int(self.n_reserve))
        object.__setattr__(self, "reserve_seed", int(self.reserve_seed))
        if self.n_reserve < 1:
            raise ValueError(f"n_reserve must be at least 1; got {self.n_reserve}.")

    @classmethod
    def after(cls, job, exclude, n_reserve, reserve_seed):
        """The reserve job of the round ``job`` (a :class:`TrainJob`) made.

        Parameters
        ----------
        job : TrainJob
            The round's training job.
        exclude : sequence of int
            Positions queued or just queried.
        n_reserve : int
            Images to query.
        reserve_seed : int
            Seeds the query.

        Returns
        -------
        job : ReserveJob
            Checked.
        """
        return cls(
            path=job.path,
            round=job.round,
            image_size=job.image_size,
            n_images=job.n_images,
            rounds=job.rounds,
            n_classes=job.n_classes,
            exclude=exclude,
            score_scheduler=job.score_scheduler,
            view=job.view,
            n_reserve=n_reserve,
            reserve_seed=reserve_seed,
        )


@dataclass(frozen=True)
class WarmJob:
    """Open the pool and load the project's view, before the first batch is done.

    The worker then hands the view's stored features of the pool to its
    feature memory (:func:`~skal_cxr.labeling.worker._view.load_view`), so
    the first round waits for its fit and query only.

    Parameters
    ----------
    path : str
        The project folder.
    image_size : tuple of (int, int)
        ``(height, width)`` of the project's image cache.
    n_images : int
        Images of the project.
    view : str
        The file of the project's fitted encoder (as :attr:`TrainJob.view`).
    """

    path: str
    image_size: tuple
    n_images: int
    view: str

    def __post_init__(self):
        _normalise_pool(self)
        if self.view is None:
            raise ValueError("a warm-up job needs the view's encoder file; got None.")


@dataclass(frozen=True)
class Ping:
    """Ask the worker its pid, the modules it has imported and the view it holds (it is ready).

    The answer: ``{"pid", "modules", "views"}`` (``views``: see
    :func:`~skal_cxr.labeling.worker._view.loaded_views`).
    """


@dataclass(frozen=True)
class TrainResult:
    """The round a :class:`TrainJob` made.

    Parameters
    ----------
    round : int
        The round.
    queried : tuple of int
        Pool positions of the next batch, most informative first.
    scores : tuple of float or None
        The strategy's scores of the queried images, when it gives them.
    stop_predictions : tuple of int
        Class codes predicted for the stop set.
    fit_time : float
        Seconds.
    query_time : float or None
        Seconds (None when nothing was queried).
    n_epochs : int
        Epochs of the fit.
    n_labeled : int
        Images the model was fitted on.
    pid : int
        The process that trained.
    """

    round: int
    queried: tuple
    scores: tuple | None
    stop_predictions: tuple
    fit_time: float
    query_time: float | None
    n_epochs: int
    n_labeled: int
    pid: int


@dataclass(frozen=True)
class ReserveResult:
    """The reserve a :class:`ReserveJob` queried.

    Parameters
    ----------
    round : int
        The round.
    reserve : tuple of int
        Pool positions, most informative first.
    query_time : float
        Seconds.
    pid : int
        The process that queried.
    """

    round: int
    reserve: tuple
    query_time: float
    pid: int = field(default=0)
