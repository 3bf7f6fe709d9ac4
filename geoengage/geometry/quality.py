"""Frames + landmarks -> face quality: size, framing, sharpness and lighting.

Image measures are taken on the face's landmark bounding box resampled to 64x64 pixels, so
they do not depend on face size: ``face_sharpness`` is the variance of the Laplacian
(blur lowers it), ``face_brightness`` the mean and ``face_contrast`` the standard deviation of
the gray levels (0-255).
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import frame_features, inter_ocular

__all__: list[str] = []

_FACE_PX = 64


@frame_features(
    ("iod_px", "px", 10, 1000, "Inter-ocular distance in the frame (face size; dlib needs about 30 px or more)."),
    ("landmarks_in_frame", "ratio", 0, 1, "Fraction of the 68 landmarks inside the frame (partial faces < 1)."),
    typical_range=("iod_px",),
)
def face_size(landmarks: np.ndarray, frame_size: np.ndarray) -> dict[str, np.ndarray]:
    inside = ((landmarks[..., 0] >= 0) & (landmarks[..., 0] < frame_size[:, None, 0])
              & (landmarks[..., 1] >= 0) & (landmarks[..., 1] < frame_size[:, None, 1]))
    fraction = np.where(np.isnan(landmarks).any(axis=(1, 2)), np.nan, inside.mean(axis=1))
    return {"iod_px": inter_ocular(landmarks), "landmarks_in_frame": fraction}


@frame_features(
    ("face_sharpness", "Laplacian var", 0, 5000, "Variance of the Laplacian of the face at 64x64 px; low = blurred."),
    ("face_brightness", "gray level", 0, 255, "Mean gray level of the face (lighting)."),
    ("face_contrast", "gray level", 0, 128, "Standard deviation of the face's gray levels."),
    kind="image",
    typical_range=("face_sharpness",),
)
def face_image_quality(gray: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    left, top = np.clip(np.floor(landmarks.min(axis=0)).astype(int), 0, None)
    right, bottom = np.ceil(landmarks.max(axis=0)).astype(int) + 1
    right, bottom = min(right, gray.shape[1]), min(bottom, gray.shape[0])
    if right - left < 4 or bottom - top < 4:
        return {"face_sharpness": float("nan"), "face_brightness": float("nan"), "face_contrast": float("nan")}
    face = cv2.resize(gray[top:bottom, left:right], (_FACE_PX, _FACE_PX), interpolation=cv2.INTER_AREA)
    return {"face_sharpness": float(cv2.Laplacian(face, cv2.CV_64F).var()),
            "face_brightness": float(face.mean()), "face_contrast": float(face.std())}
