"""Other tools' per-frame outputs -> geoengage's per-frame table, with nothing lost silently.

**OpenFace 2.x** (``FeatureExtraction`` / ``FaceLandmarkImg`` CSVs, with or without landmarks): landmarks
``x_i, y_i`` become ``lmNN_x_px, lmNN_y_px``; ``success`` (or, where absent, ``confidence >=
min_confidence``) becomes ``face_found``; head pose radians become degrees in geoengage's convention
(``yaw_deg = Ry``, ``pitch_deg = -Rx``, ``roll_deg = -Rz``: signs checked against geoengage's own pose
from the same landmarks); gaze angles become ``gaze_yaw_deg = -gaze_angle_x``, ``gaze_pitch_deg =
-gaze_angle_y``; ``pose_T*`` become ``head_*_mm`` (kept only with the run's calibrated focal length, ``focal_px``;
else NaN, as for geoengage's own uncalibrated frames); action units become ``auNN_intensity`` (0-5) and
``auNN_presence`` (0/1). A CSV without landmarks (``-pose -aus``) still gives pose, gaze and AUs; the
landmark features are NaN and the import summary says why. Keys come from ``frame`` / ``timestamp``
(1-based frames; a file whose frames are all 0 is numbered 0-based, and repeated frame numbers fall
back to row order, both counted as notes) or ``ImageID`` (image runs, one frame each).

**Py-Feat** (``Fex`` CSVs, 0.5-0.7 and 2.x column sets): landmarks, ``FaceScore`` -> ``face_found``
(>= ``min_confidence``), the face box, action units as ``auNN_probability`` (0-1), emotions as
``expr_<class>`` in geoengage's class names (``anger``/``Anger``/``angry`` ... ``happiness``/``Happy``,
any case; ``contempt`` as ``expr_contempt``), and Py-Feat's head pose as ``pyfeat_yaw_deg``,
``pyfeat_pitch_deg``, ``pyfeat_roll_deg`` in geoengage's signs (Py-Feat's roll is negated: it is the
opposite of geoengage's; yaw and pitch agree). Each row's recording is its ``input`` path (the image or
video the tool read), never a bare file name; rows of a video keep their ``frame`` numbers.

**Image features**: where the media a row came from is a still image that can be read (Py-Feat's
``input``, or the manifest's ``media_path``), the iris position and face quality are computed from it with
the imported landmarks, so geoengage's gaze and on-screen estimates exist for imported rows too.

**Frame size**: geoengage's pose, gaze and on-screen features need the frame size (the camera model). It
is taken from the tool's output where present (``frame_width``/``frame_height`` columns), from the media
file when the path in the CSV (or the manifest's ``media_path``) can be read, or from ``frame_size``;
otherwise those features are NaN and the summary records why.

**Recording identity**: a recording is named by the path it came from. When the same name comes from
two CSVs (Py-Feat's ``input`` holding ``0001.jpg`` in one CSV per class), the names are kept apart by
prefixing the CSV's name, and the summary counts them.

Every import reports rows in, rows kept and rows dropped with reasons (a truncated row, a duplicated
row), and one bad file is a recorded failure while the others are imported (:func:`import_tables`).
Features geoengage derives from landmarks (eye aspect ratio, mouth, brows ...) are added with
``compute_frame_features(..., overwrite=False)``, so the imported tool's own values win; imported
signals are documented in :data:`IMPORTED_SIGNALS` and aggregated into windows by
:func:`imported_feature_set`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .config import parse_focal_px
from .exceptions import GeoEngageError, InvalidParameterError, MediaReadError, SchemaError
from .extract import FAILURE_COLUMNS
from .geometry.registry import compute_frame_features, image_features
from .media import IMAGE_EXTENSIONS, image_header, media_kind, probe_video, read_image
from .schema import FRAMES, LANDMARK_COLUMNS, validate
from .windows import FeatureName, FeatureSet, load_feature_set

__all__ = ["IMPORTED_SIGNALS", "ImportResult", "import_tables", "imported_feature_set", "read_openface_csv",
           "read_pyfeat_csv"]

logger = logging.getLogger(__name__)

_EMOTIONS = {"anger": "angry", "angry": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy",
             "happy": "happy", "sadness": "sad", "sad": "sad", "surprise": "surprise", "neutral": "neutral",
             "contempt": "contempt"}

#: Imported per-frame signals: name pattern -> (source tool, unit, convention), and the window aggregations
#: they get. ``NN`` is the action unit's number.
IMPORTED_SIGNALS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    r"au\d\d_intensity": ("OpenFace 2.x AUxx_r", "intensity 0-5", "FACS action unit intensity", ("mean", "p90")),
    r"au\d\d_presence": ("OpenFace 2.x AUxx_c", "flag 0/1", "FACS action unit present", ("frac",)),
    r"au\d\d_probability": ("Py-Feat AUxx", "probability 0-1", "FACS action unit detected", ("mean", "p90")),
    r"pyfeat_(yaw|pitch|roll)_deg": ("Py-Feat Yaw/Pitch/Roll", "deg",
                                     ("geoengage's signs: +yaw subject's right, +pitch chin up, +roll right shoulder "
                                     "(Py-Feat's Roll negated)"), ("median", "std")),
    r"openface_confidence": ("OpenFace 2.x confidence", "0-1", "landmark fit confidence", ("mean",)),
}


def _read_csv(path: Path, required: list[str]) -> pd.DataFrame:
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


def _drop_truncated(table: pd.DataFrame, dropped: Counter) -> pd.DataFrame:
    """Rows whose last columns are all empty while other rows have them: a file cut off mid-row (counted,
    dropped)."""
    tail = list(table.columns[-3:])
    empty_tail = table[tail].isna().all(axis=1)
    empty = empty_tail & ~empty_tail.all()  # a no-face row (NaN values, the tail present) stays
    if empty.any():
        dropped["truncated row"] += int(empty.sum())
    return table[~empty].reset_index(drop=True)


def _face_ids(table: pd.DataFrame) -> np.ndarray:
    for column in ("face_id", "face"):  # video runs write face_id, image runs face
        if column in table:
            return table[column].to_numpy()
    return np.zeros(len(table), dtype=np.int64)


def _has_landmarks(table: pd.DataFrame) -> bool:
    return all(f"{a}_{i}" in table for i in (0, 67) for a in ("x", "y"))


def _landmarks(table: pd.DataFrame, found: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    present = _has_landmarks(table)
    for i in range(68):
        for axis in ("x", "y"):
            values = table[f"{axis}_{i}"].to_numpy(dtype=np.float64) if present else np.full(len(table), np.nan)
            out[f"lm{i:02d}_{axis}_px"] = np.where(found, values, np.nan)
    return out


def _media_size(path: str | None) -> tuple[float, float]:
    """(width, height) of a media file as geoengage decodes it (EXIF orientation applied to images), read from
    its header; NaN when it cannot be read."""
    if not path or not Path(path).is_file():
        return np.nan, np.nan
    if media_kind(path) == "video":
        try:
            info = probe_video(path)
        except MediaReadError:
            return np.nan, np.nan
        return float(info.width), float(info.height)
    header = image_header(path)  # one read of the header: size and orientation
    if header.width is None or header.height is None:
        return np.nan, np.nan
    width, height = float(header.width), float(header.height)
    return (height, width) if header.orientation in (5, 6, 7, 8) else (width, height)  # read_image turns these


def _frame_sizes(table: pd.DataFrame, media: pd.Series | None, frame_size: tuple[int, int] | None,
                 base: Path, notes: Counter) -> np.ndarray:
    n = len(table)
    if {"frame_width", "frame_height"} <= set(table.columns):
        return table[["frame_width", "frame_height"]].to_numpy(dtype=np.float64)
    sizes = np.full((n, 2), np.nan)
    if media is not None:
        cache: dict[str, tuple[float, float]] = {}
        for i, value in enumerate(media.astype(str)):
            path = value if Path(value).is_absolute() else str(base / value)
            if path not in cache:
                cache[path] = _media_size(path)
            sizes[i] = cache[path]
    if frame_size is not None:
        sizes[np.isnan(sizes).any(axis=1)] = frame_size
    unknown = int(np.isnan(sizes).any(axis=1).sum())
    if unknown:
        notes["frame size unknown (head pose from an assumed camera, pose_camera_assumed 1; gaze and on_screen NaN): "
              "give --frame-size or keep the media reachable"] += unknown
    return sizes


def _image_features(frames: pd.DataFrame, media: pd.Series | None, base: Path) -> pd.DataFrame:
    """The ``image`` features (iris position, face quality) of face rows whose media is a readable still image,
    from that image and the imported landmarks; other rows keep NaN."""
    if media is None:
        return frames

    values: dict[int, dict[str, float]] = {}
    grays: dict[str, np.ndarray | None] = {}
    landmarks = frames[list(LANDMARK_COLUMNS)].to_numpy(dtype=np.float64).reshape(len(frames), 68, 2)
    for i, value in enumerate(media.astype(str)):
        if not frames["face_found"].iloc[i] or np.isnan(landmarks[i]).any():
            continue
        path = value if Path(value).is_absolute() else str(base / value)
        if Path(path).suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if path not in grays:
            try:
                grays[path] = cv2.cvtColor(read_image(path), cv2.COLOR_BGR2GRAY) if Path(path).is_file() else None
            except MediaReadError:
                grays[path] = None
        if grays[path] is not None:
            values[i] = image_features(grays[path], landmarks[i])
    if not values:
        return frames
    frames = frames.copy()
    for name in next(iter(values.values())):
        column = np.full(len(frames), np.nan) if name not in frames else frames[name].to_numpy(dtype=np.float64).copy()
        for i, row in values.items():
            column[i] = row[name]
        frames[name] = column
    return frames


def _frame_table(table: pd.DataFrame, *, found: np.ndarray, video_id: pd.Series, source: Path,
                 frame_idx: np.ndarray, time_s: np.ndarray, sizes: np.ndarray,
                 extra: dict[str, np.ndarray], media: pd.Series | None = None,
                 focal_px: float | None = None) -> pd.DataFrame:
    n = len(table)
    nan = np.full(n, np.nan)
    focal_px = parse_focal_px(focal_px, where=f"{source}: `focal_px`")
    width = pd.array([None if np.isnan(v) else int(round(v)) for v in sizes[:, 0]], dtype="Int64")
    height = pd.array([None if np.isnan(v) else int(round(v)) for v in sizes[:, 1]], dtype="Int64")
    columns: dict[str, object] = {
        "video_id": pd.array(video_id.astype(str), dtype="string"),
        "source_path": pd.array([str(source)] * n, dtype="string"),
        "frame_idx": frame_idx.astype(np.int64), "time_s": time_s.astype(np.float64),
        "frame_width_px": width, "frame_height_px": height,
        "camera_focal_px": np.full(n, np.nan if focal_px is None else focal_px),
        "frame_readable": np.ones(n, dtype=bool), "face_found": found, "n_faces": found.astype(np.int64),
        "track_id": np.where(found, _face_ids(table), -1).astype(np.int64),
        "person": pd.array([pd.NA] * n, dtype="string"), "identity_distance": nan,
        "face_left_px": nan, "face_top_px": nan, "face_width_px": nan, "face_height_px": nan, "detect_score": nan,
        "face_source": pd.array([pd.NA] * n, dtype="string"), "expr_class": pd.array([pd.NA] * n, dtype="string"),
    }
    columns.update(_landmarks(table, found))
    columns.update({k: np.where(found, v, np.nan) for k, v in extra.items()})  # the tool's values, NaN without a face
    frames = _image_features(pd.DataFrame(columns), media, source.parent)
    validate(frames, FRAMES, where=f"import of {source}")
    return compute_frame_features(frames, overwrite=False)


def _frames_of(table: pd.DataFrame, notes: Counter) -> np.ndarray:
    """0-based frame indices from OpenFace's ``frame`` column (1-based; all zeros or repeats handled)."""
    if "frame" not in table:
        return np.arange(len(table))
    frame = table["frame"].to_numpy(dtype=np.int64)
    keys = pd.DataFrame({"frame": frame, "face": _face_ids(table)})
    if keys.duplicated().any():
        notes["frame numbers repeat: row order used as the frame index"] += len(table)
        return np.arange(len(table))
    return frame - 1 if frame.min() >= 1 else frame


def _read_openface(path: Path, *, min_confidence: float, video_id: str | None, fps: float | None,
                   frame_size: tuple[int, int] | None, media: str | None, notes: Counter,
                   dropped: Counter, focal_px: float | None = None) -> pd.DataFrame:
    table = _read_csv(path, ["confidence"])
    if not ({"pose_Rx", "pose_Ry", "pose_Rz"} <= set(table.columns) or _has_landmarks(table)
            or any(re.fullmatch(r"AU\d+_[rc]", c) for c in table.columns)):
        raise SchemaError(f"{path}: not an OpenFace CSV: it has no landmarks, pose or action units.")
    table = _drop_truncated(table, dropped)
    if not _has_landmarks(table):
        notes["no landmarks in the CSV (-pose -aus?): landmark features NaN"] += len(table)
    confidence = table["confidence"].to_numpy(dtype=np.float64)
    if "success" in table:
        found = (table["success"].to_numpy() == 1) & np.isfinite(confidence)
    else:
        found = confidence >= min_confidence
    if "ImageID" in table:
        ids, frame_idx, time_s = table["ImageID"], np.zeros(len(table)), np.zeros(len(table))
    else:
        ids = pd.Series([video_id or path.stem] * len(table))
        frame_idx = _frames_of(table, notes)
        time_s = (table["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in table and fps is None
                  else frame_idx / (fps or 30.0))
    extra: dict[str, np.ndarray] = {"openface_confidence": confidence}
    if {"pose_Rx", "pose_Ry", "pose_Rz"} <= set(table.columns):
        extra.update(yaw_deg=np.degrees(table["pose_Ry"].to_numpy(dtype=np.float64)),
                     pitch_deg=-np.degrees(table["pose_Rx"].to_numpy(dtype=np.float64)),
                     roll_deg=-np.degrees(table["pose_Rz"].to_numpy(dtype=np.float64)))
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
            extra[f"au{int(match.group(1)):02d}_{kind}"] = table[column].to_numpy(dtype=np.float64)
    media_column = pd.Series([media] * len(table)) if media else None
    sizes = _frame_sizes(table, media_column, frame_size, path.parent, notes)
    return _frame_table(table, found=found, video_id=ids, source=path, frame_idx=np.asarray(frame_idx),
                        time_s=np.asarray(time_s), sizes=sizes, extra=extra, media=media_column,
                        focal_px=focal_px)


def _read_pyfeat(path: Path, *, min_confidence: float, video_id: str | None, fps: float | None,
                 frame_size: tuple[int, int] | None, media: str | None, notes: Counter,
                 dropped: Counter, focal_px: float | None = None) -> pd.DataFrame:
    table = _read_csv(path, ["FaceScore", "x_0", "y_67"])
    table = _drop_truncated(table, dropped)
    score = table["FaceScore"].to_numpy(dtype=np.float64)
    found = np.nan_to_num(score, nan=0.0) >= min_confidence
    frame_idx = table["frame"].to_numpy(dtype=np.int64) if "frame" in table else np.zeros(len(table), dtype=np.int64)
    if video_id is not None:
        ids = pd.Series([video_id] * len(table))
    elif "input" in table:
        ids = table["input"].astype(str)  # the full path the tool read: never a bare file name
    else:
        ids = pd.Series([path.stem] * len(table))
        if "frame" not in table:
            frame_idx = np.arange(len(table))
    if "approx_time" in table and fps is None:
        time_s = pd.to_numeric(table["approx_time"], errors="coerce").to_numpy(dtype=np.float64)
        time_s = np.where(np.isfinite(time_s), time_s, frame_idx / 30.0)
    else:
        time_s = frame_idx / (fps or 30.0)
    extra: dict[str, np.ndarray] = {"detect_score": score}
    for column, name in (("FaceRectX", "face_left_px"), ("FaceRectY", "face_top_px"),
                         ("FaceRectWidth", "face_width_px"), ("FaceRectHeight", "face_height_px")):
        if column in table:
            extra[name] = table[column].to_numpy(dtype=np.float64)
    for column, sign in (("Pitch", 1.0), ("Roll", -1.0), ("Yaw", 1.0)):
        if column in table:
            extra[f"pyfeat_{column.lower()}_deg"] = sign * table[column].to_numpy(dtype=np.float64)
    unknown = []
    for column in table.columns:
        match = re.fullmatch(r"AU(\d+)", column)
        if match:
            extra[f"au{int(match.group(1)):02d}_probability"] = table[column].to_numpy(dtype=np.float64)
        elif column.lower() in _EMOTIONS:
            extra[f"expr_{_EMOTIONS[column.lower()]}"] = table[column].to_numpy(dtype=np.float64)
        elif not re.fullmatch(r"[xy]_\d+|Face\w+|Pitch|Roll|Yaw|frame|input|approx_time|frame_(width|height)", column):
            unknown.append(column)
    if unknown:
        notes[f"columns not imported: {', '.join(unknown[:8])}{' ...' if len(unknown) > 8 else ''}"] += len(table)
    media_column = table["input"] if media is None and "input" in table else (
        pd.Series([media] * len(table)) if media else None)
    sizes = _frame_sizes(table, media_column, frame_size, path.parent, notes)
    return _frame_table(table, found=found, video_id=ids, source=path, frame_idx=np.asarray(frame_idx),
                        time_s=np.asarray(time_s, dtype=np.float64), sizes=sizes, extra=extra, media=media_column,
                        focal_px=focal_px)


_READERS = {"openface": _read_openface, "pyfeat": _read_pyfeat}


def read_openface_csv(path: str | Path, *, min_confidence: float = 0.5, video_id: str | None = None,
                      fps: float | None = None, frame_size: tuple[int, int] | None = None,
                      focal_px: float | None = None) -> pd.DataFrame:
    """An OpenFace 2.x CSV as geoengage's per-frame table with features (see the module docstring)."""
    return _READERS["openface"](Path(path), min_confidence=min_confidence, video_id=video_id, fps=fps,
                                frame_size=frame_size, media=None, notes=Counter(), dropped=Counter(),
                                focal_px=focal_px)


def read_pyfeat_csv(path: str | Path, *, min_confidence: float = 0.5, video_id: str | None = None,
                    fps: float | None = None, frame_size: tuple[int, int] | None = None,
                    focal_px: float | None = None) -> pd.DataFrame:
    """A Py-Feat detector CSV as geoengage's per-frame table with features (see the module docstring)."""
    return _READERS["pyfeat"](Path(path), min_confidence=min_confidence, video_id=video_id, fps=fps,
                              frame_size=frame_size, media=None, notes=Counter(), dropped=Counter(),
                              focal_px=focal_px)


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_tables` produced: the per-frame table, the failed files and the row accounting."""

    frames: pd.DataFrame
    failures: pd.DataFrame
    rows_in: int
    dropped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    renamed: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"files": int(self.frames["source_path"].nunique()) if len(self.frames) else 0,
                "files_failed": len(self.failures), "rows_in": self.rows_in, "rows_kept": len(self.frames),
                "rows_dropped": sum(self.dropped.values()), "dropped_by_reason": dict(self.dropped),
                "recordings": int(self.frames["video_id"].nunique()) if len(self.frames) else 0,
                "recordings_renamed_apart": self.renamed, "notes": dict(self.notes),
                "face_yield": float(self.frames["face_found"].mean()) if len(self.frames) else None}


def _manifest_items(sources: list[str | Path]) -> list[dict[str, object]]:
    """Each CSV source as ``{"path": ..., <manifest columns>}``; a manifest is a CSV with a ``path`` column
    that names the tool's CSVs (other columns: label, subject_id, fps, frame_width/frame_height, media_path)."""
    items: list[dict[str, object]] = []
    for source in sources:
        source = Path(source)
        if source.suffix.lower() == ".csv" and source.is_file():
            try:
                head = pd.read_csv(source, nrows=0, skipinitialspace=True).columns.str.strip()
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
                items.append({"path": source})  # not readable as CSV: the reader records why, the others go on
                continue
            if "path" in head and "x_0" not in head and "confidence" not in head and "FaceScore" not in head:
                manifest = pd.read_csv(source)
                for row in manifest.to_dict(orient="records"):
                    path = Path(str(row.pop("path")))
                    items.append({"path": path if path.is_absolute() else source.parent / path, **row})
                continue
        items.append({"path": source})
    return items


def import_tables(sources: list[str | Path], *, tool: str, min_confidence: float = 0.5, fps: float | None = None,
                  frame_size: tuple[int, int] | None = None, focal_px: float | None = None) -> ImportResult:
    """Import several tool CSVs (or manifests of them) into one per-frame table, accounting for every row.

    Parameters
    ----------
    sources : list of paths
        The tool's CSVs, or CSV manifests with a ``path`` column naming them and any other columns
        (``label``, ``subject_id``, ``fps``, ``frame_width``/``frame_height``, ``media_path``), carried
        into every row of that CSV (and so into the windows).
    tool : {"openface", "pyfeat"}
    fps : float, optional
        Frame rate for times (default: the tool's timestamps, else 30).
    frame_size : (width, height), optional
        Frame size where neither the CSV nor the media file gives it.
    focal_px : float, optional
        The calibrated focal length (px) the tool was run with (OpenFace's ``-fx``; a manifest's ``focal_px``
        column sets it per CSV). Without it the imported head position (``pose_T*``) and every other feature in
        mm are NaN: OpenFace's default camera is assumed, not measured.

    Returns
    -------
    ImportResult
        A failing file is recorded in ``failures`` (path, error, message) and the others are imported;
        ``rows_in`` counts the data rows of the files imported, each kept or dropped with a reason.
    """
    if tool not in _READERS:
        raise InvalidParameterError(f"`tool` must be one of {sorted(_READERS)}. Got {tool!r} instead.")
    reserved = {c.name for c in FRAMES}
    tables, failures = [], []
    dropped: Counter = Counter()
    notes: Counter = Counter()
    rows_in = 0
    for item in _manifest_items(sources):
        path = Path(item.pop("path"))
        extra = {k: v for k, v in item.items() if not (isinstance(v, float) and np.isnan(v))}
        try:  # a manifest value that does not parse is this CSV's recorded failure
            item_fps = float(extra.pop("fps")) if "fps" in extra else fps
            size = frame_size
            if "frame_width" in extra and "frame_height" in extra:
                size = (int(extra.pop("frame_width")), int(extra.pop("frame_height")))
            media = str(extra.pop("media_path")) if "media_path" in extra else None
            focal = (parse_focal_px(extra.pop("focal_px"), where=f"{path}: manifest column 'focal_px'")
                     if "focal_px" in extra else focal_px)
            clashes = sorted(set(extra) & reserved)
            if clashes:
                raise SchemaError(f"{path}: manifest columns {clashes} clash with per-frame columns; rename them.")
            file_dropped: Counter = Counter()
            table = _READERS[tool](path, min_confidence=min_confidence, video_id=None, fps=item_fps,
                                   frame_size=size, media=media, notes=notes, dropped=file_dropped, focal_px=focal)
            dropped.update(file_dropped)
            with path.open("rb") as handle:  # a read file's data lines: each is kept or dropped with a reason
                rows_in += max(0, sum(1 for line in handle if line.strip()) - 1)
        except (GeoEngageError, ValueError, KeyError) as err:
            logger.warning("%s", err)
            failures.append({"video_id": path.stem, "source_path": str(path), "error": type(err).__name__,
                             "message": str(err) if isinstance(err, GeoEngageError) else f"{path}: {err}"})
            continue
        tables.append(table.assign(**extra) if extra else table)
    frames = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=[c.name for c in FRAMES])
    renamed = 0
    if len(frames):
        owners = frames.groupby("video_id", sort=False)["source_path"].nunique()
        shared = owners[owners > 1].index
        if len(shared):  # the same recording name from two CSVs: kept apart, named by CSV too
            clash = frames["video_id"].isin(shared)
            stems = frames.loc[clash, "source_path"].map(lambda p: Path(str(p)).stem)
            frames.loc[clash, "video_id"] = stems + "/" + frames.loc[clash, "video_id"].astype(str)
            renamed = len(shared)
        keys = ["video_id", "frame_idx", "track_id"]
        duplicated = frames.duplicated(keys) & frames["face_found"]
        if duplicated.any():
            dropped["duplicated (recording, frame, face) row"] += int(duplicated.sum())
            frames = frames[~duplicated].reset_index(drop=True)

    return ImportResult(frames, pd.DataFrame(failures, columns=FAILURE_COLUMNS), rows_in, dict(dropped),
                        dict(notes), renamed)


def imported_feature_set(frames: pd.DataFrame, base: str | Path | FeatureSet = "default") -> FeatureSet:
    """``base`` plus window aggregations of every imported signal the table has (:data:`IMPORTED_SIGNALS`)."""
    fset = load_feature_set(base)
    features = list(fset.features)
    have = {str(f) for f in features}
    for column in frames.columns:
        for pattern, (_, _, _, aggs) in IMPORTED_SIGNALS.items():
            if re.fullmatch(pattern, column) and frames[column].notna().any():
                for agg in aggs:
                    name = FeatureName(column, agg)
                    if str(name) not in have:
                        features.append(name)
                        have.add(str(name))
    return FeatureSet(f"{fset.name}+imported", tuple(features))
