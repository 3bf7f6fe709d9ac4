"""Camera or stream -> per-frame records and scored windows as they happen: ``geoengage live``.

:func:`run_live` reads a camera index, a stream address or a file and sends two kinds of
records to a sink (:class:`JsonLinesSink` or :class:`CsvSink`):

``{"type": "frame", ...}``   every processed frame: time, face, head pose, gaze, eye aspect ratio,
                             expression probabilities and class, frames dropped so far, latency;
``{"type": "window", ...}``  every ``step_s`` seconds: the last ``window_s`` seconds scored by the
                             engagement model (probability, class, top reasons, blink rate) and, with a
                             sequence model, ``engagement_so_far``: its prediction from the windows so far
                             (made at its own training window length and step).

Keeping up with real time: with ``realtime=True`` a reader thread decodes frames into a
one-frame slot and the analysis takes the newest one; a frame replaced before it was analysed
is *dropped*, counted in every record and in :class:`LiveStats`, and logged. A file is read at
its own frame rate, as if it were a camera. With ``realtime=False`` every frame is analysed
(offline use, no drops). Optionally an annotated video is written (:func:`geoengage.annotate.draw_live`),
with the last annotated frame repeated for dropped frames so it keeps the source's timing.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

import cv2
import numpy as np
import pandas as pd

from .annotate import draw_live
from .config import ExtractConfig, check_setting
from .exceptions import GeoEngageWarning, InvalidParameterError, MediaReadError
from .extract import frames_from_rows, iter_face_rows
from .geometry.expression_cnn import EXPRESSION_CLASSES
from .geometry.registry import compute_frame_features
from .media import Frame, iter_frames, media_kind, probe_video
from .modeling.train import EngagementModel, load_default_model
from .predict import score_windows
from .recipe import Recipe, WindowChanges, frames_to_windows
from .report.explain import explain_model
from .schema import python_strings

__all__ = ["CsvSink", "JsonLinesSink", "LiveConfig", "LiveStats", "run_live"]

logger = logging.getLogger(__name__)

#: Columns of a frame record (besides ``type``), in CSV order.
FRAME_FIELDS = ("frame_idx", "time_s", "face_found", "yaw_deg", "pitch_deg", "roll_deg", "gaze_yaw_deg", "on_screen",
                "gaze_cnn_yaw_deg", "gaze_cnn_pitch_deg", "on_screen_cnn", "ear", "expr_class", *(f"expr_{c}" for c in EXPRESSION_CLASSES), "dropped_total", "latency_ms")
#: Columns of a window record (besides ``type``), in CSV order.
WINDOW_FIELDS = ("start_s", "end_s", "coverage", "window_ok", "engagement_probability", "engagement_pred", "blink_per_min",
                 "reason_text", "engagement_so_far")


@dataclass(frozen=True, kw_only=True)
class LiveConfig:
    """How live mode paces and scores a source.

    The windows are the model's own (its :attr:`recipe`: cleaning, window length, coverage rule, features).

    Parameters
    ----------
    windows : WindowChanges
        Each window record covers the last ``windows.window_s`` seconds (by default the model's training window
        length, so the features mean what they meant in training; shorter windows answer sooner); a window with a
        smaller share of frames with a face than ``windows.min_coverage`` (by default the model's) is not scored
        (``window_ok`` false, ``engagement_probability`` null). Its ``step_s`` is not used: records come every
        ``step_s`` below.
    step_s : float
        A window record every ``step_s`` seconds of source time.
    realtime : bool
        Drop frames to keep up (True), or analyse every frame (False).
    max_seconds : float or None
        Stop after this much source time.
    max_frames : int or None
        Stop after this many analysed frames.
    """

    windows: WindowChanges = field(default_factory=WindowChanges)
    step_s: float = 1.0
    realtime: bool = True
    max_seconds: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        check_setting(self.step_s > 0, "step_s", "> 0", self.step_s)
        check_setting(self.windows.step_s is None, "windows.step_s", "None (live mode makes a window record every "
                      "`step_s`)", self.windows.step_s)
        check_setting(self.max_seconds is None or self.max_seconds > 0, "max_seconds", "None or > 0", self.max_seconds)
        check_setting(self.max_frames is None or self.max_frames > 0, "max_frames", "None or > 0", self.max_frames)


@dataclass(frozen=True)
class LiveStats:
    """What a live run did: frames read from the source, analysed and dropped; windows; speed."""

    n_read: int
    n_processed: int
    n_dropped: int
    n_windows: int
    seconds: float
    processed_fps: float
    source_fps: float | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Sink(Protocol):
    def __call__(self, record: dict[str, Any]) -> None: ...


def _json_value(value: Any) -> Any:
    if value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class JsonLinesSink:
    """Writes each record as one JSON line (NaN as null) to a text stream, flushing each line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps({k: _json_value(v) for k, v in record.items()}) + "\n")
        self.stream.flush()


class CsvSink:
    """Frame records to ``path``, window records to ``<stem>_windows.csv`` beside it."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self._files = [path.open("w", newline=""), path.with_name(f"{path.stem}_windows.csv").open("w", newline="")]
        self._writers = {kind: csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
                         for kind, f, fields in zip(("frame", "window"), self._files, (FRAME_FIELDS, WINDOW_FIELDS))}
        for writer in self._writers.values():
            writer.writeheader()

    def __call__(self, record: dict[str, Any]) -> None:
        self._writers[record["type"]].writerow({k: _json_value(v) for k, v in record.items()})

    def close(self) -> None:
        for f in self._files:
            f.close()


class _NewestFrame:
    """A reader thread that keeps only the newest decoded frame; frames overwritten unread are dropped."""

    def __init__(self, frames: Iterator[Frame], *, pace: bool) -> None:
        self._frames, self._pace = frames, pace
        self._slot: Frame | None = None
        self._done, self._error = False, None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self.n_read = self.n_dropped = 0
        self.start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="geoengage-live-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = self.start
        try:
            for frame in self._frames:
                if self._stop.is_set():
                    break
                if self._pace:  # a file plays at its own rate, like a camera
                    delay = start + frame.time_s - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                with self._cond:
                    self.n_read += 1
                    if self._slot is not None:
                        self.n_dropped += 1
                    self._slot = frame
                    self._cond.notify()
        except Exception as err:  # noqa: BLE001 (any reader error is handed to the consumer, which raises it)
            self._error = err
        finally:
            with self._cond:
                self._done = True
                self._cond.notify()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._slot is None and not self._done:
                    self._cond.wait()
                frame, self._slot = self._slot, None
                if frame is None:
                    break
            yield frame
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self._stop.set()


class _Counted:
    """Pass frames through, remembering the last one and counting them (no drops)."""

    def __init__(self, frames: Iterator[Frame]) -> None:
        self._frames, self.n_read, self.n_dropped = frames, 0, 0

    def __iter__(self) -> Iterator[Frame]:
        for frame in self._frames:
            self.n_read += 1
            yield frame

    def close(self) -> None:
        pass


class _Remember:
    def __init__(self, frames: Any) -> None:
        self.frames, self.last = frames, None

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.frames:
            self.last = frame
            yield frame


def _last_window(rows: list[dict[str, Any]], recipe: Recipe, options: dict[str, Any]) -> pd.DataFrame:
    """The frame rows cleaned and aggregated into windows as ``recipe`` says (its step is its window length)."""
    table = compute_frame_features(frames_from_rows(rows), options=options)
    with warnings.catch_warnings():  # a faceless window is reported in the record (window_ok), not warned about
        warnings.simplefilter("ignore", GeoEngageWarning)
        return frames_to_windows(table, recipe).windows


class _SequenceSoFar:
    """A sequence model's windows so far, made at its own training window length and step, and its latest
    prediction from them (``engagement_so_far`` in the window records)."""

    def __init__(self, model: Any, made: Recipe) -> None:
        own = model.recipe  # its window length, step, coverage rule and (geoengage) features
        self.model = model
        self.window_s, self.step_s = own.window_s, own.step_s
        # cleaned as the engagement model's frames are; one window of its own length and coverage rule per record
        self.recipe = replace(made, features=own.features, window_s=own.window_s, step_s=own.window_s,
                              min_coverage=own.min_coverage)
        self.windows: list[pd.DataFrame] = []
        self.next_end: float | None = None
        self.latest: Any = None

    def update(self, history: list[dict[str, Any]], now: float, options: dict[str, Any]) -> Any:
        self.next_end = history[0]["time_s"] + self.window_s if self.next_end is None else self.next_end
        added = False
        while now >= self.next_end:
            rows = [r for r in history if self.next_end - self.window_s <= r["time_s"] < self.next_end]
            if len(rows) > 1:
                window = _last_window(rows, self.recipe, options).iloc[[-1]]
                if bool(window["window_ok"].iloc[0]):
                    self.windows.append(window.assign(video_id="live", track_id=0, window_idx=len(self.windows)))
                    added = True
            self.next_end += self.step_s
        if added:
            value = self.model.predict_recordings(pd.concat(self.windows, ignore_index=True))["prediction"].iloc[0]
            self.latest = value.item() if isinstance(value, np.generic) else value
        return self.latest


def _window_record(rows: list[dict[str, Any]], model: EngagementModel, recipe: Recipe,
                   options: dict[str, Any]) -> dict[str, Any] | None:
    windows = _last_window(rows, recipe, options)
    if windows.empty:
        return None
    scored = score_windows(windows.iloc[[-1]], model=model, top_reasons=3).iloc[0]
    return {"type": "window", "start_s": float(scored["start_s"]), "end_s": float(rows[-1]["time_s"]),
            "coverage": float(scored["coverage"]), "window_ok": bool(scored["window_ok"]),
            "engagement_probability": _json_value(scored["engagement_probability"]),
            "engagement_pred": None if pd.isna(scored["engagement_pred"]) else str(scored["engagement_pred"]),
            "blink_per_min": (_json_value(scored["blink__rate"]) if "blink__rate" in scored and scored["window_ok"]
                              else None),  # a rate over a few frames of face (449/min) is no rate
            "reasons": scored["reasons"], "reason_text": scored["reason_text"]}


def run_live(source: str | int | Path, sink: Sink, *, config: LiveConfig | None = None,
             extract: ExtractConfig | None = None, annotate_path: str | Path | None = None,
             model: EngagementModel | None = None, stop: threading.Event | None = None,
             sequence_model: Any = None) -> LiveStats:
    """Analyse a camera, stream or file as it plays, sending frame and window records to ``sink``.

    Parameters
    ----------
    source : str, int or Path
        Camera index (``0``), stream address (``rtsp://``, ``http://``) or a video file.
    sink : callable
        Called with each record (a dict); see the module docstring.
    config : LiveConfig, optional
    extract : ExtractConfig, optional
        Landmark-stage settings; ``expression_batch`` is forced to 1 so every frame's record is immediate.
    annotate_path : str or Path, optional
        Write an annotated video here (``.avi``: MJPG, ``.mp4``: mp4v).
    stop : threading.Event, optional
        Set it to end the run (e.g. from a signal handler).
    sequence_model : SequenceModel, optional
        Trained on geoengage windows (``geoengage train --model gru``): window records get ``engagement_so_far``.
    """
    config = config or LiveConfig()
    extract = replace(extract or ExtractConfig(), expression_batch=1)
    model = model or load_default_model()
    made = model.recipe  # once: the model's cleaning, window length and features for every record
    window_s = config.windows.window_s or made.window_s
    # each record scores one window of that length ending at it (its step is its length)
    recipe = made.with_windows(WindowChanges(window_s=window_s, step_s=window_s,
                                             min_coverage=config.windows.min_coverage))
    options = extract.feature_options()  # once: the gaze and screen settings for every frame
    so_far = _SequenceSoFar(sequence_model, made) if sequence_model is not None else None
    keep_s = max(window_s, so_far.window_s) if so_far is not None else window_s
    kind = media_kind(source)
    if kind not in ("video", "stream"):
        raise InvalidParameterError(f"`source` must be a camera index, stream address or video file. Got a {kind}: "
                                    f"{source!r}.")
    source_fps = probe_video(source).fps if kind == "video" else None
    _warm_up(extract, model)  # load every model now, so that the first seconds of the source are not dropped
    frames = iter_frames(source, sample_fps=extract.sample_fps, max_frames=None)
    reader: _NewestFrame | _Counted = _NewestFrame(frames, pace=kind == "video") if config.realtime else _Counted(frames)
    remembered = _Remember(reader)
    writer = None
    history: deque[dict[str, Any]] = deque()
    n_processed = n_windows = 0
    last_idx, next_window, engagement = -1, None, None
    annotated = None
    started = time.monotonic()
    try:
        for row in iter_face_rows(remembered, config=extract):
            frame = remembered.last
            row = {"video_id": str(source), "source_path": str(source), **row}
            n_processed += 1
            with python_strings():  # one-row tables: pandas' per-operation overhead is lower this way
                features = compute_frame_features(frames_from_rows([row]), options=options).iloc[0]
            latency_ms = (1000 * (time.monotonic() - reader.start - row["time_s"])
                          if isinstance(reader, _NewestFrame) and kind == "video" else None)
            sink({"type": "frame", **{k: features.get(k) for k in FRAME_FIELDS if k in features},
                  "face_found": bool(row["face_found"]), "dropped_total": reader.n_dropped,
                  "latency_ms": latency_ms})
            history.append(row)
            while history and history[0]["time_s"] < row["time_s"] - keep_s:
                history.popleft()
            next_window = row["time_s"] + config.step_s if next_window is None else next_window
            if row["time_s"] >= next_window and len(history) > 1:
                recent = [r for r in history if r["time_s"] >= row["time_s"] - window_s]
                with python_strings():
                    record = _window_record(recent, model, recipe, options)
                    if record is not None and so_far is not None:
                        record["engagement_so_far"] = so_far.update(list(history), row["time_s"], options)
                next_window += config.step_s * max(1, math.floor((row["time_s"] - next_window) / config.step_s) + 1)
                if record is not None:
                    n_windows += 1
                    engagement = record["engagement_probability"]
                    sink({**record, "dropped_total": reader.n_dropped})
            if annotate_path is not None and frame is not None and frame.image is not None:
                if writer is None:
                    writer = _open_writer(annotate_path, frame.image.shape, source_fps or 30.0)
                for _ in range(max(0, frame.frame_idx - last_idx - 1) if annotated is not None else 0):
                    writer.write(annotated)  # keep the source's timing across dropped frames
                annotated = draw_live(frame.image, features.to_dict(), engagement=engagement,
                                      dropped=reader.n_dropped)
                writer.write(annotated)
            last_idx = frame.frame_idx if frame is not None else last_idx
            if (config.max_frames is not None and n_processed >= config.max_frames) or \
               (config.max_seconds is not None and row["time_s"] >= config.max_seconds) or \
               (stop is not None and stop.is_set()):
                break
    finally:
        reader.close()
        if writer is not None:
            writer.release()
    seconds = time.monotonic() - started
    if reader.n_dropped:
        logger.warning("live: analysed %d of %d frames (%d dropped to keep up with real time)", n_processed,
                       reader.n_read, reader.n_dropped)
    return LiveStats(reader.n_read, n_processed, reader.n_dropped, n_windows, round(seconds, 3),
                     round(n_processed / seconds, 2) if seconds > 0 else 0.0, source_fps)


def _warm_up(extract: ExtractConfig, model: EngagementModel) -> None:
    # torch loads only when a CNN runs
    from .detect.expression import load_expression_model

    blank = np.zeros((120, 160, 3), np.uint8)
    list(iter_face_rows([Frame(0, 0.0, blank)], config=extract))  # dlib's detector and landmark model
    if extract.expression:
        load_expression_model()
    explain_model(model, pd.DataFrame({name: [np.nan] for name in model.features_}))  # shap and its explainer


def _open_writer(path: str | Path, shape: tuple[int, ...], fps: float) -> cv2.VideoWriter:
    path = Path(path)
    fourcc = {".avi": "MJPG", ".mp4": "mp4v", ".mov": "mp4v", ".mkv": "MJPG"}.get(path.suffix.lower())
    if fourcc is None:
        raise InvalidParameterError(f"`annotate_path` must end in .avi, .mp4, .mov or .mkv. Got {path.name!r} instead.")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise MediaReadError(path, "cannot be opened for writing an annotated video")
    return writer
