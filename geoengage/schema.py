"""Column specifications of the tables passed between stages.

Each table is a plain :class:`pandas.DataFrame`; its columns are described once
here, as tuples of :class:`Column`, and every public entry point checks its input
with :func:`validate`. The docs render the column tables from these tuples
(:func:`describe`).

Sign conventions (used from the per-frame feature stage on), in degrees:
``+pitch`` = chin up, ``+yaw`` = subject turns to *their* right,
``+roll`` = head tilts towards their right shoulder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .exceptions import SchemaError

__all__ = [
    "DETECTOR_POINTS",
    "DETECTOR_POINT_COLUMNS",
    "FRAMES",
    "FRAME_KEYS",
    "LANDMARK_COLUMNS",
    "N_LANDMARKS",
    "TRACK_KEYS",
    "Column",
    "describe",
    "landmark_columns",
    "track_keys",
    "validate",
    "with_columns",
]

N_LANDMARKS = 68


@dataclass(frozen=True)
class Column:
    """One documented column: name, pandas dtype kind, unit and meaning."""

    name: str
    dtype: str
    unit: str
    doc: str
    nullable: bool = True
    #: False: a table may lack the column (added after tables were first written; readers treat it as missing).
    required: bool = True


def landmark_columns(n: int = N_LANDMARKS) -> list[str]:
    """Names ``lm00_x_px, lm00_y_px, ..., lm67_y_px`` in iBUG-68 order, x before y."""
    return [f"lm{i:02d}_{axis}_px" for i in range(n) for axis in ("x", "y")]


LANDMARK_COLUMNS: tuple[str, ...] = tuple(landmark_columns())

#: The face detector's five points (YuNet), the subject's right first.
DETECTOR_POINTS = ("right_eye", "left_eye", "nose_tip", "right_mouth", "left_mouth")
#: Their columns: ``det_right_eye_x_px, det_right_eye_y_px, ...``.
DETECTOR_POINT_COLUMNS: tuple[str, ...] = tuple(f"det_{p}_{axis}_px" for p in DETECTOR_POINTS for axis in ("x", "y"))

FRAME_KEYS: tuple[str, ...] = ("video_id", "frame_idx", "time_s")

#: The per-frame table written by the landmark stage: one row per face per frame,
#: and one row with ``face_found=False`` and NaN landmarks for a frame without a face.
FRAMES: tuple[Column, ...] = (
    Column("video_id", "string", "", "Identifier of the recording: the file path relative to the input root.", False),
    Column("source_path", "string", "", "Path of the media file (or stream address) the frame came from.", False),
    Column("frame_idx", "int", "frame", "Index of the frame in the decoded stream (0-based, before sampling).", False),
    Column("time_s", "float", "s", "Presentation time of the frame from the start of the recording.", False),
    Column("frame_width_px", "int", "px", "Width of the decoded frame (missing in tables imported without it)."),
    Column("frame_height_px", "int", "px", "Height of the decoded frame (missing in tables imported without it)."),
    Column("camera_focal_px", "float", "px", "Calibrated focal length of the camera at this frame's size "
           "(ExtractConfig.focal_px or camera_hfov_deg); missing for an uncalibrated camera, whose frames get no "
           "features in mm. Optional: tables written before it was added lack it.", required=False),
    Column("frame_readable", "bool", "", "False for a frame that could not be decoded (no face, NaN features).", False),
    Column("face_found", "bool", "", "True when this row holds a face; False for a frame with no face.", False),
    Column("n_faces", "int", "count", "Number of faces found in the frame (before face_policy; with face_policy "
           "'largest' and tracking, as the last full-frame detection counted them).", False),
    Column("track_id", "int", "", "Face track within the recording (stable across frames); -1 without a face.", False),
    Column("person", "string", "", "Enrolled person matched to the track, or missing when unknown/not enrolled."),
    Column("identity_distance", "float", "euclidean", "Distance of the face encoding to the matched person (lower is closer)."),
    Column("face_left_px", "float", "px", "Left edge of the face box."),
    Column("face_top_px", "float", "px", "Top edge of the face box."),
    Column("face_width_px", "float", "px", "Width of the face box."),
    Column("face_height_px", "float", "px", "Height of the face box."),
    Column("detect_score", "float", "score", "Detector score of the box: YuNet's 0-1, or dlib HOG's (ExtractConfig.detector); "
           "NaN when the box came from tracking or crop mode."),
    Column("face_source", "string", "", "How the face box was found: 'detector', 'tracker' or 'crop'."),
    Column("expr_class", "string", "", "Most probable expression of the CNN (the largest expr_<class> column); "
           "missing without a face, without the CNN (ExtractConfig.expression=False) and in imported tables."),
) + tuple(
    Column(name, "float", "px", f"Landmark {int(name[2:4])} (iBUG-68) {name[5]} coordinate in frame pixels.")
    for name in LANDMARK_COLUMNS
) + tuple(
    Column(name, "float", "px", f"The face detector's (YuNet's) {name[4:-5].replace('_', ' ')} {name[-4]} coordinate in "
           "frame pixels; NaN where no YuNet detection placed this row's face (tracked frames, HOG, crop mode). "
           "Optional: tables written before features version 3 lack them.", required=False)
    for name in DETECTOR_POINT_COLUMNS
)


def validate(df: pd.DataFrame, schema: Sequence[Column], *, where: str) -> None:
    """Raise :class:`SchemaError`, naming the caller ``where``, if ``df`` does not match ``schema``."""
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"{where}: expected a pandas DataFrame. Got {type(df).__name__} instead.")
    present = set(df.columns.tolist())  # (iterating an Arrow-backed column index itself is ~10x slower)
    missing = [c.name for c in schema if c.required and c.name not in present]
    if missing:
        shown = missing[:8] + (["..."] if len(missing) > 8 else [])
        raise SchemaError(
            f"{where}: the table lacks required columns {shown}. "
            "Pass the per-frame table returned by extract_frames()."
        )
    required = [c.name for c in schema if not c.nullable and c.name in present]
    if required:  # one selection: each column fetched alone would copy the table's attrs again
        gaps = df[required].isna().to_numpy().any(axis=0)
        if gaps.any():
            raise SchemaError(f"{where}: column {required[int(np.flatnonzero(gaps)[0])]!r} must have no missing values.")


#: The one rule for what makes a face's time series, used by every stage (features, blinks, cleaning,
#: windows, prediction): a recording and a track within it. It never depends on other rows of the table,
#: so a recording gives the same numbers alone and in a batch. Rows without a face have ``track_id`` -1.
TRACK_KEYS: tuple[str, ...] = ("video_id", "track_id")


def track_keys(frames: pd.DataFrame | None = None) -> list[str]:
    """Columns that identify one face's time series: always ``["video_id", "track_id"]``
    (:data:`TRACK_KEYS`). ``frames`` is accepted for backward compatibility and not looked at."""
    return list(TRACK_KEYS)


def describe(schema: Sequence[Column]) -> pd.DataFrame:
    """The schema as a table (name, dtype, unit, nullable, doc), for documentation."""
    return pd.DataFrame(
        [(c.name, c.dtype, c.unit, c.nullable, c.doc) for c in schema],
        columns=["name", "dtype", "unit", "nullable", "doc"],
    )


def with_columns(table: pd.DataFrame, columns: dict[str, object]) -> pd.DataFrame:
    """A copy of ``table`` with ``columns`` set: existing ones replaced where they are, new ones appended in one
    concatenation (``DataFrame.assign`` inserts them one by one, and with pandas' Arrow-backed column names each
    insert rebuilds the name index: about 1 ms per column on a 150-column table)."""
    out = table.copy()
    new = {}
    for name, values in columns.items():
        if name in out.columns:
            out[name] = values
        else:
            new[name] = values
    if not new:
        return out
    return pd.concat([out, pd.DataFrame(new, index=out.index)], axis=1)


def python_strings() -> contextlib.AbstractContextManager[None]:
    """A context in which new pandas tables keep text (column names, ids) in pandas' Python string storage.

    pandas' per-operation overhead on tables of a few rows and ~270 columns is then about a fifth lower than with
    its default Arrow storage (features, cleaning, windows and scoring of one 512x512 image: 17.4-17.6 ms instead
    of 22.3-22.6 ms, alternating runs), with the same values. The service and live mode make such tables for every
    request or frame; batch jobs, whose tables are long, gain nothing from it. Only inside the context: the
    caller's own setting is left alone.
    """
    return pd.option_context("mode.string_storage", "python")


def float_columns(table: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """The columns ``names`` of ``table`` as one (rows, len(names)) float64 array, NaN where a value is missing.

    A few columns are fetched one by one: on a wide table ``table[names]`` first builds a new DataFrame
    (~0.3 ms even for two columns of one row, ~0.05 ms this way); many columns go through one positional selection
    (``iloc``: about half the time of selecting them by name). A missing column is a ``KeyError``.
    """
    if len(names) > 16:
        positions = table.columns.get_indexer(list(names))
        if (positions < 0).any():
            raise KeyError(f"columns not in the table: {[n for n, k in zip(names, positions, strict=True) if k < 0]}")
        return table.iloc[:, positions].to_numpy(dtype=np.float64, na_value=np.nan)
    if not len(names):
        return np.empty((len(table), 0))
    return np.column_stack([table[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in names])


def group_rows(table: pd.DataFrame, keys: Sequence[str]) -> dict[tuple[object, ...], np.ndarray]:
    """Row positions of each group of ``table`` by the columns ``keys``: ``{key tuple: ascending positions}`` in key
    order, rows with a missing key left out (as ``table.groupby(keys, sort=True).indices``, with tuple keys).

    Plain numpy on factorized keys: pandas' groupby costs ~2-3 ms per call even on a one-row table.
    """
    if not len(table):
        return {}
    if not len(keys):
        return {(): np.arange(len(table))}
    codes, uniques = [], []
    for key in keys:
        code, unique = pd.factorize(table[key], sort=True)  # missing values: -1
        codes.append(code)
        uniques.append(unique)
    order = np.lexsort(codes[::-1])  # stable: positions stay ascending within a group
    stacked = np.stack(codes)[:, order]
    starts = np.flatnonzero(np.r_[True, (stacked[:, 1:] != stacked[:, :-1]).any(axis=0)])
    groups = {}
    for start, stop in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        code = stacked[:, start]
        if (code >= 0).all():
            groups[tuple(unique[c] for unique, c in zip(uniques, code, strict=True))] = order[start:stop]
    return groups
