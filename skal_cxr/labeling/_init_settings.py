"""The arguments of :func:`~skal_cxr.labeling.init_project`, grouped and checked in one place.

``init_project`` (and so ``skal-cxr label init``, which calls it) builds an
:class:`InitSettings` from its keywords: five frozen groups (the images, the
labels, the rounds, the raters and the stopping signal), each checked on
creation with scikit-learn's parameter constraints
(:func:`skal_cxr._validation.check_values`, as estimators declare
``_parameter_constraints``), so that a wrong value is refused in one line
before any image is read. A budget is checked by
:func:`skal_cxr._budget.check_budget`, as a simulation's is.
"""

import numbers
import os
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from .._budget import check_budget
from .._validation import Integers, Interval, Options, StrOptions, check_values
from ..datasets._image_io import check_image_size
from ..datasets._sources import LABELING_CONSENSUS
from ..engine import RoundConfig
from ..exceptions import ConfigError, LabelingError
from ._scoring import check_scoring
from ._settings import COLD_STARTS

__all__ = [
    "MODELS",
    "ImageSettings",
    "LabelSettings",
    "RoundSettings",
    "RaterSettings",
    "StopSettings",
    "InitSettings",
]

#: The models of a project: a head on the pool's view, or the whole CNN per round.
MODELS = ("view", "cnn")

_CALLER = "init_project"


class _Positive(Interval):
    """A real number > 0 (not a bool)."""

    def __init__(self, right=None, closed="neither"):
        super().__init__(numbers.Real, 0, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


@dataclass(frozen=True)
class _Checked:
    """A frozen group of settings checked against ``_constraints`` when made."""

    _constraints: ClassVar[dict] = {}

    def __post_init__(self):
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        for name, value in check_values(
            values, self._constraints, _CALLER, error=LabelingError
        ).items():
            object.__setattr__(self, name, value)
        self._resolve()

    def _resolve(self):
        """Fill the values that depend on others (after the constraints)."""

    def _set(self, **values):
        for name, value in values.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class ImageSettings(_Checked):
    """Where the images are listed and how they are decoded.

    Every field is required: the defaults are ``init_project``'s.

    Parameters
    ----------
    csv, image_column, group_column, date_column, header_tags, image_size, n_jobs
        As :func:`~skal_cxr.labeling.init_project` takes them; ``image_size``
        becomes ``[height, width]``.
    """

    csv: Any
    image_column: str
    group_column: str | None
    date_column: str | None
    header_tags: Any
    image_size: Any
    n_jobs: int | None

    _constraints: ClassVar[dict] = {
        "csv": [str, os.PathLike, None],
        "image_column": [str],
        "group_column": [str, None],
        "date_column": [str, None],
        "header_tags": ["array-like", None],
        "n_jobs": [Integers(1), Options(numbers.Integral, {-1}), None],
    }

    def _resolve(self):
        try:
            self._set(image_size=list(check_image_size(self.image_size)))
        except ValueError as exc:
            raise LabelingError(str(exc)) from exc


@dataclass(frozen=True)
class LabelSettings(_Checked):
    """The classes and, with ``scoring``, the zone-scoring scheme that bins into them.

    Parameters
    ----------
    classes : list of str
        At least two distinct names, least to most severe.
    scoring : {"brixia", "rale"} or None
    bins : sequence of int, str or None
        As :func:`~skal_cxr.labeling._scoring.check_scoring` takes them.

    Attributes
    ----------
    scheme : dict or None
        The checked scoring settings stored in the project.
    """

    classes: Any
    scoring: str | None
    bins: Any
    scheme: Any = field(init=False, default=None)

    _constraints: ClassVar[dict] = {"classes": ["array-like"]}

    def _resolve(self):
        classes = [str(c).strip() for c in self.classes]
        if len(classes) < 2 or len(set(classes)) != len(classes) or not all(classes):
            raise LabelingError(f"classes must be at least two distinct names; got {classes}.")
        self._set(classes=classes, scheme=check_scoring(self.scoring, self.bins, classes))


@dataclass(frozen=True)
class RoundSettings(_Checked):
    """The rounds: model, strategy, batch sizes, budget and the round engine's settings.

    ``"auto"`` strategy and cold start are resolved for the model, and
    ``initial_size`` / ``reserve_size`` default to ``query_size``.

    Parameters
    ----------
    model, strategy, query_size, initial_size, budget, cold_start, reserve_size, pool_size,
    random_state, class_weight, n_mc_samples, estimator, training, view, head, torch_threads
        As :func:`~skal_cxr.labeling.init_project` takes them.

    Attributes
    ----------
    engine : RoundConfig
        The round engine's settings, checked (``pool_size="auto"`` as ``None``
        until the pool is listed).
    """

    model: str
    strategy: str
    query_size: int
    initial_size: int | None
    budget: Any
    cold_start: str
    reserve_size: int | None
    pool_size: Any
    random_state: int
    class_weight: Any
    n_mc_samples: Any
    estimator: Any
    training: Any
    view: Any
    head: Any
    torch_threads: Any
    engine: Any = field(init=False, default=None)

    _constraints: ClassVar[dict] = {
        "model": [StrOptions(set(MODELS))],
        "strategy": [str],
        "query_size": [Integers(1)],
        "initial_size": [Integers(1), None],
        "cold_start": [StrOptions({"auto", *COLD_STARTS})],
        "reserve_size": [Integers(0), None],
        "pool_size": [Integers(1), StrOptions({"auto"}), None],
        "random_state": [Integers(0)],
    }

    def _resolve(self):
        view = self.model == "view"
        budget = check_budget(
            self.budget, _CALLER, error=LabelingError, allow_none=True
        )  # 200.0 is the count 200
        self._set(
            budget=budget,
            cold_start=("typicality" if view else "random")
            if self.cold_start == "auto"
            else self.cold_start,
            strategy=("typicality_until_5_then_max_entropy" if view else "mean_std")
            if self.strategy == "auto"
            else self.strategy,
            initial_size=self.query_size if self.initial_size is None else self.initial_size,
            reserve_size=self.query_size if self.reserve_size is None else self.reserve_size,
        )
        try:
            engine = RoundConfig.from_params(
                strategy=self.strategy,
                seed=self.random_state,
                model=self.model,
                query_size=self.query_size,
                n_mc_samples=self.n_mc_samples,
                pool_size=None if self.pool_size == "auto" else self.pool_size,
                class_weight=self.class_weight,
                estimator=self.estimator,
                training=self.training,
                view=self.view,
                head=self.head,
                torch_threads=self.torch_threads,
            )
        except ConfigError as exc:
            raise LabelingError(str(exc)) from exc
        self._set(engine=engine)


@dataclass(frozen=True)
class RaterSettings(_Checked):
    """How raters work: labels per image, consensus, leases, what they are shown.

    Parameters
    ----------
    labels_per_image, consensus, adjudicate_spread, lease_seconds, show_prediction
        As :func:`~skal_cxr.labeling.init_project` takes them.
    """

    labels_per_image: int
    consensus: str
    adjudicate_spread: int
    lease_seconds: Any
    show_prediction: bool

    _constraints: ClassVar[dict] = {
        "labels_per_image": [Integers(1)],
        "consensus": [StrOptions(set(LABELING_CONSENSUS))],
        "adjudicate_spread": [Integers(1)],
        "lease_seconds": [_Positive(), None],
        "show_prediction": ["boolean"],
    }

    def _resolve(self):
        lease = None if self.lease_seconds is None else float(self.lease_seconds)
        self._set(lease_seconds=lease, show_prediction=bool(self.show_prediction))


@dataclass(frozen=True)
class StopSettings(_Checked):
    """The stopping signal: its stop set and Cohen's kappa window and threshold.

    Parameters
    ----------
    stop_set_size, stop_window, stop_threshold
        As :func:`~skal_cxr.labeling.init_project` takes them.
    """

    stop_set_size: int
    stop_window: int
    stop_threshold: float

    _constraints: ClassVar[dict] = {
        "stop_set_size": [Integers(1)],
        "stop_window": [Integers(1)],
        "stop_threshold": [_Positive(1, closed="right")],
    }

    def _resolve(self):
        self._set(stop_threshold=float(self.stop_threshold))


_GROUPS = {
    "images": ImageSettings,
    "labels": LabelSettings,
    "rounds": RoundSettings,
    "raters": RaterSettings,
    "stop": StopSettings,
}


@dataclass(frozen=True)
class InitSettings:
    """Every setting of a new project, checked: one group per concern.

    Attributes
    ----------
    images : ImageSettings
    labels : LabelSettings
    rounds : RoundSettings
    raters : RaterSettings
    stop : StopSettings
    """

    images: ImageSettings
    labels: LabelSettings
    rounds: RoundSettings
    raters: RaterSettings
    stop: StopSettings

    @classmethod
    def from_keywords(cls, **keywords):
        """The settings of ``init_project``'s keywords, each group checked.

        Parameters
        ----------
        **keywords
            ``init_project``'s keyword arguments (those of no group are ignored).

        Returns
        -------
        settings : InitSettings

        Raises
        ------
        LabelingError
            In one line, naming the first wrong keyword.
        """
        groups = {}
        for name, group in _GROUPS.items():
            names = {f.name for f in fields(group) if f.init}
            groups[name] = group(**{k: v for k, v in keywords.items() if k in names})
        return cls(**groups)
