"""The per-frame feature registry: every feature's name, unit, range and meaning, defined once.

Feature functions register themselves with :func:`frame_features`, in one of six kinds,
computed in this order:

=============  =============================================================================================
``image``      per face, during extraction, from the grayscale frame and its 68 landmarks
               (gaze ratios from the pupils, image quality): ``f(gray, landmarks) -> {name: float}``
``faces``      during extraction, batched over aligned face crops from
               :func:`geoengage.normalize.normalize_face` (expression probabilities from the CNN):
               ``f(faces (n, 48, 48) float32) -> {name: ndarray (n,)}``
``eyes``       during extraction, batched over both eyes' normalised patches from
               :func:`geoengage.normalize.normalize_eyes` (gaze from the gaze CNN):
               ``f(patches: EyePatches) -> {name: ndarray (n,)}``
``landmarks``  vectorised over the table, from landmarks and frame size (pose, blink, mouth, brows):
               ``f(landmarks (n, 68, 2), frame_size (n, 2)) -> {name: ndarray (n,)}``; a function that also
               takes ``focal_px`` gets the calibrated focal lengths (n,) (NaN: uncalibrated), one that takes
               ``points`` the face detector's five points (n, 5, 2) (NaN where none)
``derived``    from other features' columns (gaze direction, on-screen):
               ``f(table) -> {name: ndarray (n,)}``
``track``      over time within each face track (blink events): ``f(table) -> {name: ndarray (n,)}``
=============  =============================================================================================

Every function returns NaN for a row without a face, never 0. ``geoengage features`` lists
the registry and ``features/FEATURES.md`` is generated from it (:func:`features_markdown`).

**A 68-point fit that does not hold the face** (``landmarks_ok`` 0: it disagrees with the face detector's five
points, a head turned past what dlib's predictor holds; :mod:`geoengage.geometry.pose`) gives no feature: after the
``landmarks`` kind, every ``image``, ``faces``, ``eyes`` and ``landmarks`` feature of such a row is set NaN except
the head pose the five points give (:data:`FROM_POINTS`), so the ``derived`` and ``track`` features built on them are
NaN too (``on_screen`` then follows the head: :mod:`geoengage.geometry.gaze`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..schema import DETECTOR_POINT_COLUMNS, LANDMARK_COLUMNS, Column, float_columns, with_columns

# importing a feature module registers its features (geoengage.geometry.base.frame_features)
from . import blink, expression, expression_cnn, gaze, gaze_cnn, pose, quality  # noqa: F401
from .base import CAMERA_FOCAL, KINDS, REGISTERED_FUNCTIONS, REGISTERED_SPECS, FeatureSpec, frame_features

__all__ = [
    "CAMERA_FOCAL",
    "FEATURES_VERSION",
    "FROM_POINTS",
    "KINDS",
    "FeatureSpec",
    "compute_frame_features",
    "distance_features",
    "eye_patch_features",
    "face_crop_features",
    "feature_columns",
    "feature_specs",
    "features_markdown",
    "frame_features",
    "image_features",
]

#: The feature modules; importing one registers its features. Within a kind, features are listed in this module
#: order (then as each module registers them), whatever order the modules happened to be imported in.
MODULES = ("blink", "expression", "expression_cnn", "gaze", "gaze_cnn", "pose", "quality")


def feature_specs(kind: str | None = None) -> list[FeatureSpec]:
    """Every registered feature (of one ``kind``), in computation order."""
    return [s for s in _ordered_specs(len(REGISTERED_SPECS)) if kind is None or s.kind == kind]


@functools.lru_cache(maxsize=4)
def _ordered_specs(n_registered: int) -> tuple[FeatureSpec, ...]:
    """The registry in computation order, sorted once per registry size (a registration invalidates it)."""
    order = {k: i for i, k in enumerate(KINDS)}
    return tuple(sorted(REGISTERED_SPECS.values(), key=lambda s: (order[s.kind], MODULES.index(s.module))))  # stable


def feature_columns() -> tuple[Column, ...]:
    """The feature columns of the per-frame table, as schema :class:`~geoengage.schema.Column` s."""
    return tuple(Column(s.name, "float", s.unit, s.doc) for s in feature_specs())


def image_features(gray: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """All ``image`` features of one face (used during extraction, while the frame is in memory)."""
    out: dict[str, float] = {}
    for kind, func, names in REGISTERED_FUNCTIONS:
        if kind == "image":
            values = func(gray, landmarks)
            out.update({name: float(values[name]) for name in names})
    return out


def _batch_features(kind: str, batch: Any) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for fkind, func, names in REGISTERED_FUNCTIONS:
        if fkind == kind:
            values = func(batch)
            out.update({name: np.asarray(values[name], dtype=np.float64) for name in names})
    return out


def face_crop_features(faces: np.ndarray) -> dict[str, np.ndarray]:
    """All ``faces`` features of a batch of aligned crops (n, 48, 48): ``{name: ndarray (n,)}``."""
    return _batch_features("faces", faces)


def eye_patch_features(patches: Any) -> dict[str, np.ndarray]:
    """All ``eyes`` features of a batch of :class:`~geoengage.normalize.EyePatches`: ``{name: ndarray (n,)}``."""
    return _batch_features("eyes", patches)


@functools.cache
def _keywords(func: Callable) -> frozenset[str]:
    return frozenset(inspect.signature(func).parameters)


def compute_frame_features(frames: pd.DataFrame, *, overwrite: bool = True,
                           options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A copy of the per-frame table with every ``landmarks``, ``derived`` and ``track`` feature added.

    Features in millimetres (head position, where the gaze meets the screen plane) are NaN in rows without a
    calibrated camera (column ``camera_focal_px`` NaN or absent; :mod:`geoengage.geometry.pose`). Face crops
    (``options["gaze"].camera_frames`` False) are posed with their own camera model
    (:data:`~geoengage.geometry.pose.CROP_FOCAL_FACTOR`), not the full-frame one.

    ``options`` are settings passed by keyword to the ``derived`` and ``track`` functions that take
    them: ``{"gaze": GazeConfig(...)}`` (screen geometry, :mod:`geoengage.geometry.gaze`),
    ``{"blink": BlinkConfig(...)}``; absent ones take their defaults.

    ``image``, ``faces`` and ``eyes`` features must already be columns (extraction adds them); where they are
    absent (a table imported from another tool) they are added as NaN. With ``overwrite=False``,
    feature columns the table already has (e.g. OpenFace's head pose) are kept as they are
    and used by the features derived from them.
    """
    landmarks = float_columns(frames, LANDMARK_COLUMNS).reshape(len(frames), 68, 2)
    frame_size = float_columns(frames, ("frame_width_px", "frame_height_px"))
    focal = (float_columns(frames, (CAMERA_FOCAL,))[:, 0] if CAMERA_FOCAL in frames.columns
             else np.full(len(frames), np.nan))
    points = (float_columns(frames, DETECTOR_POINT_COLUMNS).reshape(len(frames), 5, 2)
              if set(DETECTOR_POINT_COLUMNS) <= set(frames.columns.tolist()) else np.full((len(frames), 5, 2), np.nan))
    calibrated = np.isfinite(focal) & (focal > 0)
    screen = (options or {}).get("gaze")
    if screen is not None and not screen.camera_frames:  # face crops: their own camera model (pose.CROP_FOCAL_FACTOR)
        focal = pose.focal_lengths(frame_size, focal, crops=True)
    distances = distance_features()
    new: dict[str, np.ndarray] = {}
    for spec in (*feature_specs("image"), *feature_specs("faces"), *feature_specs("eyes")):
        if spec.name not in frames.columns:
            new[spec.name] = np.full(len(frames), np.nan)
    table = with_columns(frames, new) if new else frames  # the stages below copy it anyway
    for kind in ("landmarks", "derived", "track"):
        computed: dict[str, np.ndarray] = {}
        for fkind, func, names in REGISTERED_FUNCTIONS:
            if fkind != kind:
                continue
            if kind == "landmarks":
                extra = {"focal_px": focal, "points": points}
                values = func(landmarks, frame_size, **{k: v for k, v in extra.items() if k in _keywords(func)})
            else:
                values = func(table, **{k: v for k, v in (options or {}).items() if k in _keywords(func)})
            for name in names:
                column = np.asarray(values[name], dtype=np.float64)
                if column.shape != (len(frames),):
                    raise RuntimeError(f"feature {name!r} returned shape {column.shape}, expected ({len(frames)},)")
                if overwrite or name not in frames.columns:
                    computed[name] = column
                elif name in distances:  # a kept table's blanked (uncalibrated) position: the derived
                    kept = float_columns(frames, (name,))[:, 0]  # features need the assumed camera's
                    computed[name] = np.where(np.isnan(kept), column, kept)
        table = with_columns(table, computed)
        if kind == "landmarks":
            table = _mask_failed_fits(table)
    # distances only from a calibrated camera (geoengage.geometry.pose): computed above with the assumed camera for
    # the derived features, not produced for the frames without a calibration
    present = set(table.columns.tolist())
    produced = [name for name in distances if name in present]
    if not produced or calibrated.all():
        return table
    values = np.array(float_columns(table, produced), copy=True)
    values[~calibrated] = np.nan
    return with_columns(table, dict(zip(produced, values.T, strict=True)))


#: Features a row whose 68-point fit failed (``landmarks_ok`` 0) keeps: the pose from the detector's five points.
FROM_POINTS = frozenset({"yaw_deg", "roll_deg", "head_x_mm", "head_y_mm", "head_z_mm", "landmark_fit_error",
                         "landmarks_ok", "pose_camera_assumed"})


def _mask_failed_fits(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every feature from the 68 landmarks NaN where their fit failed (module docstring)."""
    if "landmarks_ok" not in table.columns:
        return table
    failed = float_columns(table, ("landmarks_ok",))[:, 0] == 0
    if not failed.any():
        return table
    present = set(table.columns.tolist())
    names = [s.name for s in feature_specs() if s.kind in ("image", "faces", "eyes", "landmarks")
             and s.name not in FROM_POINTS and s.name in present]
    values = np.array(float_columns(table, names), copy=True)
    values[failed] = np.nan
    masked = with_columns(table, dict(zip(names, values.T, strict=True)))
    if "expr_class" in present:
        masked["expr_class"] = masked["expr_class"].mask(failed)
    return masked


#: Version of the per-frame features' computation, raised whenever the same input and settings give other values,
#: so resumed extraction parts (``geoengage.dataset.config_key``) made by earlier code are not mixed with new ones,
#: and a table's metadata says which computation made it. 2: the eyeball centre behind the eye's forward point (gaze ~3
#: deg lower), face crops posed with their own camera model and without ``on_screen``. 3: the YuNet detector's boxes
#: and five points, the yaw from the five points past 45 deg, features of failed 68-point fits masked, ``on_screen``
#: with the camera inside the screen region and a margin of the gaze error, ``on_screen_cnn`` only inside the gaze
#: CNN's valid range.
FEATURES_VERSION = 3


def distance_features() -> tuple[str, ...]:
    """The features in millimetres: produced only for frames from a calibrated camera (NaN otherwise)."""
    return tuple(s.name for s in feature_specs() if s.unit == "mm")


def features_markdown(imported: Mapping[str, tuple[str, str, str, tuple[str, ...]]] | None = None) -> str:
    """The feature reference (features/FEATURES.md), generated from the registry, with the signals other tools'
    tables bring (``imported``: :data:`geoengage.importers.IMPORTED_SIGNALS`, which the importers own)."""
    lines = [
        "# Per-frame features",
        "",
        "Generated from the registry in `geoengage/geometry/` by `geoengage features --markdown`; do not edit.",
        "Every feature is NaN in a row without a face. Ranges are physical limits: a value outside one is a",
        "measurement error, and default cleaning masks it (reason `range`); ranges marked *typical* are only",
        "what real faces usually give and are never used to mask.",
        "",
        "| name | unit | range | kind | module | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in feature_specs():
        typical = "" if s.hard_range else " (typical)"
        lines.append(f"| `{s.name}` | {s.unit} | {_fmt(s.low)} to {_fmt(s.high)}{typical} | {s.kind} | {s.module} "
                     f"| {s.doc} |")
    if not imported:
        return "\n".join(lines) + "\n"
    lines += ["", "## Imported signals", "",
              "Columns `geoengage import` adds from other tools (`geoengage/importers.py`), aggregated into windows",
              "like every other signal (`importers.imported_feature_set`).", "",
              "| column | source | unit | convention | window aggregations |", "| --- | --- | --- | --- | --- |"]
    for pattern, (source, unit, convention, aggs) in imported.items():
        shown = pattern.replace("\\d\\d", "NN").replace("|", " or ")
        lines.append(f"| `{shown}` | {source} | {unit} | {convention} | {', '.join(aggs)} |")
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    return f"{value:g}"
