"""Landmarks -> eye aspect ratio, eye closure, blinks and PERCLOS.

Eye aspect ratio (Soukupová & Čech 2016) per eye, from the six iBUG points of the eye:
``EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)``. It is about 0.25-0.35 for an open
eye on dlib landmarks and falls towards 0.1 when the eye closes; it depends on the
person and on head pitch, so blinks are found against a baseline that adapts to each
face track:

1. ``baseline`` = centred rolling median of the EAR over ``baseline_s`` seconds of the track
   (blinks are too short and rare to move a median);
2. ``eye_closure = 1 - EAR / baseline`` (0 = as open as usual, 1 = shut);
3. a blink is a run of frames with ``eye_closure >= blink_closure`` (gaps of one frame
   bridged) lasting at most ``max_blink_s``; longer runs are eye closures, not blinks.

PERCLOS is the fraction of time with ``eye_closure >= perclos_closure``
(:func:`perclos`); the blink rate is blinks per minute of face time (:func:`blink_rate_per_min`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import InvalidParameterError
from .registry import frame_features

__all__ = ["BlinkConfig", "blink_rate_per_min", "detect_blinks", "eye_aspect_ratio", "perclos"]

RIGHT_EYE = slice(36, 42)  # the subject's right eye (image left)
LEFT_EYE = slice(42, 48)


@dataclass(frozen=True, kw_only=True)
class BlinkConfig:
    """Blink detection settings (see the module docstring)."""

    baseline_s: float = 4.0
    blink_closure: float = 0.3
    max_blink_s: float = 0.5
    perclos_closure: float = 0.5

    def __post_init__(self) -> None:
        for name in ("baseline_s", "max_blink_s"):
            if not getattr(self, name) > 0:
                raise InvalidParameterError(f"`{name}` must be > 0. Got {getattr(self, name)!r} instead.")
        for name in ("blink_closure", "perclos_closure"):
            if not 0 < getattr(self, name) < 1:
                raise InvalidParameterError(f"`{name}` must be between 0 and 1. Got {getattr(self, name)!r} instead.")


def eye_aspect_ratio(eye: np.ndarray) -> np.ndarray:
    """EAR of eyes given as (n, 6, 2) points in iBUG order; NaN where points are NaN."""
    lids = np.linalg.norm(eye[:, 1] - eye[:, 5], axis=-1) + np.linalg.norm(eye[:, 2] - eye[:, 4], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return lids / (2.0 * np.linalg.norm(eye[:, 0] - eye[:, 3], axis=-1))


@frame_features(
    ("ear_left", "ratio", 0.05, 0.5, "Eye aspect ratio of the subject's left eye (iBUG 42-47)."),
    ("ear_right", "ratio", 0.05, 0.5, "Eye aspect ratio of the subject's right eye (iBUG 36-41)."),
    ("ear", "ratio", 0.05, 0.5, "Mean eye aspect ratio of both eyes; open eyes 0.18-0.45 on real photos, shut below 0.15."),
)
def eye_aspect_ratios(landmarks: np.ndarray, frame_size: np.ndarray) -> dict[str, np.ndarray]:
    left, right = eye_aspect_ratio(landmarks[:, LEFT_EYE]), eye_aspect_ratio(landmarks[:, RIGHT_EYE])
    return {"ear_left": left, "ear_right": right, "ear": (left + right) / 2.0}


def _track_keys(frames: pd.DataFrame) -> list[str]:
    return [k for k in ("video_id", "track_id") if k in frames.columns]


def _closure(ear: pd.Series, time_s: pd.Series, baseline_s: float) -> np.ndarray:
    """1 - EAR / (rolling median EAR) for one track, aligned with its rows."""
    index = pd.to_timedelta(time_s.to_numpy(), unit="s")
    series = pd.Series(ear.to_numpy(), index=index)
    if not series.index.is_monotonic_increasing:
        raise InvalidParameterError("time_s must increase within each face track.")
    baseline = series.rolling(pd.Timedelta(seconds=baseline_s), center=True, min_periods=1).median()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1.0 - series / baseline).to_numpy()


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of runs of True, bridging single False gaps."""
    bridged = flags.copy()
    bridged[1:-1] |= flags[:-2] & flags[2:]
    edges = np.diff(np.concatenate([[0], bridged.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _blinks_in_track(closure: np.ndarray, times: np.ndarray, ear: np.ndarray,
                     config: BlinkConfig) -> list[dict[str, float]]:
    valid = np.isfinite(closure)
    if valid.sum() < 2:
        return []
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    events = []
    for start, stop in _runs(valid & (np.nan_to_num(closure) >= config.blink_closure)):
        duration = times[stop - 1] - times[start] + period
        if duration <= config.max_blink_s:
            events.append({"start_s": float(times[start]), "end_s": float(times[stop - 1] + period),
                           "duration_s": float(duration), "min_ear": float(np.nanmin(ear[start:stop]))})
    return events


def _tracks(frames: pd.DataFrame, config: BlinkConfig):
    """For each face track: its key, row positions in time order, times, EAR, closure and blink events."""
    keys = _track_keys(frames)
    ear_all, time_all = frames["ear"].to_numpy(dtype=np.float64), frames["time_s"].to_numpy(dtype=np.float64)
    face_rows = np.flatnonzero(np.isfinite(ear_all))
    faces = frames.iloc[face_rows]
    groups = faces.groupby(keys, sort=True).indices if keys else {(): np.arange(len(faces))}
    for key, members in groups.items():
        rows = face_rows[members]
        rows = rows[np.argsort(time_all[rows], kind="stable")]
        times, ear = time_all[rows], ear_all[rows]
        closure = _closure(pd.Series(ear), pd.Series(times), config.baseline_s)
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(keys, key, strict=True)), rows, times, closure, _blinks_in_track(closure, times, ear, config)


def detect_blinks(frames: pd.DataFrame, *, config: BlinkConfig | None = None) -> pd.DataFrame:
    """Blink events of every face track.

    Parameters
    ----------
    frames : DataFrame
        Per-frame table with ``time_s``, ``ear`` and (when present) ``video_id``, ``track_id``.

    Returns
    -------
    DataFrame
        One row per blink: the track keys, ``start_s``, ``end_s``, ``duration_s``, ``min_ear``.
    """
    config = config or BlinkConfig()
    rows = [{**key, **event} for key, _, _, _, events in _tracks(frames, config) for event in events]
    return pd.DataFrame(rows, columns=[*_track_keys(frames), "start_s", "end_s", "duration_s", "min_ear"])


@frame_features(
    ("eye_closure", "ratio", -0.5, 1, "1 - EAR / the track's rolling-median EAR: 0 as open as usual, 1 shut."),
    ("blink", "flag", 0, 1, "1 inside a blink (closure >= 0.3 for at most 0.5 s), else 0."),
    kind="track",
)
def blink_flags(frames: pd.DataFrame, config: BlinkConfig | None = None) -> dict[str, np.ndarray]:
    """Per-frame eye closure and blink flag, computed within each face track."""
    config = config or BlinkConfig()
    closure = np.full(len(frames), np.nan)
    blink = np.where(np.isfinite(frames["ear"].to_numpy(dtype=np.float64)), 0.0, np.nan)
    for _, rows, times, track_closure, events in _tracks(frames, config):
        closure[rows] = track_closure
        for event in events:
            blink[rows[(times >= event["start_s"]) & (times < event["end_s"])]] = 1.0
    return {"eye_closure": closure, "blink": blink}


def blink_rate_per_min(events: pd.DataFrame, face_seconds: float) -> float:
    """Blinks per minute over ``face_seconds`` of face time (NaN when there is none)."""
    return float(len(events) * 60.0 / face_seconds) if face_seconds > 0 else float("nan")


def perclos(eye_closure: np.ndarray, *, closure: float = 0.5) -> float:
    """Fraction of face frames whose eye closure is at least ``closure`` (NaN frames ignored)."""
    values = np.asarray(eye_closure, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.mean(values >= closure)) if len(values) else float("nan")
