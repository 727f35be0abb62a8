"""Zone scores of a chest film: the Brixia and RALE schemes, and their binning into classes.

A project created with a scoring scheme (``skal-cxr label init --scoring
brixia|rale --bins ...``) is labeled zone by zone; the class of a film (what
consensus, training and the CSV's ``label`` use) is its binned total.

- **Brixia** (Borghesi and Maroldi, 2020): six zones, the upper, middle and
  lower thirds of each lung (A, B, C right; D, E, F left), each scored 0
  (no lung abnormality) to 3 (interstitial and alveolar, alveolar
  predominant); total 0-18.
- **RALE** (Warren et al., 2018): four quadrants (right upper, right lower,
  left upper, left lower), each scored for extent of consolidation 0-4
  (0, <25 %, 25-50 %, 50-75 %, >75 %) and density 1-3 (hazy, moderate,
  dense); a quadrant's score is extent x density, total 0-48.

Scores are sent and stored as one flat list of integers: a Brixia film's six
zone scores in the order A-F; a RALE film's extent and density of each
quadrant in turn (eight values). ``bins`` are the class boundaries on the
total, as ``skal-cxr simulate --bins`` takes them (``np.digitize``): class
``i`` when ``bins[i - 1] <= total < bins[i]``, so that ``(7, 12)`` makes
three classes, totals 0-6, 7-11 and 12 and over, and the exported
``score_total`` column, read back by ``skal-cxr simulate --score-column
score_total --bins 7,12``, gives the same classes. A leading 0 (each
class's lowest total, ``0,7,12``) means the same and is dropped. Everything
is checked here, in one place (:func:`check_scoring`).
"""

from dataclasses import dataclass

import numpy as np

from ..exceptions import InvalidLabel, LabelingError

__all__ = ["Zone", "Component", "ScoringScheme", "SCHEMES", "check_scoring", "scheme_of"]


@dataclass(frozen=True)
class Component:
    """One scored value of a zone: ``name`` and its range ``low`` to ``high``."""

    name: str
    low: int
    high: int


@dataclass(frozen=True)
class Zone:
    """A region of the film: ``key`` (short name), ``meaning``, and its box on the film.

    ``box`` is ``(left, top, right, bottom)`` as fractions of the image's
    width and height, in the image's orientation (the patient's right on the
    viewer's left), for the page's overlay.
    """

    key: str
    meaning: str
    box: tuple


@dataclass(frozen=True)
class ScoringScheme:
    """A zone scoring scheme and the bins of its total.

    Parameters
    ----------
    name : str
        ``"brixia"`` or ``"rale"``.
    title : str
        The scheme's name as the page and the report show it.
    zones : tuple of Zone
    components : tuple of Component
        The values scored in each zone (their product is the zone's score).
    bins : tuple of int
        The class boundaries on the total (see the module's docstring).
    """

    name: str
    title: str
    zones: tuple
    components: tuple
    bins: tuple = ()

    @property
    def n_values(self):
        """Number of values in a film's score list."""
        return len(self.zones) * len(self.components)

    @property
    def max_total(self):
        """The largest total."""
        return len(self.zones) * int(np.prod([c.high for c in self.components]))

    def check(self, scores):
        """``scores`` as a list of int, or :class:`InvalidLabel` naming what is wrong."""
        if isinstance(scores, (str, bytes)) or not hasattr(scores, "__len__"):
            raise InvalidLabel(f"scores must be a list of {self.n_values} integers.")
        if len(scores) != self.n_values:
            raise InvalidLabel(
                f"{self.title} takes {self.n_values} scores ({self._layout()}); got {len(scores)}."
            )
        out = []
        for n, value in enumerate(scores):
            zone = self.zones[n // len(self.components)]
            comp = self.components[n % len(self.components)]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise InvalidLabel(f"score {n + 1} must be an integer; got {value!r}.")
            if not comp.low <= value <= comp.high:
                raise InvalidLabel(
                    f"zone {zone.key} {comp.name} must be {comp.low}-{comp.high}; got {value}."
                )
            out.append(int(value))
        return out

    def _layout(self):
        if len(self.components) == 1:
            return "zones " + ", ".join(z.key for z in self.zones)
        names = " and ".join(c.name for c in self.components)
        return f"{names} of " + ", ".join(z.key for z in self.zones)

    def zone_scores(self, scores):
        """Each zone's score (the product of its components) of a checked score list."""
        k = len(self.components)
        return [int(np.prod(scores[i * k : (i + 1) * k])) for i in range(len(self.zones))]

    def total(self, scores):
        """The film's total score."""
        return sum(self.zone_scores(scores))

    def class_index(self, total):
        """Index of the class of ``total``: ``np.digitize(total, bins)``."""
        return int(np.digitize(total, self.bins))

    def label_of(self, scores, classes):
        """The class name of a checked score list."""
        return classes[self.class_index(self.total(scores))]

    def as_dict(self):
        """The scheme as the page (``GET /api/me``) and the settings see it."""
        return {
            "name": self.name,
            "title": self.title,
            "bins": list(self.bins),
            "max_total": self.max_total,
            "zones": [{"key": z.key, "meaning": z.meaning, "box": list(z.box)} for z in self.zones],
            "components": [{"name": c.name, "low": c.low, "high": c.high} for c in self.components],
        }


_THIRDS = ((0.0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1.0))
_HALVES = ((0.0, 0.5), (0.5, 1.0))

#: The schemes, by name (their ``bins`` are set per project).
SCHEMES = {
    "brixia": ScoringScheme(
        "brixia",
        "Brixia score",
        tuple(
            Zone(key, f"{side} lung, {level} zone", (x0, y0, x1, y1))
            for (side, (x0, x1)), keys in zip(
                [("right", (0.0, 0.5)), ("left", (0.5, 1.0))], ["ABC", "DEF"]
            )
            for key, level, (y0, y1) in zip(keys, ["upper", "middle", "lower"], _THIRDS)
        ),
        (Component("score", 0, 3),),
    ),
    "rale": ScoringScheme(
        "rale",
        "RALE score",
        tuple(
            Zone(key, f"{side} {level} quadrant", (x0, y0, x1, y1))
            for (side, (x0, x1)), keys in zip(
                [("right", (0.0, 0.5)), ("left", (0.5, 1.0))], [("RU", "RL"), ("LU", "LL")]
            )
            for key, level, (y0, y1) in zip(keys, ["upper", "lower"], _HALVES)
        ),
        (Component("extent", 0, 4), Component("density", 1, 3)),
    ),
}


def check_scoring(scoring, bins, classes):
    """The settings of a scoring scheme, checked: ``{"scheme", "bins"}`` or None.

    Parameters
    ----------
    scoring : {"brixia", "rale"} or None
        The scheme; None for whole-image labels (then ``bins`` must be None).
    bins : sequence of int, str or None
        The class boundaries on the total, as a sequence or a
        comma-separated string (``"7,12"``): one fewer than the classes,
        increasing, each above 0 and at most the scheme's largest total; a
        leading 0 is dropped (see the module's docstring).
    classes : list of str
        The project's classes, least to most severe.

    Returns
    -------
    settings : dict or None
        ``bins`` without a leading 0.

    Raises
    ------
    LabelingError
        In one line naming the option and what it takes.
    """
    if scoring is None:
        if bins is not None:
            raise LabelingError("--bins goes with --scoring (brixia or rale).")
        return None
    if scoring not in SCHEMES:
        raise LabelingError(f"--scoring must be one of {', '.join(SCHEMES)}; got {scoring!r}.")
    scheme = SCHEMES[scoring]
    k = len(classes)
    example = ",".join(str(round(i * (scheme.max_total + 1) / k)) for i in range(1, k))
    if bins is None:
        raise LabelingError(
            f"--scoring {scoring} needs --bins, the {k - 1} boundaries of the {k} classes "
            f"on the total (e.g. --bins {example})."
        )
    if isinstance(bins, str):
        try:
            bins = [int(b) for b in bins.split(",")]
        except ValueError:
            raise LabelingError(
                f"--bins must be comma-separated integers (e.g. {example}); got {bins!r}."
            ) from None
    bins = list(bins)
    if any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) for b in bins):
        raise LabelingError(f"--bins must be integers; got {bins}.")
    if len(bins) == k and bins and bins[0] == 0:
        bins = bins[1:]  # each class's lowest total: the first is 0
    if len(bins) != k - 1:
        raise LabelingError(
            f"--bins needs {k - 1} boundaries for the {k} classes ({', '.join(classes)}) "
            f"on the total; got {len(bins)}."
        )
    if any(b <= 0 for b in bins) or any(b >= c for b, c in zip(bins, bins[1:])):
        raise LabelingError(f"--bins must be increasing totals above 0; got {bins}.")
    if bins[-1] > scheme.max_total:
        raise LabelingError(
            f"--bins must be at most the {scheme.title}'s largest total, "
            f"{scheme.max_total}; got {bins[-1]}."
        )
    return {"scheme": scoring, "bins": [int(b) for b in bins]}


def scheme_of(settings):
    """The :class:`ScoringScheme` of a project's settings, or None (whole-image labels)."""
    scoring = settings.get("scoring")
    if not scoring:
        return None
    base = SCHEMES[scoring["scheme"]]
    return ScoringScheme(base.name, base.title, base.zones, base.components, tuple(scoring["bins"]))
