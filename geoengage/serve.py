"""Uploads -> scored faces and windows over HTTP: the ``geoengage serve`` FastAPI app.

Endpoints (the OpenAPI spec is at ``/openapi.json``, interactive docs at ``/docs``):

=================  =============================================================================
``POST /predict``  one image or short video as the multipart field ``file``. The type is
                   sniffed from the content (:func:`geoengage.media.sniff_media`), never from
                   the name. Returns per face its features, expression probabilities, engagement
                   probability and top reasons, and for a video every window's scores
                   (``?timeline=true`` adds the per-frame series the web page plots).
``GET /health``    liveness, version and the loaded models.
``GET /``          the web page: upload a clip, see the timeline (``geoengage/web/index.html``).
=================  =============================================================================

Bad input is a 4xx with ``{"detail": "..."}``: 400 empty or unreadable upload, 413 over the size
or duration limit, 415 not an image or video geoengage reads, 422 a file of a known type that
does not decode (truncated, corrupt). The upload is written only inside a temporary directory
that is removed when the request ends.

Analyses run in a pool of ``ServeConfig.workers`` worker processes (``geoengage serve --workers N``, default
the cores), each with its own models and one compute thread, analysing one upload at a time; the web process
only reads uploads, queues them (503 with ``Retry-After`` when the queue is full) and answers ``/health`` at
once. With ``workers=0`` analyses run in the web process's threads (``max_concurrent`` at a time).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ._version import __version__
from .config import SCREEN_FIELDS, ExtractConfig, check_setting
from .dataset import one_thread_per_worker
from .datasets import sample_image
from .exceptions import GeoEngageError, MediaReadError, MediaTooLargeError
from .extract import extract_frames
from .geometry.expression_cnn import EXPRESSION_CLASSES
from .media import check_image_size, image_header, probe_video, sniff_media
from .modeling.sequence import load_sequence_model
from .modeling.train import load_default_model
from .predict import PredictConfig, predict_frames, sequence_windows
from .report.explain import describe_feature
from .schema import float_columns, python_strings

__all__ = ["AnalysisPool", "ServeConfig", "create_app"]

logger = logging.getLogger(__name__)

#: Per-frame features reported per face (medians over a video's frames) and in the timeline.
REPORTED_FEATURES = ("yaw_deg", "pitch_deg", "roll_deg", "gaze_yaw_deg", "gaze_h_ratio", "on_screen", "gaze_cnn_yaw_deg",
                     "gaze_cnn_pitch_deg", "on_screen_cnn", "ear",
                     "eye_closure", "blink", "mouth_aspect_ratio", "smile_width_iod", "brow_raise_iod",
                     "iod_px", "face_sharpness", "face_brightness")
_CHUNK = 1 << 20


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """Limits and processing settings of the service.

    Parameters
    ----------
    max_upload_mb : float
        Largest upload accepted (413 above it; checked from ``Content-Length`` and while reading).
    max_video_s : float
        Longest video accepted (413 above it): by the duration its container states, and by the frames actually
        decoded (a header that understates the length does not get past it).
    max_queue : int
        Requests allowed to wait for a free slot; one more gets 503 with ``Retry-After`` at once.
    max_request_s : float
        Time budget of one analysis: a video whose frames are still being analysed after it gets 413 (and frees the
        slot for the next request). With ``workers``, a worker still inside one long call (dlib's detector on a huge
        image, a decoder) 2 s + 10% after the budget is killed and the request gets 413 (:class:`AnalysisPool`).
    threads : int
        Threads OpenCV and torch use for one analysis (1: requests do not fight over the cores).
    max_image_megapixels : float
        Largest image accepted, by the size its header declares, before any pixel is decoded (413 above it; images
        are also bounded by :data:`geoengage.media.MAX_IMAGE_PIXELS` wherever they are read).
    video_fps : float
        Video frames analysed per second (the rest are skipped).
    window_s, step_s : float or None
        Windows scored in videos (``None``: the engagement model's training settings).
    max_concurrent : int
        With ``workers=0``: requests analysed at the same time in the web process; the others wait their turn.
    workers : int
        Worker processes analysing uploads (one upload at a time each; ``max_concurrent`` is then ignored), started
        with the application and ended with it (also when the web process is killed). 0: analyse in the web
        process's threads.
    screen_width_mm, screen_height_mm, screen_centre_x_mm, screen_top_mm : float
        The screen behind ``on_screen`` (see :class:`~geoengage.config.ExtractConfig`).
    gaze_cnn : bool
        Run the gaze CNN on every face (``gaze_cnn_*``, ``on_screen_cnn``; about 1 ms per face).
    sequence_model : str, optional
        Folder of a saved sequence model (``geoengage train --model gru`` on geoengage windows): videos also get
        ``sequence``, its prediction from each face's windows so far (:func:`geoengage.predict.sequence_windows`).
    """

    max_upload_mb: float = 50.0
    max_video_s: float = 120.0
    video_fps: float = 10.0
    window_s: float | None = None
    step_s: float | None = None
    max_concurrent: int = 1
    screen_width_mm: float = 345.0
    screen_height_mm: float = 194.0
    screen_centre_x_mm: float = 0.0
    screen_top_mm: float = 0.0
    sequence_model: str | None = None
    max_image_megapixels: float = 50.0
    max_queue: int = 16
    max_request_s: float = 120.0
    threads: int = 1
    gaze_cnn: bool = True
    workers: int = 0

    def __post_init__(self) -> None:
        check_setting(0 <= self.max_queue <= 10_000, "max_queue", "between 0 and 10000", self.max_queue)
        check_setting(0 < self.max_request_s <= 3600, "max_request_s", "between 0 and 3600", self.max_request_s)
        check_setting(1 <= self.threads <= 256, "threads", "between 1 and 256", self.threads)
        check_setting(0 < self.max_image_megapixels <= 1000, "max_image_megapixels", "between 0 and 1000",
                      self.max_image_megapixels)
        check_setting(0 < self.max_upload_mb <= 4096, "max_upload_mb", "between 0 and 4096", self.max_upload_mb)
        check_setting(0 < self.max_video_s <= 3600, "max_video_s", "between 0 and 3600", self.max_video_s)
        check_setting(0 < self.video_fps <= 120, "video_fps", "between 0 and 120", self.video_fps)
        check_setting(all(v is None or v > 0 for v in (self.window_s, self.step_s)), "window_s and step_s",
                      "None or > 0", (self.window_s, self.step_s))
        check_setting(1 <= self.max_concurrent <= 64, "max_concurrent", "between 1 and 64", self.max_concurrent)
        check_setting(0 <= self.workers <= 256, "workers", "between 0 and 256", self.workers)

    @property
    def running(self) -> int:
        """Analyses that run at the same time."""
        return self.workers or self.max_concurrent


class UploadError(GeoEngageError):
    """A bad upload: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail

    def __reduce__(self) -> tuple[type, tuple[int, str]]:  # crosses from worker processes intact
        return UploadError, (self.status, self.detail)


def _number(value: Any) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _engagement(row: pd.Series, classes: list[str]) -> dict[str, Any]:
    return {"engagement_probability": _number(row["engagement_probability"]),
            "engagement": {c: _number(row[f"engagement_{c}"]) for c in classes},
            "engagement_pred": None if pd.isna(row["engagement_pred"]) else str(row["engagement_pred"]),
            "reasons": [{**r, "value": _number(r["value"]), "contribution": _number(r["contribution"])}
                        for r in row["reasons"]],
            "reason_text": str(row["reason_text"]),
            # features outside the range the model saw in training: the score extrapolates for them
            "out_of_range": [str(name) for name in row["out_of_range"]],
            "out_of_range_text": [describe_feature(str(name), row[name]) for name in row["out_of_range"]],
            # where the model was weak on held-out data sets (EngagementModel.uncertainty)
            "uncertain": bool(row["uncertain"]), "uncertain_why": str(row["uncertain_why"])}


#: The face box columns whose medians ``/predict`` reports as ``box_px``.
_BOX_COLUMNS = ("face_left_px", "face_top_px", "face_width_px", "face_height_px")


def summarize_prediction(frames: pd.DataFrame, windows: pd.DataFrame, *, kind: str,
                         timeline: bool = False) -> dict[str, Any]:
    """The ``/predict`` answer for one upload's frames and scored windows (JSON-ready)."""
    classes = [c[len("engagement_"):] for c in windows.columns
               if c.startswith("engagement_") and c not in ("engagement_pred", "engagement_probability")]
    faces = []
    found = frames["face_found"].to_numpy(dtype=bool, na_value=False)
    tracks = frames["track_id"].to_numpy(dtype=np.int64, na_value=-1)
    present = set(frames.columns.tolist())
    reported = [f for f in REPORTED_FEATURES if f in present]
    # arrays once for the whole upload (selecting columns of the wide per-frame table per face costs more)
    values = float_columns(frames, [*_BOX_COLUMNS, *reported])
    expressions = float_columns(frames, [f"expr_{c}" for c in EXPRESSION_CLASSES])
    for track in np.unique(tracks[found]):
        rows = np.flatnonzero(found & (tracks == track))
        track_windows = windows[windows["track_id"] == track] if "track_id" in windows.columns else windows
        ok = track_windows[track_windows["window_ok"].astype(bool)]  # no score from windows without a face
        with warnings.catch_warnings():  # an all-NaN column's median is NaN (reported as null), not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(values[rows], axis=0)
            means = np.nanmean(expressions[rows], axis=0)
        face: dict[str, Any] = {
            "track_id": int(track), "n_frames": len(rows),
            "box_px": [_number(v) for v in medians[:len(_BOX_COLUMNS)]],
            "features": {f: _number(v) for f, v in zip(reported, medians[len(_BOX_COLUMNS):], strict=True)},
            "expression": {c: _number(v) for c, v in zip(EXPRESSION_CLASSES, means, strict=True)},
            "expression_class": EXPRESSION_CLASSES[int(np.argmax(means))] if np.isfinite(means).all() else None,
        }
        if len(ok):  # the face's engagement: the mean over its (good) windows; reasons of its most typical one
            mean = ok["engagement_probability"].mean()
            typical = ok.iloc[int(np.argmin(np.abs(ok["engagement_probability"].to_numpy() - mean)))]
            face.update(_engagement(typical, classes), engagement_probability=_number(mean))
        faces.append(face)
    frame_idx = frames["frame_idx"].to_numpy(dtype=np.int64)
    answer: dict[str, Any] = {
        "kind": kind, "n_frames": len(np.unique(frame_idx)),
        "face_yield": _number(len(np.unique(frame_idx[found])) / len(np.unique(frame_idx)) if len(frames) else None),
        "faces": faces, "windows": [], "timeline": None}
    if kind == "video":
        answer["windows"] = [{"track_id": int(row.get("track_id", faces[0]["track_id"] if faces else -1)),
                              "window_idx": int(row["window_idx"]), "start_s": _number(row["start_s"]),
                              "end_s": _number(row["end_s"]), "coverage": _number(row["coverage"]),
                              "window_ok": bool(row["window_ok"]), **_engagement(row, classes)}
                             for _, row in windows.iterrows()]
    if timeline:
        columns = ["time_s", "track_id", "face_found", *REPORTED_FEATURES, *(f"expr_{c}" for c in EXPRESSION_CLASSES)]
        table = frames[[c for c in columns if c in frames.columns]]
        answer["timeline"] = [{k: (_number(v) if k not in ("face_found", "track_id") else
                                   (bool(v) if k == "face_found" else int(v))) for k, v in row.items()}
                              for row in table.to_dict(orient="records")]
    return answer


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


def _screen(config: ServeConfig) -> dict[str, float]:
    return {k: getattr(config, k) for k in SCREEN_FIELDS}


def _analyse(path: Path, kind: str, config: ServeConfig, timeline: bool) -> dict[str, Any]:
    """The ``/predict`` answer for the upload at ``path`` (raises :class:`UploadError` for bad input); its
    few-row tables are made in pandas' Python string storage (:func:`geoengage.schema.python_strings`)."""
    with python_strings():
        return _analyse_upload(path, kind, config, timeline)


def _analyse_upload(path: Path, kind: str, config: ServeConfig, timeline: bool) -> dict[str, Any]:
    name = "upload"
    deadline = time.monotonic() + config.max_request_s

    def on_time(stage: str, done: int, total: int | None) -> None:
        if time.monotonic() > deadline:
            raise UploadError(413, f"the {kind} takes longer than the {config.max_request_s:g} s budget per request "
                                   f"to analyse ({done} frames done); send a shorter clip")

    try:
        if kind == "image":
            # the pixel budget from the header, before anything is decoded (a file that does not decode is a
            # MediaReadError from extraction below: 422)
            check_image_size(path, image_header(path), int(config.max_image_megapixels * 1e6))
            extract = ExtractConfig(face_policy="all", gaze_cnn=config.gaze_cnn, **_screen(config))
        else:
            info = probe_video(path)
            if info.duration_s > config.max_video_s:
                raise UploadError(413, f"the video lasts {info.duration_s:.1f} s; the limit is {config.max_video_s:g} s")
            extract = ExtractConfig(face_policy="all", sample_fps=config.video_fps, gaze_cnn=config.gaze_cnn,
                                    **_screen(config))
        # the duration limit counts frames actually decoded, not what the container says
        allowed = math.floor(config.max_video_s * config.video_fps) + 1 if kind == "video" else None
        frames = extract_frames(path, config=extract, video_id=name, hook=on_time,
                                max_frames=None if allowed is None else allowed + 1)
        if allowed is not None and frames["frame_idx"].nunique() > allowed:
            raise UploadError(413, f"the video runs past the {config.max_video_s:g} s limit (its header says "
                                   f"{info.duration_s:.1f} s)")
    except MediaTooLargeError as err:
        raise UploadError(413, f"the {kind} is too large: {err.problem}") from err
    except MediaReadError as err:
        raise UploadError(422, f"the {kind} cannot be decoded: {err.problem}") from err
    prediction = predict_frames(frames, config=PredictConfig(window_s=config.window_s, step_s=config.step_s))
    answer = summarize_prediction(frames, prediction.windows, kind=kind, timeline=timeline)
    if kind == "video" and config.sequence_model:
        scored = sequence_windows(prediction.cleaning.frames, _sequence_model(config.sequence_model))
        answer["sequence"] = [{"track_id": int(row["track_id"]), "window_idx": int(row["window_idx"]),
                               "start_s": _number(row["start_s"]), "end_s": _number(row["end_s"]),
                               "engagement_so_far": _json_scalar(row["engagement_so_far"]),
                               "engagement_recording": _json_scalar(row["engagement_recording"])}
                              for _, row in scored.iterrows()]
    return answer


@lru_cache(maxsize=2)
def _sequence_model(folder: str):  # type: ignore[no-untyped-def]

    return load_sequence_model(folder)


def _json_scalar(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    return _number(value) if isinstance(value, (int, float, np.number)) else str(value)


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


def _set_threads(n: int) -> None:
    """One analysis uses ``n`` OpenCV and torch threads (the service's parallelism is its requests)."""
    import cv2
    import torch

    cv2.setNumThreads(n)
    torch.set_num_threads(n)


#: Settings of the analyses in this worker process (set by :func:`_start_worker`).
_WORKER_CONFIG: ServeConfig | None = None


def _start_worker(config: ServeConfig, parent_pid: int) -> None:
    """A pool worker's start: one compute thread, a watch on the web process, and every model loaded and warm
    (the bundled sample image analysed once), so that the first request costs what any other does."""
    global _WORKER_CONFIG

    one_thread_per_worker(parent_pid)
    _set_threads(config.threads)
    _WORKER_CONFIG = config
    with tempfile.TemporaryDirectory(prefix="geoengage-warm-") as folder:
        import cv2

        path = Path(folder) / "warm.png"
        cv2.imwrite(str(path), sample_image())
        # the first analysis loads every model: not subject to the per-request budget
        _analyse(path, "image", dataclasses.replace(config, max_request_s=3600.0), False)


#: Written beside the upload when a worker starts on it: that worker's process id and the start time.
_STARTED = "worker-started"


def _worker_analyse(path: str, kind: str, timeline: bool) -> dict[str, Any]:
    assert _WORKER_CONFIG is not None, "the pool's initializer did not run"
    started = Path(path).parent / _STARTED
    # written whole, then renamed: the web process never reads it half-written (an empty file read as "not started
    # yet" would spare a stuck worker from the kill, and the request would wait for ever)
    partial = started.with_name(f"{_STARTED}.{os.getpid()}.partial")
    partial.write_text(f"{os.getpid()} {time.time()}")
    os.replace(partial, started)
    return _analyse(Path(path), kind, _WORKER_CONFIG, timeline)


def _worker_ready(hold_s: float) -> int:
    time.sleep(hold_s)  # held a moment, so one ready worker cannot answer for another still loading its models
    return os.getpid()


class AnalysisPool:
    """``workers`` processes that analyse uploads, each with its own models (see :func:`_start_worker`).

    A worker that dies (killed, out of memory) breaks the pool: the request it held gets 503 and the pool is
    started again for the next ones.
    """

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # forkserver, not fork: a child forked from a process whose torch/OpenMP threads ran can hang
                self._executor = ProcessPoolExecutor(
                    max_workers=self.config.workers, mp_context=multiprocessing.get_context("forkserver"),
                    initializer=_start_worker, initargs=(self.config, os.getpid()))
            return self._executor

    def start(self, timeout_s: float = 600.0) -> list[int]:
        """Start every worker and wait until each has loaded its models; returns their process ids."""
        pool, ready = self._pool(), set()
        deadline = time.monotonic() + timeout_s
        while len(ready) < self.config.workers and time.monotonic() < deadline:
            ready |= {f.result() for f in [pool.submit(_worker_ready, 0.05) for _ in range(self.config.workers)]}
        return sorted(ready)

    def analyse(self, path: Path, kind: str, timeline: bool) -> dict[str, Any]:
        """The ``/predict`` answer for one upload (raises :class:`UploadError` for bad input).

        The worker checks the time budget between frames; one that is still on the upload ``grace_s`` after its
        budget ran out (inside one long call: dlib's detector on a huge image, a decoder) is killed, and the
        request gets 413. Like any dead worker, that breaks the pool: requests other workers were on get 503.
        """
        pool = self._pool()
        future = pool.submit(_worker_analyse, str(path), kind, timeline)
        limit = self.config.max_request_s + self.grace_s
        # no worker can have overrun before the request has waited that long: one wait, then a check a second
        wait, killed = limit, False
        try:
            while True:
                try:
                    return future.result(timeout=wait)
                except FutureTimeout:
                    killed = killed or self._kill_overrun(path.parent / _STARTED, limit)
                    wait = 1.0
        except BrokenProcessPool as err:
            with self._lock:
                if self._executor is pool:  # the first request to see it starts a new pool
                    self._executor = None
                    pool.shutdown(wait=False, cancel_futures=True)
            if killed:
                logger.error("an analysis overran its %g s budget by %g s and its worker was stopped; the pool "
                             "starts again", self.config.max_request_s, self.grace_s)
                raise UploadError(413, f"the {kind} took longer than the {self.config.max_request_s:g} s budget per "
                                       "request to analyse; send a smaller file or a shorter clip") from err
            logger.error("an analysis worker died; the pool starts again: %s", err)
            raise UploadError(503, "the analysis worker stopped unexpectedly; try again") from err

    @property
    def grace_s(self) -> float:
        """How long past the budget a worker may stay on one upload before it is killed."""
        return 2.0 + 0.1 * self.config.max_request_s

    @staticmethod
    def _kill_overrun(started: Path, limit: float) -> bool:
        """Kill the worker named in ``started`` if it has been on the upload longer than ``limit`` seconds."""
        try:
            pid, since = started.read_text().split()
        except (OSError, ValueError):  # not started yet: still queued behind other uploads
            return False
        if time.time() - float(since) <= limit:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
        return True

    def close(self, timeout_s: float | None = None) -> None:
        """Stop the workers: queued uploads are cancelled, one on an upload may finish it for ``timeout_s`` (the
        budget and its grace by default), and a worker still alive after that is killed, so closing never hangs on
        a worker stuck inside one call."""
        with self._lock:
            pool, self._executor = self._executor, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + (self.config.max_request_s + self.grace_s if timeout_s is None else timeout_s)
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.error("analysis worker %s did not stop; killed", process.pid)
                process.kill()
                process.join(5.0)


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

    return create_app(ServeConfig(**json.loads(os.environ.get(CONFIG_ENV, "{}"))))


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI application (run it with ``geoengage serve`` or any ASGI server)."""
    config = config or ServeConfig()
    limit = int(config.max_upload_mb * 2**20)
    gate = threading.Semaphore(config.max_concurrent)  # analyses in this process (without a pool)
    admitted = _Admission(config.running + config.max_queue)
    pool = AnalysisPool(config) if config.workers else None
    if pool is None:
        _set_threads(config.threads)
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
                        answer = _analyse(path, kind, config, timeline)
            except UploadError as err:
                logger.info("rejected %s: %s", file.filename, err.detail)
                return JSONResponse({"detail": err.detail}, status_code=err.status)
        answer["seconds"] = round(time.perf_counter() - start, 3)
        return JSONResponse(answer)  # JSON-ready already (summarize_prediction): no second encoding pass

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return files("geoengage").joinpath("web/index.html").read_text(encoding="utf-8")

    return app
