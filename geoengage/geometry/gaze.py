"""Eye images + head pose -> gaze ratios, gaze direction (composed rotations) and an on-screen estimate.

**Pupil position** (from the image, not only the landmarks): inside each eye's landmark
polygon, the darkest 35% of pixels (iris and pupil) are weighted by how dark they are, and
their centroid is projected on the eye's corner-to-corner axis (``t`` = 0 at the corner on
the image left, 1 at the image right) and on the lid-to-lid axis (``s`` = 0 at the upper lid,
1 at the lower). ``gaze_h_ratio = 2 (0.5 - t)`` (+ = towards the subject's right) and
``gaze_v_ratio = 2 (0.5 - s)`` (+ = up), averaged over the eyes that are open (EAR >= 0.15).

**Direction, by geometry** (:func:`gaze_vectors`). Each eye is a sphere of radius 12 mm (``EYEBALL_RADIUS_MM``) whose
centre sits 12 mm behind the eye's forward point: the point with ``t = s = 0.5`` (midway between the corners, on the
lid midline) of that eye in the 3D mean face (:data:`~geoengage.geometry.pose.FACE_3D_MM`), at the mean depth of the
eye's six points. So a pupil read at the forward position (``gaze_h_ratio`` 0, ``gaze_v_ratio`` equal to ``v_bias``,
below) looks along the head's axis. (Behind the mean of the six points instead, the centre would sit 0.55 mm lower,
since the eye corners sit below the lid midline, and a pupil at the forward position would read about 3 deg up.)
With the head pose (rotation ``R``, nose-tip position ``T``, in the pose's camera: the calibrated one, or focal
length = frame width), the eyeball centre in the camera is ``R @ centre + T``. The pupil's
image point is rebuilt from ``(t, s)`` and the eye's landmarks, the camera ray through it is intersected with the
eyeball sphere (the nearer intersection; a ray that misses takes the sphere point closest to it), and the gaze is the
unit vector from the eyeball centre to that point: a true composition of the eye-in-head rotation with the head's,
with the eye's foreshortening handled by the ray. The two eyes' vectors are averaged.
``gaze_yaw_deg``/``gaze_pitch_deg`` are that vector's angles in the camera frame (geoengage's signs: + yaw = towards
the subject's right, + pitch = up; 0/0 = along the camera's axis, away from the camera), and
``eye_yaw_deg``/``eye_pitch_deg`` the same vector in the head's frame (the eyes' rotation relative to the head).

The vertical pupil position is biased upwards by the upper lid and lashes: on 11 portraits in
``../shared/data/face_samples`` whose subjects face the camera, ``gaze_v_ratio`` read 0.0 to +0.36,
median +0.21 (several are one photo at different sizes, so this is a rough figure).
:class:`GazeConfig` subtracts ``v_bias`` (0.21) before the geometry; set it to 0 for images without
lashes (rendered eyes). Known limits: when the eyes look far down or sideways the lids hide part of
the iris and the dark centroid moves less than the iris does; the eye model is a mean face's.

**On screen**: the gaze ray starts at the midpoint of the two eyeball centres and is intersected
with the camera's plane (z = 0), where the screen is: :class:`ScreenGeometry` gives its size and
where it lies relative to the camera (by default a 15.6-inch laptop with the camera at the middle of
its top edge). The camera belongs to the screen region (a look into the lens is a look at the screen, whatever
``top_mm``), and the region is grown by the gaze error at the viewer's distance: ``margin_x_deg`` on the left and
right, ``margin_y_deg`` above and below (:data:`GAZE_ERROR_YAW_DEG`, :data:`GAZE_ERROR_PITCH_DEG`: the geometric
gaze's measured errors), plus ``margin_mm``. ``on_screen`` is 1 when the ray lands
inside. Where the 68-point fit failed (``landmarks_ok`` 0, a head turned past about 45 deg), or the head is turned
45 deg or more and its pupils cannot be read, ``on_screen`` follows the head's direction (the eyes taken as looking straight ahead), so a head turned
away reads as off screen, not as unknown. These are
geometric estimates from a mean face and an assumed screen, not a calibrated eye tracker: use them
as attention signals and compare within a person. Set the screen with ``ExtractConfig``
(``screen_*`` fields), ``geoengage extract --screen-width-mm ...``, or the service's settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from ..exceptions import InvalidParameterError
from ..schema import LANDMARK_COLUMNS, float_columns
from .base import CAMERA_FOCAL, frame_features
from .blink import LEFT_EYE, RIGHT_EYE
from .pose import FACE_3D_MM, focal_lengths

__all__ = ["EYEBALL_CENTRES_MM", "GAZE_ERROR_PITCH_DEG", "GAZE_ERROR_YAW_DEG", "POSE_COLUMNS", "GazeConfig", "ScreenGeometry", "angles_of", "eyeball_origins",
           "gaze_on_screen", "gaze_vectors", "pupil_point", "pupil_position", "screen_hits", "vectors_from_yaw_pitch"]

EYEBALL_RADIUS_MM = 12.0
DARK_FRACTION = 0.35
MIN_OPEN_EAR = 0.15
_ERODE_KERNEL = np.ones((3, 3), np.uint8)
_EYE_PX = 48  # eye crops are resampled to this width


#: The geometric gaze's error, degrees, across (yaw) and up-down (pitch): the median absolute difference between
#: ``gaze_yaw_deg`` / ``gaze_pitch_deg`` and the direction of the marker looked at, on the pointing04 photos of
#: ../shared (persons 01-07, head and marker within 30 deg of the camera; ``benchmarks/head_pose.py``). The pitch
#: error is the larger: the lids hide the iris as the eyes look up or down, so the gaze's pitch grows only 0.3 deg per
#: degree. The screen region's margins (:class:`ScreenGeometry`).
GAZE_ERROR_YAW_DEG = 7.0
GAZE_ERROR_PITCH_DEG = 13.2


@dataclass(frozen=True, kw_only=True)
class ScreenGeometry:
    """The screen the subject looks at, in the camera's plane (mm).

    Parameters
    ----------
    width_mm, height_mm : float
        Visible screen size (default: a 15.6-inch 16:9 laptop, 345 x 194 mm).
    centre_x_mm : float
        Horizontal position of the screen's centre in the camera's coordinates (x towards the image
        right, i.e. the subject's left): 0 when the camera sits above the screen's middle.
    top_mm : float
        How far below the camera the screen's top edge is (0: a laptop webcam at the edge; about
        30 for a webcam clipped on top of a monitor with a 30 mm bezel: the screen starts lower).
    margin_x_deg, margin_y_deg : float
        Grow the region left and right, and above and below, by these angles at the viewer's distance: the gaze
        estimate's errors (:data:`GAZE_ERROR_YAW_DEG`, :data:`GAZE_ERROR_PITCH_DEG`).
    margin_mm : float
        A further fixed margin on every side (0).
    """

    width_mm: float = 345.0
    height_mm: float = 194.0
    centre_x_mm: float = 0.0
    top_mm: float = 0.0
    margin_x_deg: float = GAZE_ERROR_YAW_DEG
    margin_y_deg: float = GAZE_ERROR_PITCH_DEG
    margin_mm: float = 0.0

    def __post_init__(self) -> None:
        if not (self.width_mm > 0 and self.height_mm > 0 and self.margin_mm >= 0
                and 0 <= self.margin_x_deg < 45 and 0 <= self.margin_y_deg < 45):
            raise InvalidParameterError(
                f"screen sizes must be > 0, margin_mm >= 0 and the margins' angles in [0, 45). Got {self.width_mm}, "
                f"{self.height_mm}, {self.margin_mm}, {self.margin_x_deg}, {self.margin_y_deg} instead.")

    def contains(self, x_mm: np.ndarray, y_mm: np.ndarray, distance_mm: np.ndarray | float = 600.0) -> np.ndarray:
        """Whether camera-plane points (x to the image right, y down from the camera) lie in the screen region: the
        screen and the camera, grown by ``margin_mm`` plus the margins' angles at ``distance_mm`` (the viewer's)."""
        distance = np.asarray(distance_mm, dtype=np.float64)
        across = self.margin_mm + distance * np.tan(np.radians(self.margin_x_deg))
        margin = self.margin_mm + distance * np.tan(np.radians(self.margin_y_deg))
        # the camera (0, 0) belongs to the region
        left, right = min(self.centre_x_mm - self.width_mm / 2, 0.0), max(self.centre_x_mm + self.width_mm / 2, 0.0)
        top, bottom = min(self.top_mm, 0.0), max(self.top_mm + self.height_mm, 0.0)
        with np.errstate(invalid="ignore"):
            return ((x_mm >= left - across) & (x_mm <= right + across) & (y_mm >= top - margin)
                    & (y_mm <= bottom + margin))


@dataclass(frozen=True, kw_only=True)
class GazeConfig:
    """Settings of the geometric gaze path: the screen, the vertical pupil bias (module docstring), and whether the
    frames are a camera's at all.

    ``camera_frames=False`` says the frames are face crops (``ExtractConfig.crop_mode``): a crop is not a camera's
    view, and taken as one (focal length = the crop's width) it puts the face 10-14 cm from the lens (median head
    distance 137 mm on the engagement_wacv crops, 100 mm on DAiSEE's), where a laptop screen spans about +-50 deg, so
    ``on_screen`` and ``on_screen_cnn`` would read 1 for nearly every gaze (on_screen_cnn did for all 3,724
    engagement_wacv crops). They are NaN then, like the distances; the gaze angles are still produced.
    """

    screen: ScreenGeometry = ScreenGeometry()
    v_bias: float = 0.21
    camera_frames: bool = True

    def __post_init__(self) -> None:
        if not -1 < self.v_bias < 1:
            raise InvalidParameterError(f"`v_bias` must be between -1 and 1. Got {self.v_bias!r} instead.")


def pupil_position(gray: np.ndarray, eye: np.ndarray) -> tuple[float, float]:
    """``(t, s)`` of the dark iris/pupil centroid within one eye (see the module docstring).

    Parameters
    ----------
    gray : ndarray of shape (height, width), uint8
    eye : ndarray of shape (6, 2), pixels
        The eye's landmarks in iBUG order (corner, upper lid x2, corner, lower lid x2).

    Returns NaN, NaN for a closed or off-frame eye.

    The eye crop is resampled to 48 px wide; inside the lid outline (one pixel in), pixels darker than the
    35th percentile (linear interpolation, as :func:`numpy.quantile`) weigh by how much darker they are. Written
    for speed (it runs twice per face and frame): scalar arithmetic where numpy's per-call overhead would
    dominate on so few pixels; the test suite checks it against the plain formulation.
    """
    if np.isnan(eye).any():
        return float("nan"), float("nan")
    points = eye.tolist()
    width = math.dist(points[0], points[3])
    # the eye aspect ratio (blink.eye_aspect_ratio) of this one eye
    ear = (math.dist(points[1], points[5]) + math.dist(points[2], points[4])) / (2.0 * width) if width > 0 else 0.0
    if not ear >= MIN_OPEN_EAR:
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
    # one pixel in from the outline: the rasterised edge holds lid and skin pixels, darker than the sclera,
    # which would pull the centroid towards the middle of the eye
    mask = cv2.erode(mask, _ERODE_KERNEL)
    inside = np.sort(crop[mask > 0]).astype(np.float64)
    n = inside.size
    if n < 20:
        return float("nan"), float("nan")
    virtual = DARK_FRACTION * (n - 1)  # numpy's "linear" quantile, with its interpolation from the nearer end
    below = int(virtual)
    fraction, low, high = virtual - below, inside[below], inside[min(below + 1, n - 1)]
    threshold = low + (high - low) * fraction if fraction < 0.5 else high - (high - low) * (1.0 - fraction)
    values = crop.astype(np.float64)
    weights = (np.maximum(threshold - values, 0.0) + 1e-3 * (values <= threshold)) * mask
    total = float(weights.sum())
    if total <= 0:
        return float("nan"), float("nan")
    centre = np.array([weights.sum(axis=0) @ np.arange(crop.shape[1], dtype=np.float64),
                       weights.sum(axis=1) @ np.arange(crop.shape[0], dtype=np.float64)]) / total / scale + [left, top]
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


#: The head-pose columns the gaze geometry reads, in this order (rotation in degrees, nose-tip position in mm).
POSE_COLUMNS = ("yaw_deg", "pitch_deg", "roll_deg", "head_x_mm", "head_y_mm", "head_z_mm")



def pupil_point(eye: np.ndarray, t: np.ndarray | float, s: np.ndarray | float) -> np.ndarray:
    """The image point with coordinates ``(t, s)`` in an eye (inverse of :func:`pupil_position`'s projection).

    ``eye`` is (6, 2) or a batch (n, 6, 2), with ``t`` and ``s`` scalars or (n,); returns (2,) or (n, 2).
    """
    axis = eye[..., 3, :] - eye[..., 0, :]
    normal = np.stack([-axis[..., 1], axis[..., 0]], axis=-1) / np.linalg.norm(axis, axis=-1, keepdims=True)
    upper, lower = eye[..., 1:3, :].mean(axis=-2), eye[..., 4:6, :].mean(axis=-2)
    offset = (((upper - eye[..., 0, :]) * normal).sum(axis=-1)
              + np.asarray(s) * ((lower - upper) * normal).sum(axis=-1))
    return eye[..., 0, :] + np.asarray(t)[..., None] * axis + offset[..., None] * normal


#: Eyeball centres in the head model (right eye, left eye), shape (2, 3), mm: 12 mm behind each eye's forward point
#: (``t = s = 0.5`` of :func:`pupil_point` on the mean face's eye, at the mean depth of its six points).
EYEBALL_CENTRES_MM = np.stack([
    np.r_[pupil_point(FACE_3D_MM[eye, :2], 0.5, 0.5), FACE_3D_MM[eye, 2].mean() + EYEBALL_RADIUS_MM]
    for eye in (RIGHT_EYE, LEFT_EYE)])


def _sphere_points(rays: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """Nearer intersections of rays from the origin along unit ``rays`` (n, 3) with spheres at ``centres`` (n, 3);
    where a ray misses (landmark noise), the sphere point closest to it."""
    along = (rays * centres).sum(axis=1)
    disc = along**2 - (centres * centres).sum(axis=1) + radius**2
    hit = (along - np.sqrt(np.clip(disc, 0, None)))[:, None] * rays
    closest = along[:, None] * rays - centres
    with np.errstate(invalid="ignore", divide="ignore"):
        near = centres + radius * closest / np.linalg.norm(closest, axis=1, keepdims=True)
    return np.where((disc >= 0)[:, None], hit, near)


def _rotations(angles: np.ndarray) -> np.ndarray:
    """:func:`~geoengage.geometry.pose.rotation_from_angles` for (n, 3) yaw/pitch/roll degrees: (n, 3, 3)."""
    yaw, pitch, roll = np.radians(angles).T
    zero, one = np.zeros_like(yaw), np.ones_like(yaw)
    rz = np.stack([np.cos(-roll), -np.sin(-roll), zero, np.sin(-roll), np.cos(-roll), zero, zero, zero, one], -1)
    ry = np.stack([np.cos(yaw), zero, np.sin(yaw), zero, one, zero, -np.sin(yaw), zero, np.cos(yaw)], -1)
    rx = np.stack([one, zero, zero, zero, np.cos(-pitch), -np.sin(-pitch), zero, np.sin(-pitch), np.cos(-pitch)], -1)
    return rz.reshape(-1, 3, 3) @ ry.reshape(-1, 3, 3) @ rx.reshape(-1, 3, 3)


def vectors_from_yaw_pitch(yaw_pitch: np.ndarray) -> np.ndarray:
    """Unit gaze vectors (..., 3) from yaw/pitch (..., 2) in radians: the inverse of :func:`angles_of` (which gives
    degrees). MPIIGaze's convention and geoengage's agree: ``g = (-cos p sin y, -sin p, -cos p cos y)``."""
    yaw, pitch = yaw_pitch[..., 0], yaw_pitch[..., 1]
    return np.stack([-np.cos(pitch) * np.sin(yaw), -np.sin(pitch), -np.cos(pitch) * np.cos(yaw)], axis=-1)


def angles_of(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) in degrees of gaze vectors (3,) or (n, 3) in OpenCV axes (+ yaw = towards the subject's
    right, + pitch = up)."""
    v = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.degrees(np.arctan2(-v[..., 0], -v[..., 2])), np.degrees(np.arcsin(np.clip(-v[..., 1], -1, 1)))


def _gaze_batch(landmarks: np.ndarray, ratios: np.ndarray, pose: np.ndarray, size: np.ndarray,
                v_bias: float, focal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit gaze vectors, origins (midpoints of the eyeball centres) and head rotations of n faces with
    complete inputs: landmarks (n, 68, 2), ratios (n, 2), pose (n, 6), frame size (n, 2), focal lengths (n,)
    (:func:`~geoengage.geometry.pose.focal_lengths`: the pose's camera)."""
    rotations = _rotations(pose[:, :3])
    centres = _eyeball_centres(pose, rotations)  # (n, 2 eyes, 3)
    t, s = 0.5 - ratios[:, 0] / 2.0, 0.5 - (ratios[:, 1] - v_bias) / 2.0
    width, height = size[:, 0], size[:, 1]
    vectors = np.zeros((len(pose), 3))
    for k, eye in enumerate((RIGHT_EYE, LEFT_EYE)):
        point = pupil_point(landmarks[:, eye], t, s)
        # the inverse of camera_matrix: principal point at the frame centre
        rays = np.column_stack([(point[:, 0] - width / 2) / focal, (point[:, 1] - height / 2) / focal,
                                np.ones(len(point))])
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        vectors += (_sphere_points(rays, centres[:, k], EYEBALL_RADIUS_MM) - centres[:, k]) / EYEBALL_RADIUS_MM
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), centres.mean(axis=1), rotations


def gaze_vectors(landmarks: np.ndarray, h_ratio: float, v_ratio: float, pose: np.ndarray, frame_size: np.ndarray,
                 *, v_bias: float = 0.21, focal_px: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Gaze of one face: (unit gaze vector, origin = midpoint of the eyeball centres), camera frame, mm.

    Parameters
    ----------
    landmarks : ndarray of shape (68, 2), pixels
    h_ratio, v_ratio : float
        ``gaze_h_ratio`` and ``gaze_v_ratio``.
    pose : ndarray of shape (6,)
        ``yaw_deg, pitch_deg, roll_deg, head_x_mm, head_y_mm, head_z_mm``.
    frame_size : ndarray of shape (2,)
        Width and height in pixels (the camera model of :func:`~geoengage.geometry.pose.camera_matrix`).
    focal_px : float, optional
        The calibrated focal length the pose was estimated with (None: uncalibrated, the frame width).

    Returns None when an input is missing.
    """
    pose, frame_size = np.asarray(pose, dtype=np.float64), np.asarray(frame_size, dtype=np.float64)
    if not (np.isfinite(h_ratio) and np.isfinite(v_ratio) and np.isfinite(pose).all() and np.isfinite(frame_size).all()):
        return None
    focal = focal_lengths(frame_size[None], None if focal_px is None else np.array([focal_px]))
    vectors, origins, _ = _gaze_batch(landmarks[None], np.array([[h_ratio, v_ratio]]), pose[None], frame_size[None],
                                      v_bias, focal)
    return vectors[0], origins[0]


def gaze_on_screen(table: pd.DataFrame, screen: ScreenGeometry | None = None, *,
                   gaze: GazeConfig | None = None) -> dict[str, np.ndarray]:
    """Gaze direction, eye-in-head angles and the landing point on the screen plane, for every row."""
    config = gaze or GazeConfig()
    screen = screen or config.screen
    n = len(table)
    out = {name: np.full(n, np.nan) for name in ("gaze_yaw_deg", "gaze_pitch_deg", "eye_yaw_deg", "eye_pitch_deg",
                                                 "screen_x_mm", "screen_y_mm", "on_screen")}
    landmarks = float_columns(table, LANDMARK_COLUMNS).reshape(n, 68, 2)
    ratios = float_columns(table, ("gaze_h_ratio", "gaze_v_ratio"))
    pose = float_columns(table, POSE_COLUMNS)
    size = float_columns(table, ("frame_width_px", "frame_height_px"))
    focal = focal_lengths(size, float_columns(table, (CAMERA_FOCAL,))[:, 0] if CAMERA_FOCAL in table.columns else None,
                          crops=not config.camera_frames)  # the pose's camera model (registry)
    rows = np.flatnonzero(np.isfinite(ratios).all(axis=1) & np.isfinite(pose).all(axis=1) & np.isfinite(size).all(axis=1)
                          & np.isfinite(landmarks[:, 36:48]).all(axis=(1, 2)))
    if len(rows):
        vectors, origins, rotations = _gaze_batch(landmarks[rows], ratios[rows], pose[rows], size[rows], config.v_bias,
                                                  focal[rows])
        out["gaze_yaw_deg"][rows], out["gaze_pitch_deg"][rows] = angles_of(vectors)
        out["eye_yaw_deg"][rows], out["eye_pitch_deg"][rows] = angles_of(np.einsum("nji,nj->ni", rotations, vectors))
        if config.camera_frames:  # a face crop is not a camera's view: no screen to land on (GazeConfig)
            hits = screen_hits(vectors, origins, screen)
            out["screen_x_mm"][rows], out["screen_y_mm"][rows], out["on_screen"][rows] = hits
    if config.camera_frames:
        _head_on_screen(table, pose, screen, out)
    return out


#: A head turned this far (yaw, degrees) whose pupils cannot be read (lids, lashes, the far eye hidden) gets its
#: ``on_screen`` from the head's direction, as a failed 68-point fit does.
HEAD_ONLY_YAW_DEG = 45.0


def _head_on_screen(table: pd.DataFrame, pose: np.ndarray, screen: ScreenGeometry, out: dict[str, np.ndarray]) -> None:
    """``on_screen`` from the head's direction where the 68-point fit failed, or where the head is turned
    :data:`HEAD_ONLY_YAW_DEG` or more and the pupils could not be read (module docstring): the pitch the five points
    cannot give is taken as level."""
    failed = (float_columns(table, ("landmarks_ok",))[:, 0] == 0 if "landmarks_ok" in table.columns
              else np.zeros(len(table), dtype=bool))
    with np.errstate(invalid="ignore"):
        failed |= np.isnan(out["on_screen"]) & (np.abs(pose[:, 0]) >= HEAD_ONLY_YAW_DEG)
    head = pose.copy()
    head[:, 1] = np.where(np.isnan(head[:, 1]), 0.0, head[:, 1])
    rows = np.flatnonzero(failed & np.isfinite(head).all(axis=1))
    if len(rows):
        forward = np.einsum("nij,j->ni", _rotations(head[rows, :3]), np.array([0.0, 0.0, -1.0]))
        out["on_screen"][rows] = screen_hits(forward, eyeball_origins(head[rows]), screen)[2]


def screen_hits(vectors: np.ndarray, origins: np.ndarray, screen: ScreenGeometry
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where gaze rays (unit ``vectors`` (n, 3) from ``origins`` (n, 3), camera frame, mm) meet the camera's plane
    (x, y in mm; NaN when the ray points away from it) and whether that is on ``screen`` (1.0 / 0.0)."""
    towards = (vectors[:, 2] < 0) & (origins[:, 2] > 0)  # else: looking away from the screen's plane
    with np.errstate(invalid="ignore", divide="ignore"):
        hits = origins + (-origins[:, 2] / vectors[:, 2])[:, None] * vectors
    x, y = np.where(towards, hits[:, 0], np.nan), np.where(towards, hits[:, 1], np.nan)
    inside = screen.contains(hits[:, 0], hits[:, 1], np.linalg.norm(origins, axis=1))
    return x, y, np.where(towards, inside, False).astype(np.float64)


def _eyeball_centres(pose: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Eyeball centres (n, 2 eyes, 3), camera frame, mm, for head poses (n, 6) and their rotations (n, 3, 3)."""
    return np.einsum("ej,nij->nei", EYEBALL_CENTRES_MM, rotations) + pose[:, None, 3:6]


def eyeball_origins(pose: np.ndarray) -> np.ndarray:
    """Midpoints (n, 3) of the two eyeball centres, camera frame, mm, for head poses (n, 6) (:data:`POSE_COLUMNS`):
    where gaze rays start."""
    return _eyeball_centres(pose, _rotations(pose[:, :3])).mean(axis=1)


@frame_features(
    ("gaze_yaw_deg", "deg", -180, 180, ("Gaze direction yaw in the camera frame (eye rotation composed with the "
     "head's); + = towards the subject's right, 0 = along the camera axis.")),
    ("gaze_pitch_deg", "deg", -90, 90, "Gaze direction pitch in the camera frame; + = up."),
    ("eye_yaw_deg", "deg", -60, 60, "Eye-in-head yaw: the gaze relative to the head; + = towards the subject's right."),
    ("eye_pitch_deg", "deg", -60, 60, "Eye-in-head pitch: the gaze relative to the head; + = up."),
    ("screen_x_mm", "mm", -2000, 2000, ("Where the gaze meets the camera plane, right of the camera in the image "
     "(NaN if away; only with a calibrated camera).")),
    ("screen_y_mm", "mm", -2000, 2000, ("Where the gaze meets the camera plane, below the camera (NaN if away; only "
     "with a calibrated camera).")),
    ("on_screen", "flag", 0, 1, ("1 when the gaze lands on the screen (ScreenGeometry; default a laptop, camera at "
     "its top centre), else 0; approximate without a calibrated camera (focal length assumed = frame width); NaN "
     "for face crops (crop_mode), which are no camera's view.")),
    kind="derived",
    typical_range=("screen_x_mm", "screen_y_mm"),
)
def gaze_direction(table: pd.DataFrame, *, gaze: GazeConfig | None = None) -> dict[str, np.ndarray]:
    return gaze_on_screen(table, gaze=gaze)
