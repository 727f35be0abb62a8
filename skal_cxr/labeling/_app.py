"""The labeling web app: a JSON API under ``/api/`` and the static page (FastAPI).

A thin layer over :class:`~skal_cxr.labeling.LabelingProject`; see
``docs/labeling_api.rst`` for the contract.
"""

import ipaddress
from importlib import resources

__all__ = ["create_app", "serve", "is_loopback", "check_bind"]

_PAGE_MISSING = (
    "<!doctype html><meta charset=utf-8><title>skal-cxr label</title>"
    "<p>The labeling page is not installed; the JSON API is under /api/.</p>"
)


def _static_dir():
    path = resources.files("skal_cxr.labeling") / "static"
    return path if path.is_dir() else None


def is_loopback(host):
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _allowed_hosts(host):
    if is_loopback(host):
        return ["127.0.0.1", "localhost", "::1", "[::1]", host]
    if host in ("0.0.0.0", "::"):
        return ["*"]
    return [host]


def create_app(project, *, allowed_hosts=None, background=True):
    """The ASGI app of a project.

    Parameters
    ----------
    project : LabelingProject
    allowed_hosts : list of str, default=None
        ``Host`` headers accepted (DNS-rebinding protection); ``None``:
        the loopback names.
    background : bool, default=True
        Train and query in a background thread when a batch is complete
        (otherwise call :meth:`LabelingProject.train_round` yourself).

    Returns
    -------
    app : fastapi.FastAPI
    """
    try:
        from fastapi import Depends, FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
        from pydantic import BaseModel, ConfigDict
        from starlette.middleware.trustedhost import TrustedHostMiddleware
    except ImportError as exc:  # the optional "label" extra
        raise ImportError(
            "The labeling server needs FastAPI and uvicorn: pip install 'skal-cxr[label]'."
        ) from exc
    from ._project import LabelingError

    if background:
        project.training.enable()
    app = FastAPI(title=f"skal-cxr label: {project.name}", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=allowed_hosts or _allowed_hosts("127.0.0.1"))

    @app.middleware("http")
    async def headers(request: Request, call_next):
        is_api = request.url.path.startswith("/api/")
        if is_api and request.method in ("POST", "PUT", "PATCH"):
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                response = JSONResponse({"detail": "send a JSON body (application/json)."},
                                        status_code=415)
            else:
                response = await call_next(request)
        else:
            response = await call_next(request)
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        if is_api:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(LabelingError)
    async def labeling_error(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        return JSONResponse({"detail": "invalid request body: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())},
            status_code=422)

    bearer = HTTPBearer(auto_error=False)

    class _Unauthorized(Exception):
        pass

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request, exc):
        return JSONResponse({"detail": "a valid rater token is required."}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    def rater(credentials: HTTPAuthorizationCredentials = Depends(bearer)):
        name = project.rater_for_token(credentials.credentials if credentials else None)
        if name is None:
            raise _Unauthorized()
        return name

    class _Body(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class LabelIn(_Body):
        image_id: str
        label: str
        seconds: float | None = None
        note: str | None = None

    class SkipIn(_Body):
        image_id: str

    class UndoIn(_Body):
        label_id: int

    @app.get("/api/health")
    def health():
        return {"status": "UP"}

    @app.get("/api/me")
    def me(name: str = Depends(rater)):
        cfg = project.config
        return {"rater": name, "project": project.name, "classes": project.classes,
                "show_prediction": cfg["show_prediction"],
                "labels_per_image": cfg["labels_per_image"]}

    @app.get("/api/next")
    def next_image(name: str = Depends(rater)):
        nxt = project.next_image(name)
        prog = project.progress()
        prediction = None
        if project.config["show_prediction"] and nxt["image_id"] is not None:
            prediction = project.prediction(nxt["image_id"])
        return {"image_id": nxt["image_id"], "reason": nxt["reason"], "round": prog["round"],
                "batch": prog["batch"], "progress": prog["progress"],
                "prediction": prediction, "from_previous_model": nxt["from_previous_model"]}

    @app.get("/api/images/{image_id}")
    def image_png(image_id: str, name: str = Depends(rater)):
        return Response(project.image_png(image_id), media_type="image/png",
                        headers={"Cache-Control": "no-store"})

    @app.get("/api/images/{image_id}/pixels")
    def image_pixels(image_id: str, name: str = Depends(rater)):
        pixels, center, width = project.image_pixels(image_id)
        return Response(pixels.astype("<u2", copy=False).tobytes(),
                        media_type="application/octet-stream",
                        headers={"X-Image-Width": str(pixels.shape[1]),
                                 "X-Image-Height": str(pixels.shape[0]),
                                 "X-Window-Center": repr(center),
                                 "X-Window-Width": repr(width)})

    @app.post("/api/labels", status_code=201)
    def post_label(body: LabelIn, name: str = Depends(rater)):
        return project.submit_label(name, body.image_id, body.label, body.seconds, body.note)

    @app.post("/api/skip")
    def post_skip(body: SkipIn, name: str = Depends(rater)):
        return project.skip(name, body.image_id)

    @app.post("/api/undo")
    def post_undo(body: UndoIn, name: str = Depends(rater)):
        return project.undo(name, body.label_id)

    @app.get("/api/status")
    def status(name: str = Depends(rater)):
        return project.status()

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def api_unknown(rest: str, name: str = Depends(rater)):
        return JSONResponse({"detail": "not found."}, status_code=404)

    static = _static_dir()

    def page(filename):
        if static is not None and (static / filename).is_file():
            return HTMLResponse((static / filename).read_text(encoding="utf-8"))
        return HTMLResponse(_PAGE_MISSING)

    @app.get("/", include_in_schema=False)
    def index():
        return page("index.html")

    @app.get("/status", include_in_schema=False)
    def status_page():
        return page("status.html")

    if static is not None:
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


def check_bind(host, allow_remote=False):
    """Raise :class:`LabelingError` for a non-loopback ``host`` without ``allow_remote``."""
    from ._project import LabelingError

    if not is_loopback(host) and not allow_remote:
        raise LabelingError(
            f"refusing to bind to {host}: the server would be reachable from the network. "
            "Use 127.0.0.1 (the default), or pass --allow-remote (allow_remote=True) behind "
            "a TLS proxy.")


def serve(project, host="127.0.0.1", port=8765, *, allow_remote=False, allowed_hosts=None,
          log_level="info"):
    """Serve a project with uvicorn until interrupted; training runs in the background.

    Parameters
    ----------
    project : LabelingProject
    host : str, default="127.0.0.1"
        Address to bind. Anything but a loopback address needs
        ``allow_remote=True``: the API carries patient images, and the
        server speaks plain HTTP (put a TLS proxy in front for a network).
    port : int, default=8765
    allow_remote : bool, default=False
    allowed_hosts : list of str, default=None
        ``Host`` headers accepted; ``None``: the bound host (and the loopback
        names when it is a loopback address; any for 0.0.0.0).
    log_level : str, default="info"

    Raises
    ------
    LabelingError
        For a non-loopback ``host`` without ``allow_remote``.
    """
    check_bind(host, allow_remote)
    import uvicorn

    app = create_app(project, allowed_hosts=allowed_hosts or _allowed_hosts(host))
    project.training.notify(project)  # resume a round interrupted by a crash
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)
