"""Other tools' per-frame outputs -> geoengage's per-frame table.

**OpenFace 2.x** (``FeatureExtraction`` CSV, video or image runs): landmarks ``x_i, y_i`` become
``lmNN_x_px, lmNN_y_px``; ``success`` (or, where absent, ``confidence >= min_confidence``)
becomes ``face_found``; head pose radians become degrees in geoengage's convention
(``yaw_deg = Ry``, ``pitch_deg = -Rx``, ``roll_deg = -Rz``: signs checked against geoengage's
own pose from the same landmarks on engagement_wacv, correlations 0.89, 0.63 and 0.80);
gaze angles become ``gaze_yaw_deg = -gaze_angle_x``, ``gaze_pitch_deg = -gaze_angle_y``;
``pose_T*`` become ``head_*_mm``; action units are kept as ``au<NN>_intensity`` (0-5) and
``au<NN>_presence`` (0/1); rows without a face get NaN, never 0. The keys come from
``frame`` / ``timestamp`` (video runs) or ``ImageID`` (image runs, one frame each).

**Py-Feat** (``Fex`` CSV): landmarks, ``FaceScore`` -> ``face_found`` (>= ``min_confidence``),
the face box, action units (``au<NN>_intensity``) and emotions (``expr_<class>`` in
geoengage's class names). Py-Feat's own pose angles are kept as ``pyfeat_pitch_deg`` etc.;
geoengage's pose is computed from the landmarks, so its sign convention holds.

Features geoengage derives from landmarks (eye aspect ratio, mouth, brows ...) are added with
``compute_frame_features(..., overwrite=False)``, so the imported tool's own values win.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import MediaReadError, SchemaError
from .geometry.registry import compute_frame_features
from .schema import FRAMES, validate

__all__ = ["read_openface_csv", "read_pyfeat_csv"]

_PYFEAT_EMOTIONS = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy",
                    "sadness": "sad", "surprise": "surprise", "neutral": "neutral"}


def _read_csv(path: str | Path, required: list[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(path, "no such CSV file")
    try:
        table = pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise MediaReadError(path, f"cannot be parsed as CSV ({err})") from err
    table.columns = table.columns.str.strip()
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise SchemaError(f"{path}: not this tool's CSV: it lacks columns {missing[:6]}.")
    return table


def _face_ids(table: pd.DataFrame) -> np.ndarray:
    for column in ("face_id", "face"):  # video runs write face_id, image runs face
        if column in table:
            return table[column].to_numpy()
    return np.zeros(len(table), dtype=np.int64)


def _landmarks(table: pd.DataFrame, found: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for i in range(68):
        for axis in ("x", "y"):
            values = table[f"{axis}_{i}"].to_numpy(dtype=np.float64)
            out[f"lm{i:02d}_{axis}_px"] = np.where(found, values, np.nan)
    return out


def _frame_table(table: pd.DataFrame, *, found: np.ndarray, video_id: pd.Series, source: Path,
                 frame_idx: np.ndarray, time_s: np.ndarray, extra: dict[str, np.ndarray]) -> pd.DataFrame:
    n = len(table)
    nan = np.full(n, np.nan)
    columns: dict[str, object] = {
        "video_id": pd.array(video_id.astype(str), dtype="string"),
        "source_path": pd.array([str(source)] * n, dtype="string"),
        "frame_idx": frame_idx.astype(np.int64), "time_s": time_s.astype(np.float64),
        "frame_width_px": pd.array([pd.NA] * n, dtype="Int64"), "frame_height_px": pd.array([pd.NA] * n, dtype="Int64"),
        "frame_readable": np.ones(n, dtype=bool), "face_found": found, "n_faces": found.astype(np.int64),
        "track_id": np.where(found, _face_ids(table), -1).astype(np.int64),
        "person": pd.array([pd.NA] * n, dtype="string"), "identity_distance": nan,
        "face_left_px": nan, "face_top_px": nan, "face_width_px": nan, "face_height_px": nan, "detect_score": nan,
        "face_source": pd.array([pd.NA] * n, dtype="string"), "expr_class": pd.array([pd.NA] * n, dtype="string"),
    }
    columns.update(_landmarks(table, found))
    columns.update({k: np.where(found, v, np.nan) for k, v in extra.items()})  # the tool's values, NaN without a face
    frames = pd.DataFrame(columns)
    validate(frames, FRAMES, where=f"import of {source}")
    return compute_frame_features(frames, overwrite=False)


def read_openface_csv(path: str | Path, *, min_confidence: float = 0.5, video_id: str | None = None) -> pd.DataFrame:
    """An OpenFace 2.x CSV as geoengage's per-frame table with features (see the module docstring)."""
    path = Path(path)
    table = _read_csv(path, ["confidence", "x_0", "y_67", "pose_Rx", "pose_Ry", "pose_Rz"])
    confidence = table["confidence"].to_numpy(dtype=np.float64)
    if "success" in table:
        found = (table["success"].to_numpy() == 1) & np.isfinite(confidence)
    else:
        found = confidence >= min_confidence
    if "ImageID" in table:
        ids, frame_idx, time_s = table["ImageID"], np.zeros(len(table)), np.zeros(len(table))
    else:
        ids = pd.Series([video_id or path.stem] * len(table))
        frame_idx = table["frame"].to_numpy() - 1 if "frame" in table else np.arange(len(table))
        time_s = table["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in table else frame_idx / 30.0
    extra = {
        "yaw_deg": np.degrees(table["pose_Ry"].to_numpy(dtype=np.float64)),
        "pitch_deg": -np.degrees(table["pose_Rx"].to_numpy(dtype=np.float64)),
        "roll_deg": -np.degrees(table["pose_Rz"].to_numpy(dtype=np.float64)),
        "openface_confidence": confidence,
    }
    for axis in ("x", "y", "z"):
        if f"pose_T{axis}" in table:
            extra[f"head_{axis}_mm"] = table[f"pose_T{axis}"].to_numpy(dtype=np.float64)
    if "gaze_angle_x" in table:
        extra["gaze_yaw_deg"] = -np.degrees(table["gaze_angle_x"].to_numpy(dtype=np.float64))
        extra["gaze_pitch_deg"] = -np.degrees(table["gaze_angle_y"].to_numpy(dtype=np.float64))
    for column in table.columns:
        match = re.fullmatch(r"AU(\d+)_([rc])", column)
        if match:
            kind = "intensity" if match.group(2) == "r" else "presence"
            extra[f"au{match.group(1)}_{kind}"] = table[column].to_numpy(dtype=np.float64)
    return _frame_table(table, found=found, video_id=ids, source=path, frame_idx=np.asarray(frame_idx),
                        time_s=np.asarray(time_s), extra=extra)


def read_pyfeat_csv(path: str | Path, *, min_confidence: float = 0.5, video_id: str | None = None,
                    fps: float = 30.0) -> pd.DataFrame:
    """A Py-Feat detector CSV as geoengage's per-frame table with features (see the module docstring)."""
    path = Path(path)
    table = _read_csv(path, ["FaceScore", "x_0", "y_67"])
    score = table["FaceScore"].to_numpy(dtype=np.float64)
    found = np.nan_to_num(score, nan=0.0) >= min_confidence
    frame_idx = table["frame"].to_numpy() if "frame" in table else np.arange(len(table))
    ids = table["input"].map(lambda p: Path(str(p)).name) if "input" in table and video_id is None else \
        pd.Series([video_id or path.stem] * len(table))
    extra: dict[str, np.ndarray] = {"detect_score": score}
    for column, name in (("FaceRectX", "face_left_px"), ("FaceRectY", "face_top_px"),
                         ("FaceRectWidth", "face_width_px"), ("FaceRectHeight", "face_height_px")):
        if column in table:
            extra[name] = table[column].to_numpy(dtype=np.float64)
    for column in ("Pitch", "Roll", "Yaw"):
        if column in table:
            extra[f"pyfeat_{column.lower()}_deg"] = table[column].to_numpy(dtype=np.float64)
    for column in table.columns:
        match = re.fullmatch(r"AU(\d+)", column)
        if match:
            extra[f"au{match.group(1)}_intensity"] = table[column].to_numpy(dtype=np.float64)
        if column in _PYFEAT_EMOTIONS:
            extra[f"expr_{_PYFEAT_EMOTIONS[column]}"] = table[column].to_numpy(dtype=np.float64)
    return _frame_table(table, found=found, video_id=ids, source=path, frame_idx=np.asarray(frame_idx),
                        time_s=np.asarray(frame_idx) / fps, extra=extra)
