"""HTTP -> analyses: the FastAPI application (:func:`create_app`), its upload checks, bounded queue, middleware and
uvicorn protocol."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .._version import __version__
from ..config import config_from_dict
from ..geometry.expression_cnn import EXPRESSION_CLASSES
from ..media import sniff_media
from ..modeling.train import load_default_model
from ..recipe import WindowChanges
from .analysis import analyse
from .config import ServeConfig, UploadError
from .pool import AnalysisPool, set_threads

__all__ = ["CONFIG_ENV", "NoDelayHTTPProtocol", "create_app", "create_app_from_env"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class Problem(BaseModel):
    """A 4xx answer."""

    detail: str


class Health(BaseModel):
    """The ``/health`` answer."""

    status: str
    version: str
    expression_classes: list[str]
    engagement_classes: list[str]
    engaged_classes: list[str]
    limits: dict[str, float]
    busy: int


def _read_upload(upload: UploadFile, limit: int, folder: Path) -> tuple[Path, str]:
    """Copy the upload into ``folder`` (at most ``limit`` bytes) under the extension its content shows."""
    head = upload.file.read(64)
    if not head:
        raise UploadError(400, "the upload is empty (0 bytes)")
    sniffed = sniff_media(head)
    if sniffed is None:
        raise UploadError(415, "the upload is not an image or video geoengage reads (JPEG, PNG, BMP, TIFF, WebP; "
                               "MP4/MOV, AVI, MKV/WebM), judging by its content")
    kind, extension = sniffed
    path = folder / f"upload{extension}"
    size = len(head)
    with path.open("wb") as out:
        out.write(head)
        while chunk := upload.file.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadError(413, f"the upload is larger than the {limit / 2**20:g} MB limit")
            out.write(chunk)
    return path, kind


class _Admission:
    """Counts requests running or waiting; refuses one over ``limit`` (the bounded queue)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.count = limit, 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.count -= 1


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol with Nagle's algorithm off on every connection (``geoengage serve`` uses it).

    With its own ``--workers N`` uvicorn hands the listening socket to the worker processes, where it arrives
    without its protocol number, so asyncio no longer sets ``TCP_NODELAY`` on the connections it accepts; every
    answer then waits for the client's delayed ACK. Measured on 127.0.0.1 with 2 workers: ``/health`` 44 ms, 1.1 ms
    with this class.
    """

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


class _ContentLengthLimit:
    """ASGI middleware: a ``/predict`` whose ``Content-Length`` is not a number (400) or over the upload limit (413)
    is answered before its body is read. A plain ASGI class: Starlette's ``@app.middleware("http")`` wraps every
    request and response in extra tasks and streams (about 1 ms of the web process's time per request)."""

    def __init__(self, app: Any, *, limit: int, limit_mb: float) -> None:
        self.app, self.limit, self.limit_mb = app, limit, limit_mb

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict":
            length = dict(scope["headers"]).get(b"content-length")
            problem = None
            if length is not None and not length.isdigit():
                problem = JSONResponse({"detail": "the Content-Length header is not a number"}, status_code=400)
            elif length is not None and int(length) > self.limit + 65536:  # the multipart envelope adds a little
                problem = JSONResponse({"detail": f"the upload is larger than the {self.limit_mb:g} MB limit"},
                                       status_code=413)
            if problem is not None:
                await problem(scope, receive, send)
                return
        await self.app(scope, receive, send)


#: Environment variable holding the :class:`ServeConfig` (JSON) for :func:`create_app_from_env`.
CONFIG_ENV = "GEOENGAGE_SERVE_CONFIG"


def create_app_from_env() -> FastAPI:
    """The application with the :class:`ServeConfig` in ``$GEOENGAGE_SERVE_CONFIG`` (JSON), for running under a
    plain ASGI server: ``uvicorn geoengage.serve:create_app_from_env --factory`` (set ``workers`` in the JSON for
    the analysis pool; ``geoengage serve`` builds the same application itself)."""
    import json

    values = json.loads(os.environ.get(CONFIG_ENV, "{}"))
    if isinstance(values.get("windows"), dict):
        values["windows"] = config_from_dict(values["windows"], WindowChanges, where=f"${CONFIG_ENV} windows")
    return create_app(ServeConfig(**values))


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI application (run it with ``geoengage serve`` or any ASGI server)."""
    config = config or ServeConfig()
    limit = int(config.max_upload_mb * 2**20)
    gate = threading.Semaphore(config.max_concurrent)  # analyses in this process (without a pool)
    admitted = _Admission(config.running + config.max_queue)
    pool = AnalysisPool(config) if config.workers else None
    if pool is None:
        set_threads(config.threads)
    default_model = load_default_model()  # loaded once, before the first request (and for /health)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        if pool is not None:  # every worker loaded and warm before the first request is accepted
            import anyio

            logger.info("analysis workers ready: processes %s", await anyio.to_thread.run_sync(pool.start))
        yield
        if pool is not None:
            pool.close()

    app = FastAPI(title="geoengage", version=__version__, lifespan=lifespan,
                  description="Engagement, expressions and the reasons behind them, from a face image or video.")
    errors = {status: {"model": Problem, "description": text} for status, text in
              ((400, "empty upload or malformed request"), (413, "upload too large or video too long"),
               (415, "not an image or video geoengage reads"), (422, "file does not decode, or a bad field"))}

    app.add_middleware(_ContentLengthLimit, limit=limit, limit_mb=config.max_upload_mb)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in err.errors())
        return JSONResponse({"detail": f"bad request: {problems}"}, status_code=422)

    @app.get("/health", response_model=Health)
    async def health() -> dict[str, Any]:
        """Liveness and what this server runs: answered on the event loop, never queued behind analyses."""
        return {"status": "ok", "version": __version__, "expression_classes": list(EXPRESSION_CLASSES),
                "engagement_classes": [str(c) for c in default_model.classes_],
                "engaged_classes": [str(c) for c in default_model.positive_],
                "limits": {"max_upload_mb": config.max_upload_mb, "max_video_s": config.max_video_s,
                           "max_image_megapixels": config.max_image_megapixels,
                           "max_request_s": config.max_request_s, "max_queue": config.max_queue},
                "busy": admitted.count}

    @app.post("/predict", responses=errors)  # type: ignore[arg-type]
    def predict(file: UploadFile = File(..., description="an image or a short video"),
                timeline: bool = Query(False, description="add the per-frame series (for plotting)")) -> Any:
        """Faces, features, expressions, engagement and reasons for one image or short video."""
        start = time.perf_counter()
        if not admitted.enter():
            return JSONResponse({"detail": f"the server is busy ({admitted.limit} requests running or waiting); "
                                           "try again shortly"}, status_code=503, headers={"Retry-After": "5"})
        try:
            return _predict_admitted(file, timeline, start)
        finally:
            admitted.leave()

    def _predict_admitted(file: UploadFile, timeline: bool, start: float) -> Any:
        with tempfile.TemporaryDirectory(prefix="geoengage-") as folder:
            try:
                path, kind = _read_upload(file, limit, Path(folder))
                if pool is not None:  # queued in the pool at once: a worker that finishes finds the next upload ready
                    answer = pool.analyse(path, kind, timeline)
                else:
                    with gate:
                        answer = analyse(path, kind, config, timeline)
            except UploadError as err:
                logger.info("rejected %s: %s", file.filename, err.detail)
                return JSONResponse({"detail": err.detail}, status_code=err.status)
        answer["seconds"] = round(time.perf_counter() - start, 3)
        return JSONResponse(answer)  # JSON-ready already (summarize_prediction): no second encoding pass

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return files("geoengage").joinpath("web/index.html").read_text(encoding="utf-8")

    return app
