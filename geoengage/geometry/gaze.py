"""Eye images + head pose -> gaze ratios, gaze direction and an on-screen estimate.

**Pupil position** (from the image, not only the landmarks): inside each eye's landmark
polygon, the darkest 35% of pixels (iris and pupil) are weighted by how dark they are, and
their centroid is projected on the eye's corner-to-corner axis (``t`` = 0 at the corner on
the image left, 1 at the image right) and on the lid-to-lid axis (``s`` = 0 at the upper lid,
1 at the lower). ``gaze_h_ratio = 2 (0.5 - t)`` (+ = towards the subject's right) and
``gaze_v_ratio = 2 (0.5 - s)`` (+ = up), averaged over the eyes that are open (EAR >= 0.15).

**Direction**: the eye's horizontal rotation is ``asin(offset / 12 mm)`` (eyeball radius),
with the iris offset from the eye centre taken as ``gaze_h_ratio x 15 mm`` (half an eye's
width); gaze yaw = head yaw + eye yaw, in the camera frame and sign convention of
:mod:`geoengage.geometry.pose`. Gaze pitch is the head pitch alone: the vertical iris
position is biased by the upper lid and lashes (on the astronaut, who looks into the camera,
``gaze_v_ratio`` reads +0.37), so it is reported as ``gaze_v_ratio`` but not turned into an angle.

**On screen**: the gaze ray starts between the eyes (head position + rotated model eye
centre) and is intersected with the camera's plane (z = 0). The screen lies in that plane
with the camera at the middle of its top edge (a laptop webcam): x from -width/2 to
+width/2, y from 0 to height below the camera (:class:`ScreenGeometry`, a 15.6-inch
laptop by default), grown by ``margin_mm``. ``on_screen`` is 1 when the ray lands inside.
These are geometric estimates from a mean face and an assumed screen, not a calibrated
eye tracker: use them as attention signals, compare within a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from ..exceptions import InvalidParameterError
from .blink import LEFT_EYE, RIGHT_EYE, eye_aspect_ratio
from .pose import FACE_3D_MM, rotation_from_angles
from .registry import frame_features

__all__ = ["ScreenGeometry", "gaze_on_screen", "pupil_position"]

EYEBALL_RADIUS_MM = 12.0
EYE_HALF_WIDTH_MM = 15.0
DARK_FRACTION = 0.35
MIN_OPEN_EAR = 0.15
_EYE_PX = 48  # eye crops are resampled to this width


@dataclass(frozen=True, kw_only=True)
class ScreenGeometry:
    """The screen the subject looks at, in the camera's plane, camera at the top centre (mm)."""

    width_mm: float = 345.0
    height_mm: float = 194.0
    margin_mm: float = 50.0

    def __post_init__(self) -> None:
        if not (self.width_mm > 0 and self.height_mm > 0 and self.margin_mm >= 0):
            raise InvalidParameterError(
                f"screen sizes must be > 0 and margin >= 0. Got {self.width_mm}, {self.height_mm}, "
                f"{self.margin_mm} instead.")


def pupil_position(gray: np.ndarray, eye: np.ndarray) -> tuple[float, float]:
    """``(t, s)`` of the dark iris/pupil centroid within one eye (see the module docstring).

    Parameters
    ----------
    gray : ndarray of shape (height, width), uint8
    eye : ndarray of shape (6, 2), pixels
        The eye's landmarks in iBUG order (corner, upper lid x2, corner, lower lid x2).

    Returns NaN, NaN for a closed or off-frame eye.
    """
    if np.isnan(eye).any() or eye_aspect_ratio(eye[None])[0] < MIN_OPEN_EAR:
        return float("nan"), float("nan")
    left, top = np.floor(eye.min(axis=0)).astype(int) - 2
    right, bottom = np.ceil(eye.max(axis=0)).astype(int) + 3
    if left < 0 or top < 0 or right > gray.shape[1] or bottom > gray.shape[0]:
        return float("nan"), float("nan")
    scale = _EYE_PX / max(right - left, 1)
    crop = cv2.resize(gray[top:bottom, left:right], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    polygon = ((eye - [left, top]) * scale).round().astype(np.int32)
    mask = np.zeros(crop.shape, np.uint8)
    cv2.fillPoly(mask, [polygon], 1)
    inside = crop[mask > 0].astype(np.float64)
    if inside.size < 20:
        return float("nan"), float("nan")
    threshold = np.quantile(inside, DARK_FRACTION)
    weights = np.where(mask > 0, np.clip(threshold - crop.astype(np.float64), 0, None) + 1e-3 * (crop <= threshold),
                       0.0)
    if weights.sum() <= 0:
        return float("nan"), float("nan")
    ys, xs = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]]
    centre = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum() / scale + [left, top]
    axis = eye[3] - eye[0]
    t = float(np.dot(centre - eye[0], axis) / np.dot(axis, axis))
    normal = np.array([-axis[1], axis[0]]) / np.linalg.norm(axis)  # points down the image for a level eye
    upper, lower = eye[1:3].mean(axis=0), eye[4:6].mean(axis=0)
    span = float(np.dot(lower - upper, normal))
    s = float(np.dot(centre - upper, normal) / span) if span > 0 else float("nan")
    return t, s


@frame_features(
    ("gaze_h_ratio", "ratio", -1, 1, "Iris position across the eye from the image: + = towards the subject's right."),
    ("gaze_v_ratio", "ratio", -1, 1, "Iris position between the lids from the image: + = up (lids bias it down)."),
    kind="image",
)
def gaze_ratios(gray: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    positions = np.array([pupil_position(gray, landmarks[eye]) for eye in (RIGHT_EYE, LEFT_EYE)])
    if np.isnan(positions).all():
        return {"gaze_h_ratio": float("nan"), "gaze_v_ratio": float("nan")}
    t, s = np.nanmean(positions, axis=0)
    return {"gaze_h_ratio": float(2 * (0.5 - t)), "gaze_v_ratio": float(2 * (0.5 - s))}


def gaze_on_screen(table: pd.DataFrame, screen: ScreenGeometry | None = None) -> dict[str, np.ndarray]:
    """Gaze direction and its landing point on the screen plane, for every row (see the module docstring)."""
    screen = screen or ScreenGeometry()
    with np.errstate(invalid="ignore"):
        eye_yaw = np.degrees(np.arcsin(np.clip(table["gaze_h_ratio"] * EYE_HALF_WIDTH_MM / EYEBALL_RADIUS_MM, -1, 1)))
    gaze_yaw = (table["yaw_deg"] + eye_yaw).to_numpy(dtype=np.float64)
    gaze_pitch = table["pitch_deg"].to_numpy(dtype=np.float64)
    eyes_model = FACE_3D_MM[36:48].mean(axis=0)
    n = len(table)
    hit = np.full((n, 2), np.nan)
    head = table[["head_x_mm", "head_y_mm", "head_z_mm"]].to_numpy(dtype=np.float64)
    angles = table[["yaw_deg", "pitch_deg", "roll_deg"]].to_numpy(dtype=np.float64)
    for i in np.flatnonzero(np.isfinite(gaze_yaw) & np.isfinite(gaze_pitch) & np.isfinite(head).all(axis=1)):
        origin = head[i] + rotation_from_angles(*angles[i]) @ eyes_model
        gy, gp = np.radians(gaze_yaw[i]), np.radians(gaze_pitch[i])
        direction = np.array([-np.sin(gy) * np.cos(gp), -np.sin(gp), -np.cos(gy) * np.cos(gp)])
        if direction[2] < 0 < origin[2]:
            hit[i] = (origin + (-origin[2] / direction[2]) * direction)[:2]
        else:
            hit[i] = np.inf  # looking away from the screen's plane
    inside = ((np.abs(hit[:, 0]) <= screen.width_mm / 2 + screen.margin_mm)
              & (hit[:, 1] >= -screen.margin_mm) & (hit[:, 1] <= screen.height_mm + screen.margin_mm))
    on_screen = np.where(np.isnan(hit[:, 0]), np.nan, inside.astype(np.float64))
    finite = np.where(np.isfinite(hit), hit, np.nan)
    return {"gaze_yaw_deg": gaze_yaw, "gaze_pitch_deg": gaze_pitch, "screen_x_mm": finite[:, 0],
            "screen_y_mm": finite[:, 1], "on_screen": on_screen}


@frame_features(
    ("gaze_yaw_deg", "deg", -120, 120, "Gaze direction yaw = head yaw + eye yaw; + = towards the subject's right."),
    ("gaze_pitch_deg", "deg", -90, 90, "Gaze direction pitch (the head's: see geometry/gaze.py); + = up."),
    ("screen_x_mm", "mm", -2000, 2000, "Where the gaze meets the camera plane, right of the camera (NaN if away)."),
    ("screen_y_mm", "mm", -2000, 2000, "Where the gaze meets the camera plane, below the camera (NaN if away)."),
    ("on_screen", "flag", 0, 1, "1 when the gaze lands on the assumed screen (camera at its top centre), else 0."),
    kind="derived",
)
def gaze_direction(table: pd.DataFrame) -> dict[str, np.ndarray]:
    return gaze_on_screen(table)
