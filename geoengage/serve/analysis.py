"""An upload on disk -> the ``/predict`` answer: extraction within the request's limits, the engagement model's windows
and scores, and the JSON-ready summary per face (:func:`analyse`, :func:`summarize_prediction`).

Bad input raises :class:`~geoengage.serve.config.UploadError` with the HTTP status to answer: 413 over a size,
duration or time limit, 422 a file of a known type that does not decode.
"""

from __future__ import annotations

import math
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import SCREEN_FIELDS, ExtractConfig
from ..exceptions import MediaReadError, MediaTooLargeError
from ..extract import extract_frames
from ..geometry.expression_cnn import EXPRESSION_CLASSES
from ..media import check_image_size, image_header, probe_video
from ..modeling.sequence import load_sequence_model
from ..modeling.train import load_default_model
from ..predict import PredictConfig, predict_frames, sequence_windows
from ..report.explain import describe_feature
from ..schema import float_columns, python_strings
from .config import ServeConfig, UploadError

__all__ = ["REPORTED_FEATURES", "analyse", "summarize_prediction"]

#: Per-frame features reported per face (medians over a video's frames) and in the timeline.
REPORTED_FEATURES = ("yaw_deg", "pitch_deg", "roll_deg", "gaze_yaw_deg", "gaze_h_ratio", "on_screen", "gaze_cnn_yaw_deg",
                     "gaze_cnn_pitch_deg", "on_screen_cnn", "ear",
                     "eye_closure", "blink", "mouth_aspect_ratio", "smile_width_iod", "brow_raise_iod",
                     "iod_px", "face_sharpness", "face_brightness")


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


def _screen(config: ServeConfig) -> dict[str, float]:
    return {k: getattr(config, k) for k in SCREEN_FIELDS}


def analyse(path: Path, kind: str, config: ServeConfig, timeline: bool) -> dict[str, Any]:
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
    model = load_default_model()  # loaded once per process
    prediction = predict_frames(frames, config=PredictConfig(windows=config.windows), model=model)
    answer = summarize_prediction(frames, prediction.windows, kind=kind, timeline=timeline)
    if kind == "video" and config.sequence_model:
        # the sequence model's windows, made from the frames the engagement model's cleaning gave
        scored = sequence_windows(frames, _sequence_model(config.sequence_model), clean=model.recipe.clean)
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
