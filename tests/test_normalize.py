"""normalize.py: the aligned crop puts the eyes where the template says, whatever the pose in the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from geoengage.exceptions import InvalidParameterError
from geoengage.normalize import align_face, alignment_matrix, normalize_face


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_eyes_land_on_the_template(astronaut_landmarks: np.ndarray) -> None:
    matrix = alignment_matrix(astronaut_landmarks, size=48, eye_y=0.36, iod=0.40)
    moved = _apply(matrix, astronaut_landmarks)
    assert moved[36:42].mean(axis=0) == pytest.approx([24 - 9.6, 0.36 * 48], abs=1e-9)
    assert moved[42:48].mean(axis=0) == pytest.approx([24 + 9.6, 0.36 * 48], abs=1e-9)


def test_rotated_scaled_input_gives_the_same_crop(astronaut: np.ndarray, astronaut_landmarks: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    turn = cv2.getRotationMatrix2D((222.0, 128.0), 25, 1.5)
    turned = cv2.warpAffine(gray, turn, (768, 768))
    a = align_face(gray, astronaut_landmarks).astype(float)
    b = align_face(turned, _apply(turn, astronaut_landmarks)).astype(float)
    assert np.abs(a - b).mean() < 6  # gray levels, interpolation differences only
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.97


def test_illumination_is_evened_out(astronaut: np.ndarray, astronaut_landmarks: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    dim = cv2.convertScaleAbs(gray, alpha=0.45, beta=10)
    a, b = normalize_face(gray, astronaut_landmarks), normalize_face(dim, astronaut_landmarks)
    assert a.dtype == np.float32 and a.shape == (48, 48)
    assert abs(a.mean()) < 1e-5 and a.std() == pytest.approx(1.0, abs=1e-4)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_no_face_is_an_error(astronaut_landmarks: np.ndarray) -> None:
    with pytest.raises(InvalidParameterError, match="no face to align"):
        alignment_matrix(np.full((68, 2), np.nan))
