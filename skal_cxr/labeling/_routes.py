"""The routes of the labeling app: the JSON API under ``/api/`` and the two pages.

Every API route but ``/api/health`` needs a rater's bearer token
(:data:`~skal_cxr.labeling._deps.RaterDep`); an unknown ``/api/`` path is
answered 404 only to a rater.
"""

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ._deps import ProjectDep, RaterDep
from ._schemas import (
    HealthOut, LabelIn, LabelOut, MeOut, NextOut, SkipIn, SkipOut, UndoIn, UndoOut,
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
    path = resources.files("skal_cxr.labeling") / "static"
    return path if path.is_dir() else None


@api.get("/health", response_model=HealthOut)
def health():
    return {"status": "UP"}


@api.get("/me", response_model=MeOut)
def me(project: ProjectDep, name: RaterDep):
    cfg = project.config
    return {"rater": name, "project": project.name, "classes": project.classes,
            "show_prediction": cfg["show_prediction"],
            "labels_per_image": cfg["labels_per_image"]}


@api.get("/next", response_model=NextOut)
def next_image(project: ProjectDep, name: RaterDep):
    nxt = project.next_image(name)
    prog = project.progress()
    prediction = None
    if project.config["show_prediction"] and nxt["image_id"] is not None:
        prediction = project.prediction(nxt["image_id"])
    return {"image_id": nxt["image_id"], "reason": nxt["reason"], "round": prog["round"],
            "batch": prog["batch"], "progress": prog["progress"],
            "prediction": prediction, "from_previous_model": nxt["from_previous_model"]}


@api.get("/images/{image_id}")
def image_png(image_id: str, project: ProjectDep, name: RaterDep):
    return Response(project.image_png(image_id), media_type="image/png",
                    headers={"Cache-Control": "no-store"})


@api.get("/images/{image_id}/pixels")
def image_pixels(image_id: str, project: ProjectDep, name: RaterDep):
    pixels, center, width = project.image_pixels(image_id)
    return Response(pixels.astype("<u2", copy=False).tobytes(),
                    media_type="application/octet-stream",
                    headers={"X-Image-Width": str(pixels.shape[1]),
                             "X-Image-Height": str(pixels.shape[0]),
                             "X-Window-Center": repr(center),
                             "X-Window-Width": repr(width)})


@api.post("/labels", status_code=201, response_model=LabelOut)
def post_label(body: LabelIn, project: ProjectDep, name: RaterDep):
    return project.submit_label(name, body.image_id, body.label, body.seconds, body.note)


@api.post("/skip", response_model=SkipOut)
def post_skip(body: SkipIn, project: ProjectDep, name: RaterDep):
    return project.skip(name, body.image_id)


@api.post("/undo", response_model=UndoOut)
def post_undo(body: UndoIn, project: ProjectDep, name: RaterDep):
    return project.undo(name, body.label_id)


@api.get("/status")
def status(project: ProjectDep, name: RaterDep):
    return project.status()


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
