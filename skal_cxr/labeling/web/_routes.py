"""The routes of the labeling app: the JSON API under ``/api/`` and the two pages.

Every API route but ``/api/health`` needs a rater's bearer token
(:data:`~skal_cxr.labeling.web._deps.RaterDep`); an unknown ``/api/`` path is
answered 404 only to a rater.
"""

import json
import time
from importlib import resources
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ._deps import ProjectDep, RaterDep
from ._schemas import (
    AdjudicationIn,
    AdjudicationNextOut,
    AdjudicationOut,
    CorrectionIn,
    CorrectionOut,
    DeferIn,
    DeferOut,
    HealthOut,
    LabelIn,
    LabelOut,
    MeOut,
    MyLabelsOut,
    NextOut,
    ReleaseIn,
    ReleaseOut,
    RevisionOut,
    SkipIn,
    SkipOut,
    UndoIn,
    UndoOut,
)

__all__ = ["api", "pages", "static_dir"]

api = APIRouter(prefix="/api")
pages = APIRouter(include_in_schema=False)

_PAGE_MISSING = (
    "<!doctype html><meta charset=utf-8><title>skal-cxr label</title>"
    "<p>The labeling page is not installed; the JSON API is under /api/.</p>"
)


def static_dir():
    """The folder of the page's files, or None when they are not installed."""
    path = resources.files("skal_cxr.labeling.web") / "static"
    return path if path.is_dir() else None


@api.get("/health", response_model=HealthOut)
def health():
    return {"status": "UP"}


@api.get("/me", response_model=MeOut)
def me(project: ProjectDep, name: RaterDep):
    cfg = project.config
    role = project.rater_role(name)
    return {
        "rater": name,
        "project": project.name,
        "classes": project.classes,
        "show_prediction": cfg["show_prediction"],
        "labels_per_image": cfg["labels_per_image"],
        "role": role,
        "adjudicate": cfg["consensus"] == "adjudicate",
    }


@api.get("/next", response_model=NextOut)
def next_image(project: ProjectDep, name: RaterDep, ahead: Annotated[int, Query(ge=0, le=2)] = 0):
    nxt = project.next_image(name)
    upcoming = []
    if ahead and nxt["image_id"] is not None:  # for prefetching: hold the next ones too
        upcoming = project.hold_ahead(name, ahead, nxt["image_id"])
    if nxt["image_id"] is not None:  # their display-size previews rendered ahead
        project.warm_previews([nxt["image_id"], *upcoming])
    prog = project.progress()
    prog["batch"]["mine"], waiting = project.rater_progress(name, nxt["reason"] == "waiting")
    failure = project.training_status()["error"] if nxt["reason"] == "waiting" else None
    prediction = None
    if project.config["show_prediction"] and nxt["image_id"] is not None:
        prediction = project.prediction(nxt["image_id"])
    return {
        "image_id": nxt["image_id"],
        "reason": nxt["reason"],
        "round": prog["round"],
        "batch": prog["batch"],
        "progress": prog["progress"],
        "prediction": prediction,
        "from_previous_model": nxt["from_previous_model"],
        "ahead": upcoming,
        "waiting_for": waiting,
        "training_error": failure,  # raters are told why the next batch does not come
    }


@api.get("/images/{image_id}")
def image_png(image_id: str, project: ProjectDep, name: RaterDep):
    project.check_access(name, image_id)
    return Response(
        project.image_png(image_id), media_type="image/png", headers={"Cache-Control": "no-store"}
    )


@api.get("/images/{image_id}/pixels")
def image_pixels(
    image_id: str,
    project: ProjectDep,
    name: RaterDep,
    format: Annotated[Literal["raw", "png"], Query()] = "raw",
    max_size: Annotated[int | None, Query(ge=64, le=65535)] = None,
):
    started = time.perf_counter()  # sent back as Server-Timing (the benchmark reads it)
    project.check_access(name, image_id)
    source = project.image_source(image_id) if format == "png" else None
    if source is not None:  # an 8-bit PNG or JPEG the browser decodes: the file itself
        data, media, size = source
        return Response(
            data,
            media_type=media,
            headers={
                "X-Image-Width": str(size["width"]),
                "X-Image-Height": str(size["height"]),
                "X-Full-Width": str(size["width"]),
                "X-Full-Height": str(size["height"]),
                "X-Bits-Stored": "8",
                "X-Window-Presets": "[]",
            },
        )
    if format == "png":
        data, info = project.image_pixels_png(image_id, max_size)
        return Response(
            data,
            media_type="image/png",
            headers={
                "Server-Timing": f"app;dur={1000 * (time.perf_counter() - started):.1f}",
                "X-Image-Width": str(info["width"]),
                "X-Image-Height": str(info["height"]),
                "X-Full-Width": str(info["full_width"]),
                "X-Full-Height": str(info["full_height"]),
                "X-Window-Center": repr(info["center"]),
                "X-Window-Width": repr(info["window"]),
                "X-Window-Presets": json.dumps(info.get("presets", [])),
            },
        )
    pixels, center, width, windows = project.image_pixels(image_id, presets=True)
    return Response(
        pixels.astype("<u2", copy=False).tobytes(),
        media_type="application/octet-stream",
        headers={
            "X-Image-Width": str(pixels.shape[1]),
            "X-Image-Height": str(pixels.shape[0]),
            "X-Window-Center": repr(center),
            "X-Window-Width": repr(width),
            "X-Window-Presets": json.dumps(windows),
        },
    )


@api.get("/images/{image_id}/related")
def image_related(image_id: str, project: ProjectDep, name: RaterDep):
    project.check_access(name, image_id)
    return {"films": project.related_images(image_id)}


@api.get("/images/{image_id}/header")
def image_header(image_id: str, project: ProjectDep, name: RaterDep):
    project.check_access(name, image_id)
    tags = project.config.get("header_tags") or []
    return {"tags": project.image_header(image_id, tags)}


@api.get("/adjudication/next", response_model=AdjudicationNextOut)
def adjudication_next(project: ProjectDep, name: RaterDep):
    return project.next_adjudication(name)


@api.post("/adjudications", status_code=201, response_model=AdjudicationOut)
def post_adjudication(body: AdjudicationIn, project: ProjectDep, name: RaterDep):
    return project.adjudicate(name, body.image_id, body.label, body.note, body.seconds)


@api.post("/labels", status_code=201, response_model=LabelOut)
def post_label(body: LabelIn, project: ProjectDep, name: RaterDep):
    project.require_image_file(body.image_id)  # 410: no label of a film that is gone
    return project.submit_label(
        name, body.image_id, body.label, body.seconds, body.note, scores=body.scores
    )


@api.post("/skip", response_model=SkipOut)
def post_skip(body: SkipIn, project: ProjectDep, name: RaterDep):
    return project.skip(name, body.image_id)


@api.post("/release", response_model=ReleaseOut)
def post_release(body: ReleaseIn, project: ProjectDep, name: RaterDep):
    return {"released": project.release(name, body.image_ids)}


@api.post("/undo", response_model=UndoOut)
def post_undo(body: UndoIn, project: ProjectDep, name: RaterDep):
    return project.undo(name, body.label_id)


# -- corrections, deferrals and revisions -------------------------------------------------


@api.get("/scoring")
def scoring(project: ProjectDep, name: RaterDep):
    """The project's zone scoring scheme (zones, their boxes, bins), or null."""
    return None if project.scoring is None else project.scoring.as_dict()


@api.get("/labels/mine", response_model=MyLabelsOut)
def my_labels(project: ProjectDep, name: RaterDep):
    return {
        "labels": project.rater_labels(name),
        "decisions": project.rater_decisions(name),
    }


@api.post("/labels/correct", response_model=CorrectionOut)
def post_correction(body: CorrectionIn, project: ProjectDep, name: RaterDep):
    return project.correct_label(name, body.label_id, body.label, body.note, body.scores)


@api.post("/adjudication/defer", response_model=DeferOut)
def post_deferral(body: DeferIn, project: ProjectDep, name: RaterDep):
    return project.defer_adjudication(name, body.image_id, body.reason)


@api.post("/adjudications/revise", response_model=RevisionOut)
def post_revision(body: AdjudicationIn, project: ProjectDep, name: RaterDep):
    return project.revise_adjudication(name, body.image_id, body.label, body.note, body.seconds)


# ------------------------------------------------------------------------------------------


@api.get("/status")
def status(project: ProjectDep, name: RaterDep):
    return project.status_for(name)


@api.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def api_unknown(rest: str, name: RaterDep):
    return JSONResponse({"detail": "not found."}, status_code=404)


def _page(filename):
    static = static_dir()
    if static is not None and (static / filename).is_file():
        return HTMLResponse((static / filename).read_text(encoding="utf-8"))
    return HTMLResponse(_PAGE_MISSING)


@pages.get("/")
def index():
    return _page("index.html")


@pages.get("/status")
def status_page():
    return _page("status.html")
