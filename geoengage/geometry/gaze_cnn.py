"""Normalised eye patches -> gaze from the learned gaze CNN, composed with the head pose, and its on-screen estimate.

The second gaze estimate beside the geometric one of :mod:`geoengage.geometry.gaze` (which reads the pupil's
position between the eye's landmarks). During extraction both eyes are normalised the way MPIIGaze does it
(:func:`geoengage.normalize.normalize_eyes`: a virtual camera looking straight at each eye from 600 mm, head roll
removed, the right eye mirrored), the shipped CNN (:mod:`geoengage.detect.gaze`, trained on MPIIGaze; card
``models/MODEL_CARD_gaze.md``) predicts each eye's gaze in its normalised camera, each prediction is rotated back
into the camera (the normalisation's rotation undone; the head pose is in it, so this *is* the composition of
eye and head), and the open eyes' unit vectors are averaged. ``gaze_cnn_yaw_deg``/``gaze_cnn_pitch_deg`` use the
signs of ``gaze_yaw_deg``/``gaze_pitch_deg`` (+ yaw = towards the subject's right, + pitch = up; 0/0 = along the
camera's axis, away from the camera, i.e. looking into the camera).

``on_screen_cnn`` (with ``screen_cnn_x_mm``/``screen_cnn_y_mm``) intersects that ray, from the midpoint of the
eyeball centres, with the camera's plane and the screen of :class:`~geoengage.geometry.gaze.ScreenGeometry`, as
``on_screen`` does for the geometric estimate. **Only inside the range where the CNN was measured**
(:data:`VALID_HEAD_DEG`: MPIIGaze's laptop users keep their heads within about 20 deg of the camera, and there the
network learned that the gaze stays near the camera; past it, it reads a look-away as a look at the screen: on the
real clip in ../shared 81% on screen against 6% for the geometric estimate): ``gaze_cnn_in_range`` says where, and
``on_screen_cnn`` and ``screen_cnn_*`` are NaN outside it. NaN also where both eyes are shut (aspect ratio < 0.15) or
there is no head pose, and for face crops (``crop_mode``: no camera, see :class:`~geoengage.geometry.gaze.GazeConfig`). Skip
the CNN with ``ExtractConfig(gaze_cnn=False)`` / ``geoengage extract --no-gaze-cnn``.
The camera model is geoengage's: the calibrated focal length when one is given (``ExtractConfig.focal_px`` or
``camera_hfov_deg``), else the frame width, with which the angles shift by a few degrees and ``screen_cnn_*_mm``
are not produced (NaN); MPIIGaze's own camera was calibrated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import float_columns
from .base import frame_features
from .gaze import POSE_COLUMNS, GazeConfig, angles_of, eyeball_origins, screen_hits, vectors_from_yaw_pitch

__all__ = ["GAZE_CNN_COLUMNS", "VALID_HEAD_DEG", "cnn_gaze", "cnn_gaze_on_screen", "gaze_vectors_from_patches"]

#: The columns the CNN writes during extraction.
GAZE_CNN_COLUMNS = ("gaze_cnn_yaw_deg", "gaze_cnn_pitch_deg")

#: Largest head yaw and pitch (degrees, either way) at which the CNN's gaze is used for ``on_screen_cnn``: the head
#: range of MPIIGaze, on which it was trained and measured (model card, Limits).
VALID_HEAD_DEG = 20.0


def gaze_vectors_from_patches(patches, predictions: np.ndarray) -> np.ndarray:
    """Camera-frame unit gaze vectors (n, 3) from per-eye predictions (n, 2, 2) yaw/pitch in radians in the
    normalised cameras of ``patches`` (:class:`~geoengage.normalize.EyePatches`; eye 1 mirrored): the open eyes
    averaged, NaN where both are shut."""
    unmirrored = predictions * np.array([[1.0, 1.0], [-1.0, 1.0]])  # eye 1 was mirrored: its yaw changes sign back
    normalised = vectors_from_yaw_pitch(unmirrored)  # (n, 2, 3)
    camera = np.einsum("nkji,nkj->nki", patches.rotations, normalised)  # R^T g per eye
    weights = patches.eye_open.astype(np.float64)[..., None]
    summed = (camera * weights).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vectors = summed / np.linalg.norm(summed, axis=1, keepdims=True)
    vectors[~patches.eye_open.any(axis=1)] = np.nan
    return vectors


@frame_features(
    ("gaze_cnn_yaw_deg", "deg", -180, 180, ("Gaze yaw from the gaze CNN (MPIIGaze-trained, both eyes normalised, "
     "composed with the head pose), camera frame; + = towards the subject's right, 0 = into the camera. Saturates "
     "near the camera, as MPIIGaze's gaze does (+-16 deg, 1-99%): on WACV and DAiSEE frames it stays within +-15 "
     "deg while head yaw spans +-40 (model card, Limits); gaze_yaw_deg does not saturate.")),
    ("gaze_cnn_pitch_deg", "deg", -90, 90, ("Gaze pitch from the gaze CNN, camera frame; + = up. Compressed the "
     "same way (MPIIGaze's gaze pitch spans -19 to 0 deg).")),
    kind="eyes",
)
def cnn_gaze(patches) -> dict[str, np.ndarray]:
    """Gaze of a batch of faces' :class:`~geoengage.normalize.EyePatches` from the shipped CNN."""
    # torch loads only when a CNN runs
    from ..detect.gaze import predict_eye_crops

    n = len(patches)
    if not n:
        return {name: np.empty(0) for name in GAZE_CNN_COLUMNS}
    predictions = predict_eye_crops(patches.crops.reshape(-1, 9, 15),
                                    patches.head_yaw_pitch.reshape(-1, 2)).reshape(n, 2, 2).astype(np.float64)
    yaw, pitch = angles_of(gaze_vectors_from_patches(patches, predictions))
    return {"gaze_cnn_yaw_deg": yaw, "gaze_cnn_pitch_deg": pitch}


def cnn_gaze_on_screen(table: pd.DataFrame, *, gaze: GazeConfig | None = None) -> dict[str, np.ndarray]:
    """Where the CNN's gaze ray meets the camera's plane, and whether on the screen, for every row."""
    config = gaze or GazeConfig()
    n = len(table)
    out = {name: np.full(n, np.nan) for name in ("screen_cnn_x_mm", "screen_cnn_y_mm", "on_screen_cnn",
                                                 "gaze_cnn_in_range")}
    angles = np.radians(float_columns(table, GAZE_CNN_COLUMNS))
    pose = float_columns(table, POSE_COLUMNS)
    known = np.isfinite(angles).all(axis=1) & np.isfinite(pose[:, :2]).all(axis=1)
    in_range = known & (np.abs(pose[:, :2]) <= VALID_HEAD_DEG).all(axis=1)
    out["gaze_cnn_in_range"] = np.where(known, in_range.astype(np.float64), np.nan)
    if not config.camera_frames:  # face crops: no camera, no screen (GazeConfig)
        return out
    rows = np.flatnonzero(in_range & np.isfinite(pose).all(axis=1))
    if len(rows):
        x, y, on = screen_hits(vectors_from_yaw_pitch(angles[rows]), eyeball_origins(pose[rows]), config.screen)
        out["screen_cnn_x_mm"][rows], out["screen_cnn_y_mm"][rows], out["on_screen_cnn"][rows] = x, y, on
    return out


@frame_features(
    ("screen_cnn_x_mm", "mm", -2000, 2000, ("Where the CNN's gaze meets the camera plane, right of the camera in the "
     "image (NaN if away; only with a calibrated camera).")),
    ("screen_cnn_y_mm", "mm", -2000, 2000, ("Where the CNN's gaze meets the camera plane, below the camera (NaN if "
     "away; only with a calibrated camera).")),
    ("on_screen_cnn", "flag", 0, 1, ("1 when the CNN's gaze lands on the screen (ScreenGeometry, as on_screen), "
     "else 0; NaN for face crops (crop_mode) and outside the CNN's valid range (gaze_cnn_in_range 0). The CNN's gaze "
     "saturates near the camera (gaze_cnn_yaw_deg), so it misses look-aways of the eyes: count those with on_screen.")),
    ("gaze_cnn_in_range", "flag", 0, 1, ("1 where the head pose lies within the range the gaze CNN was trained and "
     "measured on (head yaw and pitch within +-20 deg: MPIIGaze's laptop users), 0 outside it, where on_screen_cnn "
     "and screen_cnn_* are NaN; missing without the CNN's gaze or a head pitch.")),
    kind="derived",
    typical_range=("screen_cnn_x_mm", "screen_cnn_y_mm"),
)
def gaze_cnn_direction(table: pd.DataFrame, *, gaze: GazeConfig | None = None) -> dict[str, np.ndarray]:
    return cnn_gaze_on_screen(table, gaze=gaze)
