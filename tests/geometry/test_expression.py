"""Property tests: shape features ignore where the face is, how big it is and how it is tilted in the image."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoengage.geometry.blink import eye_aspect_ratios
from geoengage.geometry.expression import face_shape
from geoengage.geometry.quality import face_size

INVARIANT = ("ear_left", "ear_right", "ear", "mouth_aspect_ratio", "mouth_open_iod", "smile_width_iod",
             "mouth_corner_lift_iod", "brow_raise_iod", "brow_furrow_iod", "eye_openness_iod")


def _features(points: np.ndarray) -> dict[str, float]:
    batch, size = points[None], np.array([[4000.0, 4000.0]])
    values = {**eye_aspect_ratios(batch, size), **face_shape(batch, size)}
    return {k: float(v[0]) for k, v in values.items()}


@settings(max_examples=150, deadline=None)
@given(dx=st.floats(-500, 500), dy=st.floats(-500, 500), scale=st.floats(0.3, 4.0), angle=st.floats(-45, 45))
def test_similarity_invariance(astronaut_landmarks: np.ndarray, dx: float, dy: float, scale: float, angle: float) -> None:
    theta = np.radians(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = (astronaut_landmarks - 200) @ rotation.T * scale + 200 + [dx, dy]
    before, after = _features(astronaut_landmarks), _features(moved)
    for name in INVARIANT:
        assert after[name] == pytest.approx(before[name], rel=1e-9, abs=1e-12), name


def test_values_on_the_astronaut(astronaut_landmarks: np.ndarray) -> None:
    """She smiles with her mouth closed, eyes open, looking into the camera."""
    f = _features(astronaut_landmarks)
    assert 0.25 < f["ear"] < 0.4
    assert f["mouth_corner_lift_iod"] > 0.1  # smile: corners above the lips' centre
    assert f["mouth_aspect_ratio"] < 0.3
    assert 0.9 < f["smile_width_iod"] < 1.3


def test_opening_the_mouth_raises_mar(astronaut_landmarks: np.ndarray) -> None:
    opened = astronaut_landmarks.copy()
    opened[[56, 57, 58, 65, 66, 67, 6, 7, 8, 9, 10], 1] += 15  # drop the jaw and lower lip
    assert _features(opened)["mouth_aspect_ratio"] > _features(astronaut_landmarks)["mouth_aspect_ratio"] + 0.3


def test_face_size_and_framing(astronaut_landmarks: np.ndarray) -> None:
    batch = np.stack([astronaut_landmarks, astronaut_landmarks + [280, 0], np.full((68, 2), np.nan)])
    out = face_size(batch, np.array([[512.0, 512.0]] * 3))
    assert out["iod_px"][0] == pytest.approx(43.4, abs=1.0)
    assert out["landmarks_in_frame"][0] == 1.0 and 0.5 < out["landmarks_in_frame"][1] < 0.8
    assert np.isnan(out["iod_px"][2]) and np.isnan(out["landmarks_in_frame"][2])
