"""The labeling web app: a JSON API under ``/api/`` and the static page (FastAPI).

A thin layer over :class:`~skal_cxr.labeling.LabelingProject`; see
``docs/labeling_api.rst`` for the contract. :func:`create_app` assembles
the routers of ``_routes`` (with the dependencies of ``_deps`` and the
bodies of ``_schemas``), the request guard of ``_guard`` (the ``Host``
check, the body limit, the token before the body), the security headers and
the error handlers; FastAPI is imported only here, when an app is made.
"""

import ipaddress
import logging
import sqlite3
from contextlib import asynccontextmanager

from ...exceptions import LabelingError
from ..store._db import DB_FILE
from ..store._storage import RETRY_AFTER, StorageUnavailable, storage_error

__all__ = ["create_app", "serve", "is_loopback", "check_bind", "HOST", "PORT", "MAX_BODY_BYTES"]

#: Largest request body accepted, in bytes (larger ones are **413**, unread);
#: the largest real one, a label with a 2,000-character note, is under 25 KiB.
MAX_BODY_BYTES = 64 * 1024

#: Where :func:`serve` listens by default (loopback only).
HOST, PORT = "127.0.0.1", 8765

#: Where the app logs the errors it answers 5xx to (once per failed request).
logger = logging.getLogger("skal_cxr.labeling")


def is_loopback(host):
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _allowed_hosts(host, public_host=None):
    """``Host`` headers to accept for a server bound to ``host``.

    The bound address (with the loopback names for a loopback address), and
    ``public_host``, the name raters reach the server by (a DNS name, or the
    TLS proxy's). A wildcard address (``0.0.0.0``, ``::``) names no host, so
    it needs ``public_host``: the check is never turned off, and a
    ``public_host`` that is a pattern (``*``, ``*.example.org``) or empty is
    refused in one line (:func:`~._guard.check_hosts`).
    """
    from ._guard import check_hosts

    extra = [] if public_host is None else check_hosts([public_host])
    if is_loopback(host):
        return ["127.0.0.1", "localhost", "::1", "[::1]", host, *extra]
    if host in ("0.0.0.0", "::"):
        if public_host is None:
            raise LabelingError(
                f"--host {host} listens on every interface; give --public-host NAME, the "
                "host name raters' links use (requests naming another host are refused)."
            )
        return extra
    return [host, *extra]


def create_app(project, *, allowed_hosts=None, background=True):
    """The ASGI app of a project.

    Parameters
    ----------
    project : LabelingProject
    allowed_hosts : list of str, default=None
        ``Host`` headers accepted (DNS-rebinding protection); ``None``:
        the loopback names. Literal names only: a wildcard or an empty name
        raises :class:`LabelingError`.
    background : bool, default=True
        Train and query when a batch is complete, in a worker process at a
        lower priority than the server, started with the app and ended
        when it shuts down (otherwise call
        :meth:`LabelingProject.train_round` yourself).

    Returns
    -------
    app : fastapi.FastAPI

    Raises
    ------
    LabelingError
        For a wildcard or empty name in ``allowed_hosts``.
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse

        from ._deps import Unauthorized
        from ._guard import RequestGuard, check_hosts
        from ._routes import api, pages, static_dir
    except ImportError as exc:  # the optional "label" extra
        raise ImportError(
            "The labeling server needs FastAPI and uvicorn: pip install 'skal-cxr[label]'."
        ) from exc

    hosts = check_hosts(allowed_hosts or _allowed_hosts("127.0.0.1"))
    if background:
        project.train_in_background()

    @asynccontextmanager
    async def lifespan(app):
        with project.serving():  # requests reuse connections; the worker ends with it
            yield

    app = FastAPI(
        title=f"skal-cxr label: {project.name}",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.project = project
    app.add_middleware(RequestGuard, project=project, allowed_hosts=hosts, max_body=MAX_BODY_BYTES)

    def failure(request, exc):
        """The JSON answer to an error no handler knows, logged once; serving goes on.

        Errors raised before a route runs (in the request guard, which reads
        the raters' tokens) reach here, not the exception handlers below.
        """
        if isinstance(exc, StorageUnavailable):
            return storage_failure(request, exc)
        if isinstance(exc, LabelingError):
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        error = storage_error(exc, project.path / DB_FILE)
        where = f"{request.method} {request.url.path}"
        if error is None:
            logger.error("%s: internal error", where, exc_info=exc)
            return JSONResponse(
                {"detail": "internal error; the server logged it."}, status_code=500
            )
        return storage_failure(request, error)

    def storage_failure(request, error):
        logger.error("%s: %s", f"{request.method} {request.url.path}", error)
        return JSONResponse(
            {"detail": str(error)},
            status_code=error.status,
            headers={"Retry-After": str(RETRY_AFTER)},
        )

    @app.middleware("http")
    async def headers(request: Request, call_next):
        is_api = request.url.path.startswith("/api/")
        try:
            if is_api and request.method in ("POST", "PUT", "PATCH"):
                ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    response = JSONResponse(
                        {"detail": "send a JSON body (application/json)."}, status_code=415
                    )
                else:
                    response = await call_next(request)
            else:
                response = await call_next(request)
        except Exception as exc:  # every answer is JSON, and the server goes on
            response = failure(request, exc)
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        if is_api:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(LabelingError)
    async def labeling_error(request, exc):
        if isinstance(exc, StorageUnavailable):
            return storage_failure(request, exc)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(sqlite3.Error)
    @app.exception_handler(OSError)
    async def storage(request, exc):
        return failure(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        return JSONResponse(
            {
                "detail": "invalid request body: "
                + "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
                )
            },
            status_code=422,
        )

    @app.exception_handler(Unauthorized)
    async def unauthorized(request, exc):
        return JSONResponse(
            {"detail": "a valid rater token is required."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    app.include_router(api)
    app.include_router(pages)
    static = static_dir()
    if static is not None:
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


def check_bind(host, allow_remote=False):
    """Raise :class:`LabelingError` for a non-loopback ``host`` without ``allow_remote``."""
    if not is_loopback(host) and not allow_remote:
        raise LabelingError(
            f"refusing to bind to {host}: the server would be reachable from the network. "
            "Use 127.0.0.1 (the default), or pass --allow-remote (allow_remote=True) behind "
            "a TLS proxy."
        )


def serve(
    project,
    host=HOST,
    port=PORT,
    *,
    allow_remote=False,
    allowed_hosts=None,
    public_host=None,
    log_level="info",
):
    """Serve a project with uvicorn until interrupted; training runs in the background.

    The training thread and its worker process end when the server does,
    however uvicorn ends (also when it stops before the app's lifespan runs).

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
        names when it is a loopback address) and ``public_host``.
    public_host : str, default=None
        The host name raters reach the server by (``--public-host``), accepted
        in the ``Host`` header; needed when ``host`` is ``0.0.0.0`` or ``::``.
    log_level : str, default="info"

    Raises
    ------
    LabelingError
        For a non-loopback ``host`` without ``allow_remote``, or a wildcard
        ``host`` without ``public_host`` (or ``allowed_hosts``).
    """
    check_bind(host, allow_remote)
    hosts = allowed_hosts or _allowed_hosts(host, public_host)
    import uvicorn

    app = create_app(project, allowed_hosts=hosts)
    project.wake_training()  # resume a round interrupted by a crash
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)
    finally:  # the app's lifespan ends the worker; this, when uvicorn ended before it ran
        project.stop_training()
