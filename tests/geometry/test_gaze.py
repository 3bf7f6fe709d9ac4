"""geometry/gaze.py: the iris position read from the image moves with the iris; on-screen geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from geoengage.geometry.blink import LEFT_EYE, RIGHT_EYE
from geoengage.geometry.gaze import (
    EYEBALL_CENTRES_MM,
    GazeConfig,
    ScreenGeometry,
    angles_of,
    gaze_on_screen,
    gaze_ratios,
    gaze_vectors,
    pupil_position,
)
from geoengage.geometry.pose import FACE_3D_MM, estimate_pose, rotation_from_angles


def _shift_irises(image: np.ndarray, landmarks: np.ndarray, dx: int) -> np.ndarray:
    """The photo with the content of each eye opening moved ``dx`` pixels sideways (lids and corners stay)."""
    out = image.copy()
    moved = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, 0]]), image.shape[1::-1],
                           borderMode=cv2.BORDER_REPLICATE)
    for eye in (RIGHT_EYE, LEFT_EYE):
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [landmarks[eye].round().astype(np.int32)], 1)
        out[mask > 0] = moved[mask > 0]
    return out


def test_moving_the_iris_moves_the_gaze_ratio(astronaut: np.ndarray, astronaut_landmarks: np.ndarray) -> None:
    big = cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)  # eyes ~45 px wide
    points = astronaut_landmarks * 3
    ratio = {dx: gaze_ratios(cv2.cvtColor(_shift_irises(big, points, dx), cv2.COLOR_BGR2GRAY), points)["gaze_h_ratio"]
             for dx in (-6, -3, 0, 3, 6)}
    # Iris towards the image left = towards the subject's right = larger ratio; monotonic in the shift.
    assert ratio[-6] > ratio[-3] > ratio[0] > ratio[3] > ratio[6]
    assert ratio[-6] - ratio[6] > 0.3
    assert abs(ratio[0]) < 0.15  # the astronaut looks into the camera


def test_pupil_position_handles_closed_and_off_frame_eyes(astronaut: np.ndarray, astronaut_landmarks: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    eye = astronaut_landmarks[RIGHT_EYE].copy()
    t, s = pupil_position(gray, eye)
    assert 0.3 < t < 0.7 and 0.0 < s < 1.0
    closed = eye.copy()
    closed[[1, 2], 1] = closed[[5, 4], 1]  # lids together
    assert np.isnan(pupil_position(gray, closed)).all()
    assert np.isnan(pupil_position(gray, eye - 300)).all()


W, H, FOCAL = 1280, 960, 1000.0  # a calibrated camera (65 deg wide), not the uncalibrated model's focal = width


def _pupil_position_reference(gray: np.ndarray, eye: np.ndarray) -> tuple[float, float]:
    """pupil_position written plainly (numpy's quantile, a coordinate grid): the definition the fast one keeps."""
    from geoengage.geometry.blink import eye_aspect_ratio
    from geoengage.geometry.gaze import _EYE_PX, DARK_FRACTION, MIN_OPEN_EAR

    nan = (float("nan"), float("nan"))
    if np.isnan(eye).any() or eye_aspect_ratio(eye[None])[0] < MIN_OPEN_EAR:
        return nan
    left, top = np.floor(eye.min(axis=0)).astype(int) - 2
    right, bottom = np.ceil(eye.max(axis=0)).astype(int) + 3
    if left < 0 or top < 0 or right > gray.shape[1] or bottom > gray.shape[0]:
        return nan
    scale = _EYE_PX / max(right - left, 1)
    crop = cv2.resize(gray[top:bottom, left:right], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    mask = np.zeros(crop.shape, np.uint8)
    cv2.fillPoly(mask, [((eye - [left, top]) * scale).round().astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    inside = crop[mask > 0].astype(np.float64)
    if inside.size < 20:
        return nan
    threshold = np.quantile(inside, DARK_FRACTION)
    weights = np.where(mask > 0, np.clip(threshold - crop.astype(np.float64), 0, None) + 1e-3 * (crop <= threshold), 0.0)
    ys, xs = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]]
    centre = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum() / scale + [left, top]
    axis = eye[3] - eye[0]
    normal = np.array([-axis[1], axis[0]]) / np.linalg.norm(axis)
    upper, lower = eye[1:3].mean(axis=0), eye[4:6].mean(axis=0)
    return (float(np.dot(centre - eye[0], axis) / np.dot(axis, axis)),
            float(np.dot(centre - upper, normal) / np.dot(lower - upper, normal)))


def test_pupil_position_equals_its_plain_formulation(astronaut: np.ndarray, astronaut_landmarks: np.ndarray,
                                                     rng: np.random.Generator) -> None:
    """The fast pupil centroid gives the plain formulation's values on real eyes at several sizes, with landmark
    noise (different crop sizes and pixel counts, so every branch of the quantile's interpolation is taken)."""
    compared = 0
    for factor in (1.0, 1.6, 2.5, 3.0):
        gray = cv2.cvtColor(cv2.resize(astronaut, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC),
                            cv2.COLOR_BGR2GRAY)
        for eye_index in (RIGHT_EYE, LEFT_EYE):
            for _ in range(25):
                eye = astronaut_landmarks[eye_index] * factor + rng.normal(0, 0.8 * factor, (6, 2))
                fast, plain = pupil_position(gray, eye), _pupil_position_reference(gray, eye)
                np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-12)
                compared += not np.isnan(plain).any()
    assert compared >= 150


def _project(points: np.ndarray) -> np.ndarray:
    return FOCAL * points[:, :2] / points[:, 2:3] + [W / 2, H / 2]


def _render(yaw: float, pitch: float, *, eye_yaw: float | None = None, eye_pitch: float | None = None,
            head=(0.0, 0.0, 600.0)) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A face rendered from the known geometry: the 3D mean face (lids opened 3 mm each way, so a pupil looking
    20 deg down is not hidden) turned by the head pose and projected with the camera; each eyeball a 12 mm sphere
    where the model puts it (EYEBALL_CENTRES_MM); the pupil (1.5 mm radius) drawn where the gaze ray leaves the sphere. The eyes fixate the
    camera, or look (eye_yaw, eye_pitch) in the head's frame. Returns the per-frame table with every feature,
    the true gaze vector and the eyes' midpoint (camera frame, mm)."""
    from geoengage.geometry.gaze import GazeConfig
    from geoengage.geometry.registry import compute_frame_features, image_features
    from geoengage.schema import FRAMES, LANDMARK_COLUMNS

    face = FACE_3D_MM.copy()
    face[[37, 38, 43, 44], 1] -= 3.0
    face[[40, 41, 46, 47], 1] += 3.0
    rotation = rotation_from_angles(yaw, pitch, 0.0)
    camera_points = face @ rotation.T + np.array(head)
    landmarks = _project(camera_points)
    centres = EYEBALL_CENTRES_MM @ rotation.T + np.array(head)
    if eye_yaw is None:
        gazes = -centres / np.linalg.norm(centres, axis=1, keepdims=True)  # each eye looks at the camera
    else:
        y, p = np.radians([eye_yaw, eye_pitch])
        in_head = np.array([-np.sin(y) * np.cos(p), -np.sin(p), -np.cos(y) * np.cos(p)])
        gazes = np.tile(rotation @ in_head, (2, 1))
    pupils = _project(centres + 12.0 * gazes)
    gray = np.full((H, W), 150, np.uint8)
    for eye, pupil in zip((RIGHT_EYE, LEFT_EYE), pupils, strict=True):
        mask = np.zeros_like(gray)
        cv2.fillPoly(mask, [np.round(landmarks[eye] * 16).astype(np.int32)], 1, shift=4)
        eye_image = np.full_like(gray, 235)
        cv2.circle(eye_image, tuple(np.round(pupil * 16).astype(int)), int(round(1.5 * FOCAL / head[2] * 16)), 25,
                   -1, lineType=cv2.LINE_AA, shift=4)
        gray[mask > 0] = eye_image[mask > 0]
    row = {c.name: np.nan for c in FRAMES}
    row.update(video_id="r", source_path="r", frame_idx=0, time_s=0.0, frame_width_px=W, frame_height_px=H,
               camera_focal_px=FOCAL,  # the renderer's camera is known: a calibrated one
               frame_readable=True, face_found=True, n_faces=1, track_id=0)
    row.update(dict(zip(LANDMARK_COLUMNS, landmarks.ravel(), strict=True)))
    row.update(image_features(gray, landmarks))
    table = compute_frame_features(pd.DataFrame([row]), options={"gaze": GazeConfig(v_bias=0.0)})
    truth = gazes.mean(axis=0)
    return table, truth / np.linalg.norm(truth), centres.mean(axis=0)


def _vector(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    y, p = np.radians([yaw_deg, pitch_deg])
    return np.array([-np.sin(y) * np.cos(p), -np.sin(p), -np.cos(y) * np.cos(p)])


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


@pytest.mark.parametrize("yaw", [-30.0, 30.0])
def test_eyes_fixating_the_camera_from_a_turned_head(yaw: float) -> None:
    """Head turned +-30 deg, eyes on the camera: the composed gaze points at the camera within 5 deg."""
    table, _, origin = _render(yaw, 0.0)
    row = table.iloc[0]
    assert abs(row["yaw_deg"] - yaw) < 3  # the head pose itself is right
    estimate = _vector(row["gaze_yaw_deg"], row["gaze_pitch_deg"])
    assert _angle(estimate, -origin) < 5.0, (row["gaze_yaw_deg"], row["gaze_pitch_deg"])
    assert abs(row["eye_yaw_deg"] + yaw) < 8  # the eyes turn back against the head
    assert row["on_screen"] == 1.0
    # the old sum "head yaw + eye yaw from the ratio" is not used: the eye turns against the head here
    assert abs(row["gaze_yaw_deg"]) < abs(yaw) / 2


def test_eyes_looking_down_with_a_level_head() -> None:
    """Level head, eyes 20 deg down (reading notes): gaze pitch within 5 deg of -20, and off the screen's plane
    region of a laptop? No: 20 deg down from 600 mm lands ~230 mm below the eyes, below the screen's top."""
    table, _, _ = _render(0.0, 0.0, eye_yaw=0.0, eye_pitch=-20.0)
    row = table.iloc[0]
    assert abs(row["pitch_deg"]) < 3
    assert row["gaze_pitch_deg"] == pytest.approx(-20.0, abs=5.0)
    assert row["eye_pitch_deg"] == pytest.approx(-20.0, abs=5.0)
    assert abs(row["gaze_yaw_deg"]) < 3
    level, _, _ = _render(0.0, 0.0, eye_yaw=0.0, eye_pitch=0.0)
    assert abs(level.iloc[0]["gaze_pitch_deg"]) < 3


@pytest.mark.parametrize("head", [(0.0, 0.0, 600.0), (0.0, 0.0, 450.0)])
def test_a_pupil_at_the_forward_position_looks_along_the_head(head: tuple[float, float, float]) -> None:
    """``v_bias`` is where the pupil of someone looking straight ahead reads (module docstring): with the pupil there
    (and h ratio 0) on a level mean face on the camera axis, the gaze is the head's axis within 1 deg, not tilted up
    (off the axis, perspective moves where a forward pupil reads, so the premise holds only here). The eyeball
    centre used to sit behind the mean of the eye's six points (0.55 mm below the lid midline): this read 3.1 deg
    up."""
    landmarks = FOCAL * (FACE_3D_MM[:, :2] + head[:2]) / (FACE_3D_MM[:, 2:3] + head[2]) + [W / 2, H / 2]
    pose = estimate_pose(landmarks, W, H, FOCAL)
    assert np.allclose(pose[:3], 0.0, atol=0.1)
    bias = GazeConfig().v_bias
    vector, _ = gaze_vectors(landmarks, 0.0, bias, pose, np.array([W, H]), v_bias=bias, focal_px=FOCAL)
    yaw, pitch = angles_of(vector)
    assert abs(pitch) < 1.0 and abs(yaw) < 1.0, (yaw, pitch)


def test_the_screen_can_be_set() -> None:
    from geoengage.config import ExtractConfig
    from geoengage.geometry.gaze import GazeConfig

    table, _, _ = _render(0.0, 0.0, eye_yaw=0.0, eye_pitch=-20.0)
    row = table.iloc[0]
    assert row["screen_y_mm"] > 150  # lands well below the camera
    laptop = gaze_on_screen(table, gaze=GazeConfig(v_bias=0.0))
    tiny = gaze_on_screen(table, gaze=GazeConfig(v_bias=0.0, screen=ScreenGeometry(
        width_mm=100, height_mm=60, margin_mm=10, margin_x_deg=0.0, margin_y_deg=0.0)))
    assert laptop["on_screen"][0] == 1.0 and tiny["on_screen"][0] == 0.0
    options = ExtractConfig(screen_width_mm=100, screen_height_mm=60).feature_options()
    assert options["gaze"].screen.width_mm == 100
    assert ScreenGeometry(top_mm=300, height_mm=100, margin_mm=0).contains(np.array([0.0]), np.array([350.0]))[0]
