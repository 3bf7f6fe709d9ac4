"""Landmarks -> head pose: yaw, pitch, roll (degrees), position (mm) and fit residual.

``cv2.solvePnP`` fits a 3D mean face (:data:`FACE_3D_MM`) to the rigid landmarks
(:data:`RIGID_POINTS`: brows, eyes, nose, mouth corners; the jaw contour slides with yaw
and opens with speech, so it is left out) with a pinhole camera whose centre is the frame centre (no
distortion) and whose focal length is the calibrated one (``ExtractConfig.focal_px`` or
``camera_hfov_deg``; per frame in ``camera_focal_px``) or, for an uncalibrated camera, the frame width. Face
crops (``ExtractConfig.crop_mode``) are a small window of a frame taken at a normal distance: their camera model has
a focal length of :data:`CROP_FOCAL_FACTOR` (5) crop widths. The full-frame rule would put the face 10-14 cm from the
lens and read a head turned 20 deg as 9 deg.

**Distances need a calibrated camera.** Within a frame the angles barely depend on the focal length; the position
does, in proportion (a webcam's focal length is 0.6-1.0 frame widths, so an assumed one can be 40% off, and for a
face crop there is no camera at all). So ``head_x_mm``, ``head_y_mm`` and ``head_z_mm`` (and every other feature in
mm) are produced only for frames with a calibrated focal length and are NaN otherwise
(:func:`~geoengage.geometry.registry.compute_frame_features`). The features derived from the pose (gaze direction,
``on_screen``) still use the assumed camera's position internally: they are approximate without a calibration, exact
to the mean face with one.

Sign convention (``geoengage.schema``), for a camera facing the subject (not a mirrored preview):

- ``yaw_deg`` > 0: the subject turns to *their* right (the nose moves to the image left);
- ``pitch_deg`` > 0: chin up;
- ``roll_deg`` > 0: the head tilts towards their right shoulder (counter-clockwise in the image).

Camera and model axes follow OpenCV: x to the image right, y down, z away from the camera;
the model's origin is the nose tip and its face looks towards -z. With
``R = Rz(-roll) @ Ry(yaw) @ Rx(-pitch)`` (:func:`rotation_from_angles`), model point ``X``
lands at ``R @ X + t`` in camera coordinates.

The 3D model: x/y are the dlib landmarks of scikit-image's frontal astronaut portrait made
left-right symmetric, rotated so the eyes are level and scaled to 63 mm between the eye
centres (an adult average); z are anthropometric depth estimates behind the nose tip.
It is a mean face, not the subject's: expect a few degrees of bias on any one person.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..detect.landmarks import FIT_DISAGREEMENT_MAX, FIVE_POINT_LANDMARKS, fit_disagreement
from .base import frame_features, inter_ocular, nan_rows

__all__ = ["ASSUMED_FOCAL_FACE_WIDTHS", "FACE_3D_MM", "FIVE_POINT_MODEL_MM", "MIRROR", "POINTS_YAW_BLEND_DEG",
           "RIGID_POINTS", "angles_from_rotation", "camera_matrix", "estimate_pose", "estimate_pose_points",
           "focal_from_hfov", "focal_lengths", "rotation_from_angles"]

_XY = [
    [-66.8, -30.5], [-65.4, -13.0], [-63.2, 2.9], [-60.3, 20.4], [-55.2, 36.4], [-45.7, 50.9], [-32.0, 62.6],
    [-16.7, 72.0], [0.0, 74.2], [16.7, 72.0], [32.0, 62.6], [45.7, 50.9], [55.2, 36.4], [60.3, 20.4], [63.2, 2.9],
    [65.4, -13.0], [66.8, -30.5], [-56.7, -45.7], [-49.4, -53.7], [-37.8, -55.9], [-26.1, -54.4], [-14.5, -50.1],
    [14.5, -50.1], [26.1, -54.4], [37.8, -55.9], [49.4, -53.7], [56.7, -45.7], [0.0, -36.3], [0.0, -23.2],
    [0.0, -11.6], [0.0, 0.0], [-14.5, 6.6], [-7.2, 8.8], [0.0, 10.2], [7.2, 8.8], [14.5, 6.6], [-43.6, -35.5],
    [-36.4, -39.9], [-26.2, -39.9], [-18.9, -32.6], [-27.6, -31.9], [-36.3, -31.9], [18.9, -32.6], [26.2, -39.9],
    [36.4, -39.9], [43.6, -35.5], [36.3, -31.9], [27.6, -31.9], [-32.0, 19.0], [-20.3, 18.3], [-8.7, 18.2],
    [0.0, 20.4], [8.7, 18.2], [20.3, 18.3], [32.0, 19.0], [21.1, 34.3], [9.4, 40.8], [0.0, 42.3], [-9.4, 40.8],
    [-21.1, 34.3], [-27.6, 21.2], [-8.0, 23.3], [0.0, 24.8], [8.0, 23.3], [27.6, 21.2], [8.7, 33.5], [0.0, 34.9],
    [-8.7, 33.5],
]
_DEPTH = (
    [95, 88, 80, 72, 62, 50, 38, 30, 27, 30, 38, 50, 62, 72, 80, 88, 95]  # jaw, ear to ear
    + [42, 33, 27, 23, 21, 21, 23, 27, 33, 42]  # brows
    + [21, 15, 8, 0, 13, 9, 7, 9, 13]  # nose bridge to tip, nostrils
    + [38, 28, 26, 28, 26, 28, 28, 26, 28, 38, 28, 26]  # eyes (corners, lids)
    + [30, 20, 15, 13, 15, 20, 30, 22, 17, 16, 17, 22]  # outer lips
    + [28, 18, 16, 18, 28, 19, 17, 19]  # inner lips
)
#: The 3D mean face, shape (68, 3), millimetres, iBUG-68 order (see the module docstring).
FACE_3D_MM = np.column_stack([np.array(_XY, dtype=np.float64), np.array(_DEPTH, dtype=np.float64)])

#: Landmarks that move little with expression: brows (17-26), nose (27-35), eyes (36-47), mouth corners
#: (48, 54). The brows steady the fit against landmark noise (95th-percentile pitch error with 2 px noise:
#: 3.2 deg with them, 4.5 without) at the cost of a small pitch bias during a strong brow raise.
RIGID_POINTS = np.array(list(range(17, 48)) + [48, 54])

#: Index permutation that swaps left and right landmarks (for mirrored images).
MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def rotation_from_angles(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """The model-to-camera rotation for a head pose in geoengage's convention, shape (3, 3)."""
    yaw, pitch, roll = np.radians([yaw_deg, pitch_deg, roll_deg])
    return _rz(-roll) @ _ry(yaw) @ _rx(-pitch)


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from a model-to-camera rotation; inverse of :func:`rotation_from_angles`."""
    yaw = np.arcsin(np.clip(-rotation[2, 0], -1.0, 1.0))
    pitch = -np.arctan2(rotation[2, 1], rotation[2, 2])
    roll = -np.arctan2(rotation[1, 0], rotation[0, 0])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def focal_from_hfov(width: float, hfov_deg: float) -> float:
    """Focal length in pixels of a camera whose frames are ``width`` pixels wide and see ``hfov_deg`` degrees
    horizontally (a camera's data sheet often gives the diagonal field of view: convert it first)."""
    return float(width / (2.0 * np.tan(np.radians(hfov_deg) / 2.0)))


#: Focal length of a face crop's camera model, in crop widths. A crop is a small window of a camera frame taken at a
#: normal distance; read with the full-frame rule (focal length = width) it puts the face 10-14 cm from the lens,
#: where perspective alone explains most of a turned head's asymmetry: a head rendered at 20 deg yaw and cut to a
#: crop read 9.3 deg, -30 deg read -15.7 deg, 15 deg pitch 10.7 deg. Five crop widths put a face that fills the crop
#: about 0.6-0.7 m away; rendered heads at 450-800 mm (yaw to +-30, pitch to +-15 deg) then read within 2.4 deg of
#: their yaw and 0.9 deg of their pitch (tests/geometry/test_pose.py).
CROP_FOCAL_FACTOR = 5.0

#: Focal length, in widths of the face's landmark box, of the camera assumed where the frame size is unknown (a table
#: imported without it, e.g. Py-Feat's CSVs of images no longer at hand). The assumed camera looks straight at the face
#: (its principal point at the landmarks' centre) from a normal distance: the crops' rule (:data:`CROP_FOCAL_FACTOR`
#: crop widths, a face filling about 0.8 of its crop). Its angles are the head's relative to the line from the camera to
#: the face; the real camera's differ by the face's angle off its axis (a few degrees near the frame's centre, up to
#: about 15 deg at its edge). Such rows have ``pose_camera_assumed`` 1.
ASSUMED_FOCAL_FACE_WIDTHS = 6.0


def focal_lengths(frame_size: np.ndarray, focal_px: np.ndarray | None, *, crops: bool = False) -> np.ndarray:
    """Focal length (n,) used for each frame: the calibrated ``focal_px`` where finite, else the frame width (the
    uncalibrated camera model), or :data:`CROP_FOCAL_FACTOR` widths when the frames are face crops (``crops``).
    ``frame_size`` is (n, 2) width/height in pixels."""
    width = np.asarray(frame_size, dtype=np.float64)[:, 0] * (CROP_FOCAL_FACTOR if crops else 1.0)
    if focal_px is None:
        return width
    focal = np.asarray(focal_px, dtype=np.float64)
    return np.where(np.isfinite(focal) & (focal > 0), focal, width)


def camera_matrix(width: float, height: float, focal_px: float | None = None) -> np.ndarray:
    """Pinhole camera with the principal point at the frame centre and focal length ``focal_px`` (a calibrated
    camera's) or, when that is None, NaN or not positive, the frame width (the uncalibrated camera model: the rule
    of :func:`focal_lengths`)."""
    focal = width if focal_px is None else float(focal_lengths(np.array([[width, height]]), np.array([focal_px]))[0])
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def _solve(object_points: np.ndarray, image_points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """``[yaw, pitch, roll, x, y, z, rms residual px]`` of a PnP fit (SQPnP, then Levenberg-Marquardt); NaN when
    the points are degenerate."""
    try:
        ok, rvec, tvec = cv2.solvePnP(object_points, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            return np.full(7, np.nan)
        rvec, tvec = cv2.solvePnPRefineLM(object_points, image_points, camera, None, rvec, tvec)
    except cv2.error:  # degenerate points (all on top of each other, ...): no pose
        return np.full(7, np.nan)
    projected, _ = cv2.projectPoints(object_points, rvec, tvec, camera, None)
    residual = float(np.sqrt(np.mean(np.sum((projected[:, 0] - image_points) ** 2, axis=1))))
    yaw, pitch, roll = angles_from_rotation(cv2.Rodrigues(rvec)[0])
    return np.array([yaw, pitch, roll, *tvec.ravel(), residual])


#: The mean face's points standing for the detector's five (right and left eye centre, nose tip, mouth corners;
#: :data:`geoengage.detect.landmarks.FIVE_POINT_LANDMARKS`), shape (5, 3), mm.
FIVE_POINT_MODEL_MM = np.stack([FACE_3D_MM[list(idx)].mean(axis=0) for idx in FIVE_POINT_LANDMARKS])

#: Where the yaw passes from the 68 landmarks to the detector's five points (degrees of the five points' yaw):
#: below the first the 68-point pose, above the second the five points', linearly between. dlib's 68-point fit
#: drifts towards a frontal face as the head turns, so its yaw grows only about 0.7 deg per degree of turn (on
#: pointing04 a 45 deg turn read 28-33 deg, 60 deg 32-40), while the five points follow the turn (slope 0.97 up to
#: 60 deg) but are coarser near frontal: blended from 10 deg on, the yaw error up to 30 deg rose from 6.2-7.9 to
#: 7.0-8.7 deg and the geometric gaze's from 16 to 24 deg (its eyeball sits on the head pose), so the blend starts at
#: 30 deg. ``benchmarks/head_pose.py`` measures both.
POINTS_YAW_BLEND_DEG = (30.0, 45.0)


def estimate_pose_points(points: np.ndarray, width: float, height: float, focal_px: float | None = None
                         ) -> np.ndarray:
    """Head pose from the detector's five points (:data:`FIVE_POINT_MODEL_MM`), as :func:`estimate_pose`.

    Five points hold where the 68-point fit fails (heads turned 45-90 deg): the yaw and roll follow the turn. The
    pitch does not: the five points lie nearly in one plane seen edge-on from above, and on pointing04 its estimate
    grew -0.1 deg per labelled degree; :func:`head_pose` does not use it."""
    if np.isnan(points).any() or not (np.isfinite(width) and np.isfinite(height) and width > 0 and height > 0):
        return np.full(7, np.nan)
    return _solve(FIVE_POINT_MODEL_MM, np.ascontiguousarray(points, dtype=np.float64),
                  camera_matrix(width, height, focal_px))


def estimate_pose(landmarks: np.ndarray, width: float, height: float, focal_px: float | None = None) -> np.ndarray:
    """Head pose of one face: ``[yaw_deg, pitch_deg, roll_deg, x_mm, y_mm, z_mm, residual_px]``.

    Parameters
    ----------
    landmarks : ndarray of shape (68, 2), pixels
    width, height : float
        Frame size in pixels (sets the camera model); NaN (unknown) gives a NaN pose.
    focal_px : float, optional
        The camera's calibrated focal length in pixels at this frame size; None or NaN: the frame width (the
        position is then in the assumed camera's units: approximate, see the module docstring).
    """
    if np.isnan(landmarks).any() or not (np.isfinite(width) and np.isfinite(height) and width > 0 and height > 0):
        return np.full(7, np.nan)
    return _solve(FACE_3D_MM[RIGID_POINTS], np.ascontiguousarray(landmarks[RIGID_POINTS], dtype=np.float64),
                  camera_matrix(width, height, focal_px))


@frame_features(
    ("yaw_deg", "deg", -90, 90, ("Head yaw; + = the subject turns to their right. From the 68 landmarks near frontal and "
     "from the detector's five points past 45 deg of turn (blended between 30 and 45 deg) and wherever the 68-point "
     "fit fails (landmarks_ok 0); 75-90 deg turns read about 55-65 deg (benchmarks/head_pose.py).")),
    ("pitch_deg", "deg", -90, 90, ("Head pitch; + = chin up. From the 68 landmarks; NaN where their fit fails "
     "(landmarks_ok 0: five points give no pitch).")),
    ("roll_deg", "deg", -90, 90, ("Head roll; + = head tilts towards the subject's right shoulder (from the five points "
     "where the 68-point fit fails).")),
    ("head_x_mm", "mm", -1000, 1000, ("Nose tip position right of the camera axis; only with a calibrated camera "
     "(ExtractConfig.focal_px or camera_hfov_deg), else NaN.")),
    ("head_y_mm", "mm", -1000, 1000, "Nose tip position below the camera axis; only with a calibrated camera, else NaN."),
    ("head_z_mm", "mm", 100, 5000, ("Nose tip distance from the camera along its axis (mean face size); only with a "
     "calibrated camera, else NaN.")),
    ("pose_residual_iod", "ratio", 0, 1, ("RMS reprojection error of the 68-point pose fit / inter-ocular distance "
     "(fit quality; good fits 0.04-0.13, cleaning's quality rule masks a row above 0.2); NaN where landmarks_ok is 0.")),
    ("landmark_fit_error", "ratio", 0, 10, ("Mean distance between the 68-point fit's eyes, nose tip and mouth corners "
     "and the detector's five points, over the five points' span; NaN without detector points (tracked frames, "
     "HOG, crop mode, imports). Above 0.2 the fit does not hold the face (landmarks_ok 0).")),
    ("pose_camera_assumed", "flag", 0, 1, ("1: the frame size was unknown (an import without it), so yaw, pitch and "
     "roll are from a camera assumed to look straight at the face (ASSUMED_FOCAL_FACE_WIDTHS); 0: from the frame's own "
     "camera model; missing: no face.")),
    ("landmarks_ok", "flag", 0, 1, ("1: the 68-point fit agrees with the detector's five points; 0: it does not (a "
     "head turned past what dlib's predictor holds, about 45 deg): the head pose comes from the five points and every "
     "feature from the 68 landmarks (eyes, mouth, brows, gaze, expression, blink) is NaN; missing: not checked (no "
     "detector points in this frame).")),
    typical_range=("landmark_fit_error",),
)
def head_pose(landmarks: np.ndarray, frame_size: np.ndarray, focal_px: np.ndarray | None = None,
              points: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Head pose for every row (NaN where there is no face). ``focal_px`` (n,): calibrated focal lengths, NaN for
    an uncalibrated frame (the position is then the assumed camera's, which the registry keeps for the derived
    features and blanks in the table). ``points`` (n, 5, 2): the detector's five points, NaN where none.

    Where the 68-point fit disagrees with the five points (:data:`~geoengage.detect.landmarks.FIT_DISAGREEMENT_MAX`)
    the pose is the five points' (yaw, roll, position; pitch NaN); where it agrees, the yaw passes from the 68
    landmarks' to the five points' over :data:`POINTS_YAW_BLEND_DEG`."""
    n = len(landmarks)
    out = np.full((n, 7), np.nan)
    frame_size, focal, assumed = _assumed_cameras(landmarks, frame_size, focal_lengths(frame_size, focal_px))
    points = np.full((n, 5, 2), np.nan) if points is None else points
    error = fit_disagreement(landmarks, points)
    checked = np.isfinite(error)
    ok = np.where(checked, (error <= FIT_DISAGREEMENT_MAX).astype(np.float64), np.nan)
    low, high = POINTS_YAW_BLEND_DEG
    for i in np.flatnonzero(~nan_rows(landmarks)):
        width, height = frame_size[i]
        if checked[i]:
            from_points = estimate_pose_points(points[i], width, height, focal[i])
            if ok[i] == 0:
                out[i, :6] = from_points[:6]
                out[i, 1] = np.nan  # five points give no pitch (estimate_pose_points)
                continue
        out[i] = estimate_pose(landmarks[i], width, height, focal[i])
        if checked[i] and np.isfinite(from_points[0]):
            share = float(np.clip((abs(from_points[0]) - low) / (high - low), 0.0, 1.0))
            out[i, 0] = (1.0 - share) * out[i, 0] + share * from_points[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        residual = out[:, 6] / inter_ocular(landmarks)
    return {"yaw_deg": out[:, 0], "pitch_deg": out[:, 1], "roll_deg": out[:, 2], "head_x_mm": out[:, 3],
            "head_y_mm": out[:, 4], "head_z_mm": out[:, 5], "pose_residual_iod": residual,
            "landmark_fit_error": error, "landmarks_ok": ok,
            "pose_camera_assumed": np.where(np.isfinite(out[:, 0]), assumed.astype(np.float64), np.nan)}


def _assumed_cameras(landmarks: np.ndarray, frame_size: np.ndarray, focal: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frame_size, focal, assumed)`` with the camera of :data:`ASSUMED_FOCAL_FACE_WIDTHS` wherever the frame size
    is unknown: a frame twice the landmarks' centre (so the principal point is the face's centre) and a focal length of
    that many landmark-box widths. ``assumed`` (n,) marks those rows."""
    assumed = ~np.isfinite(np.asarray(frame_size, dtype=np.float64)).all(axis=1) & ~nan_rows(landmarks)
    if not assumed.any():
        return frame_size, focal, assumed
    frame_size = np.array(frame_size, dtype=np.float64, copy=True)
    focal = np.array(focal, dtype=np.float64, copy=True)
    low, high = np.nanmin(landmarks[assumed], axis=1), np.nanmax(landmarks[assumed], axis=1)
    frame_size[assumed] = low + high  # twice the centre
    focal[assumed] = ASSUMED_FOCAL_FACE_WIDTHS * (high - low)[:, 0]
    return frame_size, focal, assumed
