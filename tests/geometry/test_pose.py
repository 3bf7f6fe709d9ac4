"""geometry/pose.py: known poses are recovered; mirroring flips yaw and roll; signs match the convention."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoengage.detect.faces import HogFaceDetector
from geoengage.detect.landmarks import DlibLandmarker
from geoengage.geometry.pose import (
    FACE_3D_MM,
    MIRROR,
    angles_from_rotation,
    camera_matrix,
    estimate_pose,
    rotation_from_angles,
)

WIDTH, HEIGHT = 640, 480


def _project(yaw: float, pitch: float, roll: float, t=(0.0, 0.0, 600.0)) -> np.ndarray:
    rvec = cv2.Rodrigues(rotation_from_angles(yaw, pitch, roll))[0]
    points, _ = cv2.projectPoints(FACE_3D_MM, rvec, np.array(t, dtype=np.float64), camera_matrix(WIDTH, HEIGHT), None)
    return points[:, 0]


def _poses(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-60, 60, size=(n, 3))


def test_recovers_known_poses_without_noise() -> None:
    errors = [np.abs(estimate_pose(_project(*p), WIDTH, HEIGHT)[:3] - p).max() for p in _poses(200, 0)]
    assert max(errors) < 1.0  # degrees (in practice ~1e-10)


def test_recovers_known_poses_with_two_pixel_noise() -> None:
    """A webcam face at 60 cm (inter-ocular distance ~67 px) with 2 px Gaussian noise on every landmark."""
    rng = np.random.default_rng(1)
    errors = np.array([np.abs(estimate_pose(_project(*p) + rng.normal(0, 2.0, (68, 2)), WIDTH, HEIGHT)[:3] - p)
                       for p in _poses(300, 2)])
    assert np.median(errors) < 2.0
    assert (np.percentile(errors, 95, axis=0) < 4.0).all()  # measured: 2.5 / 3.2 / 1.6 deg (yaw/pitch/roll)


def test_translation_and_residual() -> None:
    pose = estimate_pose(_project(10, -5, 3, t=(40.0, -20.0, 700.0)), WIDTH, HEIGHT)
    assert pose[3:6] == pytest.approx([40.0, -20.0, 700.0], abs=0.01)
    assert pose[6] == pytest.approx(0.0, abs=1e-6)


def test_mirror_flips_yaw_and_roll() -> None:
    for yaw, pitch, roll in _poses(50, 3):
        points = _project(yaw, pitch, roll)
        mirrored = points[MIRROR] * [-1, 1] + [WIDTH, 0]
        a, b = estimate_pose(points, WIDTH, HEIGHT), estimate_pose(mirrored, WIDTH, HEIGHT)
        assert b[:3] == pytest.approx([-a[0], a[1], -a[2]], abs=1e-4)


def _photo_pose(image: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    (face,) = HogFaceDetector()(gray)
    return estimate_pose(DlibLandmarker()(gray, face.box), gray.shape[1], gray.shape[0])


def test_real_photo_mirror_and_tilt(astronaut: np.ndarray) -> None:
    upright = _photo_pose(astronaut)
    mirrored = _photo_pose(np.ascontiguousarray(astronaut[:, ::-1]))
    assert mirrored[0] == pytest.approx(-upright[0], abs=1.5) and abs(upright[0]) > 3  # yaw flips
    assert mirrored[2] == pytest.approx(-upright[2], abs=1.5)  # roll flips
    assert mirrored[1] == pytest.approx(upright[1], abs=1.5)  # pitch stays
    # Turning the picture 10 degrees counter-clockwise tilts the head towards the subject's right shoulder.
    tilted = _photo_pose(cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((222, 128), 10, 1.0), (512, 512)))
    assert tilted[2] - upright[2] == pytest.approx(10.0, abs=1.5)


def test_nan_landmarks_give_nan() -> None:
    points = _project(0, 0, 0)
    points[5] = np.nan
    assert np.isnan(estimate_pose(points, WIDTH, HEIGHT)).all()


@settings(max_examples=200, deadline=None)
@given(st.floats(-85, 85), st.floats(-85, 85), st.floats(-85, 85))
def test_angles_round_trip(yaw: float, pitch: float, roll: float) -> None:
    assert angles_from_rotation(rotation_from_angles(yaw, pitch, roll)) == pytest.approx((yaw, pitch, roll), abs=1e-6)


def test_sign_convention_by_construction() -> None:
    """Relative to the eyes, +yaw moves the nose tip to the image left and +pitch (chin up) moves it up;
    +roll (towards the right shoulder) turns the eye line counter-clockwise in the image."""
    def nose_from_eyes(points: np.ndarray) -> np.ndarray:
        return points[30] - points[36:48].mean(axis=0)

    centre = nose_from_eyes(_project(0, 0, 0))
    assert nose_from_eyes(_project(20, 0, 0))[0] < centre[0] - 5
    assert nose_from_eyes(_project(0, 20, 0))[1] < centre[1] - 5
    rolled = _project(0, 0, 20)
    right_eye, left_eye = rolled[36:42].mean(axis=0), rolled[42:48].mean(axis=0)
    assert left_eye[1] < right_eye[1]  # the subject's left eye (image right) rises


def test_distance_needs_the_calibrated_focal_length() -> None:
    """A webcam with a 65 degree field of view (focal 500 px at 640 wide): its focal length recovers the position;
    the uncalibrated model (focal = frame width) keeps the angles but puts the head 28% too far away."""
    from geoengage.geometry.pose import focal_from_hfov

    focal = 500.0
    assert focal_from_hfov(WIDTH, 2 * np.degrees(np.arctan(WIDTH / 2 / focal))) == pytest.approx(focal)
    rvec = cv2.Rodrigues(rotation_from_angles(12.0, -6.0, 4.0))[0]
    points, _ = cv2.projectPoints(FACE_3D_MM, rvec, np.array([30.0, -10.0, 650.0]),
                                  camera_matrix(WIDTH, HEIGHT, focal), None)
    calibrated = estimate_pose(points[:, 0], WIDTH, HEIGHT, focal)
    assert calibrated[:3] == pytest.approx([12.0, -6.0, 4.0], abs=1e-4)
    assert calibrated[3:6] == pytest.approx([30.0, -10.0, 650.0], abs=0.01)
    assumed = estimate_pose(points[:, 0], WIDTH, HEIGHT)
    assert np.abs(assumed[:3] - calibrated[:3]).max() < 2.0  # angles: about right
    assert assumed[5] / calibrated[5] == pytest.approx(WIDTH / focal, rel=0.03)  # distance: off by the focal ratio


@pytest.mark.parametrize(("yaw", "pitch", "z"), [(20.0, 0.0, 600.0), (-30.0, 0.0, 600.0), (0.0, 15.0, 600.0),
                                                 (15.0, -10.0, 600.0), (25.0, 10.0, 450.0), (-20.0, -15.0, 800.0)])
def test_face_crops_are_posed_with_their_own_camera(yaw: float, pitch: float, z: float) -> None:
    """A head seen by a 65 deg camera, cut to a crop as face-crop data sets are: with the crops' camera model
    (CROP_FOCAL_FACTOR, what crop mode uses) its yaw and pitch come back within 2.5 and 1 deg. The full-frame rule
    (focal length = the crop's width) puts the face ~13 cm away and read 20 deg of yaw as 9.3, -30 as -15.7."""
    import pandas as pd

    from geoengage.config import ExtractConfig
    from geoengage.geometry.registry import compute_frame_features
    from geoengage.schema import FRAMES, LANDMARK_COLUMNS

    focal, width, height = 1000.0, 1280, 960
    points = FACE_3D_MM @ rotation_from_angles(yaw, pitch, 0.0).T + [0.0, 0.0, z]
    landmarks = focal * points[:, :2] / points[:, 2:3] + [width / 2, height / 2]
    left, top = landmarks.min(axis=0)
    face_width = np.ptp(landmarks[:, 0])
    crop = landmarks - [left - 0.1 * face_width, top - 0.25 * face_width]  # the crop: 1.2 x 1.4 face widths
    row = {c.name: np.nan for c in FRAMES}
    row.update(video_id="c", source_path="c", frame_idx=0, time_s=0.0, frame_width_px=1.2 * face_width,
               frame_height_px=1.4 * face_width, frame_readable=True, face_found=True, n_faces=1, track_id=0)
    row.update(dict(zip(LANDMARK_COLUMNS, crop.ravel(), strict=True)))
    options = ExtractConfig(crop_mode="fallback").feature_options()
    posed = compute_frame_features(pd.DataFrame([row]), options=options).iloc[0]
    assert posed["yaw_deg"] == pytest.approx(yaw, abs=2.5)
    assert posed["pitch_deg"] == pytest.approx(pitch, abs=1.0)
    assert np.isnan(posed["head_z_mm"])  # still no distance: the crop's camera is a model, not a calibration
    assert ExtractConfig(crop_mode="fallback").model_focal(100) == pytest.approx(100 * 5.0)
    assert np.isnan(ExtractConfig().model_focal(100))  # full frames keep the full-frame rule (NaN: the width)
