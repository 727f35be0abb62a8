"""The FastAPI application of the backend: thin routes over :class:`Backend`."""

from ._backend import Backend, BackendError
from ._images import ImageError
from ._protocol import PredictRequest, SetupRequest, TrainRequest, WebhookEvent
from ._settings import HOST, PORT

__all__ = ["create_app", "serve", "HOST", "PORT"]


def create_app(backend):
    """The application serving ``backend`` with Label Studio's ML backend protocol.

    Parameters
    ----------
    backend : Backend or BackendSettings
        The backend (one is made from settings).

    Returns
    -------
    app : fastapi.FastAPI
        ``GET /`` and ``/health``, ``POST /setup``, ``/predict``,
        ``/webhook`` and ``/train``.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    if not isinstance(backend, Backend):
        backend = Backend(backend)
    app = FastAPI(title="skal_cxr Label Studio ML backend")
    app.state.backend = backend

    @app.exception_handler(BackendError)
    async def _refused(request: Request, exc: BackendError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(ImageError)
    async def _image(request: Request, exc: ImageError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/")
    @app.get("/health")
    def health():
        return {**backend.health(), "error": backend.last_error}

    @app.post("/setup")
    def setup(body: dict):
        req = SetupRequest.parse(body)
        return backend.setup(req.project, req.schema_, req.hostname, req.access_token)

    @app.post("/predict")
    def predict(req: PredictRequest):
        return backend.predict(req.tasks, req.label_config, req.project)

    @app.post("/webhook", status_code=201)
    def webhook(req: WebhookEvent):
        return backend.webhook(req.model_dump())

    @app.post("/train", status_code=201)
    def train(req: TrainRequest):
        return backend.train(req.annotations, req.label_config, req.project)

    return app


def serve(settings, host=HOST, port=PORT, log_level="info"):
    """Serve the backend of ``settings`` until interrupted (uvicorn).

    When the settings name Label Studio's URL and a token, and the folder
    knows its project, the tasks and annotations are synced first.

    Parameters
    ----------
    settings : BackendSettings
        The checked settings.
    host : str, default="127.0.0.1"
        Interface (loopback by default).
    port : int, default=9090
        Port.
    log_level : str, default="info"
        uvicorn's log level.
    """
    import uvicorn

    backend = Backend(settings)
    backend.try_sync()  # annotations made while the backend was down
    uvicorn.run(create_app(backend), host=host, port=port, log_level=log_level)
