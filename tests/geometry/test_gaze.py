"""geometry/gaze.py: the iris position read from the image moves with the iris; on-screen geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from geoengage.geometry.blink import LEFT_EYE, RIGHT_EYE
from geoengage.geometry.gaze import ScreenGeometry, gaze_on_screen, gaze_ratios, pupil_position
from geoengage.geometry.pose import FACE_3D_MM, rotation_from_angles


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


def _row(yaw=0.0, pitch=0.0, roll=0.0, h=0.0, z=600.0) -> dict[str, float]:
    return {"yaw_deg": yaw, "pitch_deg": pitch, "roll_deg": roll, "gaze_h_ratio": h, "gaze_v_ratio": 0.0,
            "head_x_mm": 0.0, "head_y_mm": 0.0, "head_z_mm": z}


def test_on_screen_geometry() -> None:
    rows = pd.DataFrame([_row(), _row(pitch=-20), _row(yaw=40), _row(pitch=20), _row(h=0.6),
                         {**_row(), "gaze_h_ratio": np.nan}])
    out = gaze_on_screen(rows, ScreenGeometry(width_mm=345, height_mm=194, margin_mm=50))
    eyes = FACE_3D_MM[36:48].mean(axis=0)  # gaze starts between the eyes, 600 mm + eye depth from the camera
    assert out["screen_x_mm"][0] == pytest.approx(eyes[0], abs=1e-6)
    assert out["screen_y_mm"][0] == pytest.approx(eyes[1], abs=1e-6)
    origin = rotation_from_angles(0, -20, 0) @ eyes + [0, 0, 600]  # the eyes move with the head
    assert out["screen_y_mm"][1] == pytest.approx(origin[1] + origin[2] * np.tan(np.radians(20)), abs=1e-6)
    assert out["on_screen"][:4].tolist() == [1.0, 1.0, 0.0, 0.0]  # camera, screen middle, far right, above
    assert out["gaze_yaw_deg"][4] == pytest.approx(np.degrees(np.arcsin(0.6 * 15 / 12)))
    assert np.isnan(out["on_screen"][5]) and np.isnan(out["screen_x_mm"][5])
