"""The request and response bodies of the labeling API (pydantic models).

See ``docs/labeling_api.rst`` for the contract. Request bodies refuse
unknown fields.
"""

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LabelIn",
    "SkipIn",
    "UndoIn",
    "ReleaseIn",
    "ReleaseOut",
    "TrainingErrorOut",
    "AdjudicationIn",
    "HealthOut",
    "MeOut",
    "BatchProgress",
    "Progress",
    "NextOut",
    "LabelOut",
    "SkipOut",
    "UndoOut",
    "ReviewLabel",
    "AdjudicationNextOut",
    "AdjudicationOut",
    "CorrectionIn",
    "CorrectionOut",
    "MyLabelsOut",
    "DeferIn",
    "DeferOut",
    "RevisionOut",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelIn(_Body):
    """``POST /api/labels``: a label of an image assigned to the rater."""

    image_id: str
    label: str | None = None  # with a scoring scheme: the binned total of ``scores``
    seconds: float | None = None
    note: str | None = None
    scores: list[int] | None = None  # one per zone, with a scoring scheme


class SkipIn(_Body):
    """``POST /api/skip``: give an assigned image back."""

    image_id: str


class UndoIn(_Body):
    """``POST /api/undo``: withdraw one's own label."""

    label_id: int


class ReleaseIn(_Body):
    """``POST /api/release``: give back held images (the page sends it when it closes)."""

    image_ids: list[str] | None = Field(default=None, max_length=16)


class ReleaseOut(BaseModel):
    """``POST /api/release``: the images given back."""

    released: list[str]


class TrainingErrorOut(BaseModel):
    """Why the last round failed: its ``round``, a one-line ``cause``, when it is tried again."""

    round: int | None
    cause: str
    failures: int
    retry_in: float | None


class AdjudicationIn(_Body):
    """``POST /api/adjudications``: an adjudicator's decision on a disputed image."""

    image_id: str
    label: str
    note: str | None = None
    seconds: float | None = None  # the adjudicator's time on the film, as a label's


class HealthOut(BaseModel):
    """``GET /api/health``."""

    status: str


class MeOut(BaseModel):
    """``GET /api/me``: the rater and what the page needs to know of the project."""

    rater: str
    project: str
    classes: list[str]
    show_prediction: bool
    labels_per_image: int
    role: str
    adjudicate: bool


class MyBatch(BaseModel):
    """This rater's share of the current batch: images labeled or skipped, of ``total``."""

    done: int
    total: int


class BatchProgress(BaseModel):
    """Images of the current batch done (every label they need), of ``total``; ``mine``:
    this rater's own share (absent in ``GET /api/status``)."""

    done: int
    total: int
    mine: MyBatch | None = None


class Progress(BaseModel):
    """Images labeled and queried so far, of the pool (``total``) and ``budget``."""

    labeled: int
    queried: int
    total: int
    budget: int | None
    awaiting_adjudication: int = 0


class NextOut(BaseModel):
    """``GET /api/next``: the rater's next image (or why there is none) and progress."""

    image_id: str | None
    reason: str | None
    round: int
    batch: BatchProgress
    progress: Progress
    prediction: dict | None
    from_previous_model: bool
    ahead: list[str] = []
    waiting_for: str | None = None
    training_error: TrainingErrorOut | None = None


class LabelOut(BaseModel):
    """``POST /api/labels``: the recorded label."""

    label_id: int
    image_id: str
    label: str
    created_at: str


class SkipOut(BaseModel):
    """``POST /api/skip``."""

    image_id: str
    skipped: bool


class UndoOut(BaseModel):
    """``POST /api/undo``."""

    label_id: int
    undone: bool
    image_id: str


class ReviewLabel(BaseModel):
    """One rater's standing label of a disputed image, as the adjudicator sees it."""

    rater: str
    label: str
    note: str | None
    seconds: float | None
    created_at: str


class Deferred(BaseModel):
    """The adjudicator's latest deferral of the image shown."""

    reason: str
    created_at: str


class AdjudicationNextOut(BaseModel):
    """``GET /api/adjudication/next``: the next disputed image and the raters' labels."""

    image_id: str | None
    labels: list[ReviewLabel]
    pending: int
    deferred: Deferred | None = None


class AdjudicationOut(BaseModel):
    """``POST /api/adjudications``: the recorded decision."""

    adjudication_id: int
    image_id: str
    label: str
    created_at: str


# -- corrections, deferrals and revisions -------------------------------------------------


class CorrectionIn(_Body):
    """``POST /api/labels/correct``: replace one of one's standing labels."""

    label_id: int
    label: str | None = None
    note: str | None = None
    scores: list[int] | None = None


class CorrectionOut(BaseModel):
    """``POST /api/labels/correct``: the new label row and the value it replaced."""

    label_id: int
    supersedes: int
    image_id: str
    label: str
    previous_label: str
    created_at: str


class MyLabel(BaseModel):
    """One of the rater's standing labels."""

    label_id: int
    image_id: str
    filename: str
    label: str
    note: str | None
    scores: list[int] | None
    round: int
    corrected: bool
    created_at: str


class MyDecision(BaseModel):
    """One of the adjudicator's standing decisions."""

    adjudication_id: int
    image_id: str
    filename: str
    label: str
    note: str | None
    revised: bool
    created_at: str


class MyLabelsOut(BaseModel):
    """``GET /api/labels/mine``: the rater's labels and decisions, most recent first."""

    labels: list[MyLabel]
    decisions: list[MyDecision]


class DeferIn(_Body):
    """``POST /api/adjudication/defer``: put a dispute back, with a reason."""

    image_id: str
    reason: str


class DeferOut(BaseModel):
    """``POST /api/adjudication/defer``: the recorded deferral."""

    deferral_id: int
    image_id: str
    reason: str
    created_at: str


class RevisionOut(BaseModel):
    """``POST /api/adjudications/revise``: the new decision and the one it replaced."""

    adjudication_id: int
    supersedes: int
    image_id: str
    label: str
    previous_label: str
    created_at: str
