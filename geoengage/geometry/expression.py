"""Landmarks -> mouth, smile, brow and eye geometry, normalised by the inter-ocular distance.

Distances are divided by the inter-ocular distance (IOD, between the eye centres) so they do
not depend on face size or camera distance; vertical measures are taken in the face's own
upright frame (eye line horizontal), so in-plane head tilt does not change them. The CNN's
expression probabilities are separate columns (``expr_<class>``).
"""

from __future__ import annotations

import numpy as np

from .base import distance, frame_features, inter_ocular

__all__ = ["upright"]


def upright(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks rotated about the eye midpoint so the eye line is horizontal, in IOD units; (n, 68, 2)."""
    right_eye, left_eye = landmarks[:, 36:42].mean(axis=1), landmarks[:, 42:48].mean(axis=1)
    axis = left_eye - right_eye
    iod = np.linalg.norm(axis, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos, sin = axis[:, 0] / iod, axis[:, 1] / iod
        centred = landmarks - ((right_eye + left_eye) / 2)[:, None, :]
        x = centred[..., 0] * cos[:, None] + centred[..., 1] * sin[:, None]
        y = -centred[..., 0] * sin[:, None] + centred[..., 1] * cos[:, None]
        return np.stack([x, y], axis=-1) / iod[:, None, None]


@frame_features(
    ("mouth_aspect_ratio", "ratio", 0, 1.5, "Inner-lip opening / inner mouth width (talking, yawning): 0 closed."),
    ("mouth_open_iod", "IOD", 0, 1.2, "Gap between the inner lips at their centre (62-66) / IOD."),
    ("smile_width_iod", "IOD", 0.3, 2.0, "Distance between the mouth corners (48-54) / IOD."),
    ("mouth_corner_lift_iod", "IOD", -0.5, 0.5, "Height of the mouth corners above the lips' centre / IOD: + = smile."),
    ("brow_raise_iod", "IOD", 0, 1.2, "Height of the brows (17-26) above the eye centres / IOD, face upright."),
    ("brow_furrow_iod", "IOD", 0, 1.2, "Distance between the inner brow ends (21-22) / IOD: smaller = frown."),
    ("eye_openness_iod", "IOD", 0, 0.4, "Mean distance between the upper and lower lids / IOD."),
)
def face_shape(landmarks: np.ndarray, frame_size: np.ndarray) -> dict[str, np.ndarray]:
    iod = inter_ocular(landmarks)
    up = upright(landmarks)
    with np.errstate(invalid="ignore", divide="ignore"):
        inner_open = distance(landmarks, [61, 62, 63], [67, 66, 65]).mean(axis=1)
        lips_centre_y = (up[:, 51, 1] + up[:, 57, 1]) / 2
        return {
            "mouth_aspect_ratio": inner_open / distance(landmarks, 60, 64),
            "mouth_open_iod": distance(landmarks, 62, 66) / iod,
            "smile_width_iod": distance(landmarks, 48, 54) / iod,
            "mouth_corner_lift_iod": lips_centre_y - (up[:, 48, 1] + up[:, 54, 1]) / 2,
            "brow_raise_iod": -up[:, 17:27, 1].mean(axis=1),
            "brow_furrow_iod": distance(landmarks, 21, 22) / iod,
            "eye_openness_iod": distance(landmarks, [37, 38, 43, 44], [41, 40, 47, 46]).mean(axis=1) / iod,
        }
