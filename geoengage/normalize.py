"""Frames + landmarks -> normalised face images: alignment, crop and illumination equalisation.

One function, :func:`normalize_face`, prepares a face for any model that reads face
pixels (the expression CNN uses it for training and inference alike):

1. **align and crop** (:func:`align_face`): a similarity transform (rotation, scale,
   translation) puts the two eye centres level at ``eye_y`` of the crop's height, ``iod`` of
   its width apart and centred horizontally; the crop is ``size`` x ``size`` grayscale;
2. **equalise illumination** (:func:`equalize_illumination`): CLAHE (contrast-limited
   adaptive histogram equalisation, clip limit 2, 4x4 tiles) evens out side lighting;
3. **standardise**: zero mean, unit standard deviation, float32.
"""

from __future__ import annotations

import cv2
import numpy as np

from .exceptions import InvalidParameterError

__all__ = ["align_face", "alignment_matrix", "equalize_illumination", "normalize_crops", "normalize_face"]


def alignment_matrix(landmarks: np.ndarray, *, size: int = 48, eye_y: float = 0.36, iod: float = 0.40) -> np.ndarray:
    """The 2x3 similarity transform taking frame pixels to aligned-crop pixels."""
    if np.isnan(landmarks).any():
        raise InvalidParameterError("`landmarks` must not contain NaN: there is no face to align.")
    right_eye, left_eye = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    delta = left_eye - right_eye
    distance = float(np.hypot(*delta))
    if distance <= 0:
        raise InvalidParameterError("`landmarks` must have two distinct eye centres.")
    scale = iod * size / distance
    angle = np.arctan2(delta[1], delta[0])
    cos, sin = scale * np.cos(-angle), scale * np.sin(-angle)
    centre = (right_eye + left_eye) / 2
    rotation = np.array([[cos, -sin], [sin, cos]])
    offset = np.array([size / 2, eye_y * size]) - rotation @ centre
    return np.hstack([rotation, offset[:, None]])


def align_face(gray: np.ndarray, landmarks: np.ndarray, *, size: int = 48, eye_y: float = 0.36,
               iod: float = 0.40) -> np.ndarray:
    """The face rotated so the eyes are level, scaled and cropped to ``size`` x ``size`` (uint8)."""
    if gray.ndim != 2:
        raise InvalidParameterError(f"`gray` must be a 2-D grayscale image. Got shape {gray.shape} instead.")
    matrix = alignment_matrix(landmarks, size=size, eye_y=eye_y, iod=iod)
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_AREA if matrix[0, 0] ** 2 + matrix[0, 1] ** 2 < 1
                          else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def equalize_illumination(face: np.ndarray) -> np.ndarray:
    """CLAHE on a uint8 grayscale face (clip limit 2, 4x4 tiles)."""
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(face)


def normalize_face(gray: np.ndarray, landmarks: np.ndarray, *, size: int = 48) -> np.ndarray:
    """Aligned, equalised, standardised face: float32 array of shape (size, size)."""
    face = equalize_illumination(align_face(gray, landmarks, size=size)).astype(np.float32)
    return (face - face.mean()) / max(float(face.std()), 1e-6)


def normalize_crops(images: np.ndarray, *, upscale: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Small face-crop images (n, h, w) uint8 (e.g. FER-2013's 48x48) -> aligned faces (n, 48, 48) float32.

    Each crop is upscaled ``upscale`` times (dlib's detector needs faces of about 80 px), framed by
    the detector's box or, when it finds none, by the calibrated crop box
    (:func:`geoengage.detect.faces.crop_box`), fitted with the 68 landmarks and normalised by
    :func:`normalize_face`, as in inference. Also returns whether the detector framed each crop.
    """
    from .detect.faces import HogFaceDetector, crop_box
    from .detect.landmarks import DlibLandmarker

    detector, landmarker = HogFaceDetector(threshold=0.0), DlibLandmarker()
    faces = np.empty((len(images), 48, 48), np.float32)
    detected = np.zeros(len(images), bool)
    for i, image in enumerate(images):
        big = cv2.resize(image, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
        found = detector(big)
        box = found[0].box if found else crop_box(*big.shape)
        detected[i] = bool(found)
        faces[i] = normalize_face(big, landmarker(big, box))
    return faces, detected
