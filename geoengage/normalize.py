"""Frames + landmarks -> normalised face images: alignment, crop and illumination equalisation.

One function, :func:`normalize_face`, prepares a face for any model that reads face
pixels (the expression CNN uses it for training and inference alike):

1. **align and crop** (:func:`align_face`): a similarity transform (rotation, scale,
   translation) puts the two eye centres level at ``eye_y`` of the crop's height, ``iod`` of
   its width apart and centred horizontally; the crop is ``size`` x ``size`` grayscale;
2. **equalise illumination** (:func:`equalize_illumination`): CLAHE (contrast-limited
   adaptive histogram equalisation, clip limit 2, 4x4 tiles) evens out side lighting;
3. **standardise**: zero mean, unit standard deviation, float32.

Eyes are normalised the way MPIIGaze (Zhang et al., CVPR 2015; "Revisiting data normalization", ETRA 2018)
does it, for the gaze CNN (:func:`normalize_eyes`): a virtual camera (focal length 960 px) is turned to look
straight at the eye centre (the midpoint of its two corner landmarks, at the depth the head pose puts the 3D mean
face's corners) with the head's x axis kept horizontal (head roll removed), and moved to 600 mm from it; the frame
is warped into that camera (one perspective warp, :func:`eye_warp`), the 60x36 patch histogram-equalised, and the
9x15 window around the iris cut out (rows 13-21, columns 22-36: the window of ``../shared/data/mpiigaze``). The subject's
right eye is mirrored so that both look like a left eye (its yaws change sign), as in MPIIGaze.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .detect.faces import HogFaceDetector, crop_box
from .detect.landmarks import DlibLandmarker
from .exceptions import InvalidParameterError
from .geometry.blink import eye_aspect_ratio
from .geometry.gaze import MIN_OPEN_EAR
from .geometry.pose import FACE_3D_MM, camera_matrix, estimate_pose, rotation_from_angles

__all__ = ["EYE_CROP", "EYE_DISTANCE_MM", "EYE_FOCAL_PX", "EYE_PATCH_SIZE", "EyePatches", "align_face",
           "alignment_matrix", "equalize_illumination", "eye_normalization", "eye_warp", "normalize_crops",
           "normalize_eyes", "normalize_face"]

#: MPIIGaze's normalised eye camera: focal length (pixels), distance to the eye centre (mm), patch (width, height).
EYE_FOCAL_PX = 960.0
EYE_DISTANCE_MM = 600.0
EYE_PATCH_SIZE = (60, 36)
#: The window of the 36x60 patch the gaze CNN reads (rows, columns): 9 x 15 pixels around the iris.
EYE_CROP = (slice(13, 22), slice(22, 37))
#: The eye corners of each eye in iBUG-68 order: the subject's left eye (42, 45), then the right (36, 39).
_EYE_CORNERS = ((42, 45), (36, 39))


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


@dataclass(frozen=True)
class EyePatches:
    """Both eyes of ``n`` faces normalised for the gaze CNN (index 0: the subject's left eye, 1: the right eye,
    mirrored).

    Attributes
    ----------
    crops : ndarray of shape (n, 2, 9, 15), uint8
        The iris windows of the histogram-equalised 36x60 patches (the right eye's mirrored).
    head_yaw_pitch : ndarray of shape (n, 2, 2), radians
        Head pose in each eye's normalised camera, MPIIGaze's convention (the mirrored eye's yaw negated).
    rotations : ndarray of shape (n, 2, 3, 3)
        Camera -> normalised-camera rotations (of the unmirrored eyes): a gaze ``g_n`` predicted in the
        normalised camera is ``rotations[i, k].T @ g_n`` in the camera.
    eye_open : ndarray of shape (n, 2), bool
        The eye's aspect ratio is at least 0.15 (a shut eye's patch says nothing about gaze).
    """

    crops: np.ndarray
    head_yaw_pitch: np.ndarray
    rotations: np.ndarray
    eye_open: np.ndarray

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def stack(cls, items: list[EyePatches]) -> EyePatches:
        """One batch from several (each of any length)."""
        return cls(*(np.concatenate([getattr(item, name) for item in items])
                     for name in ("crops", "head_yaw_pitch", "rotations", "eye_open")))


def eye_normalization(centre_mm: np.ndarray, head_rotation: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) of the normalised camera: z towards the eye centre, x along the head's x axis
    (made orthogonal), so head roll is removed. Rows are the normalised camera's axes in the camera frame."""
    forward = centre_mm / np.linalg.norm(centre_mm)
    down = np.cross(forward, head_rotation[:, 0])
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    return np.stack([right / np.linalg.norm(right), down, forward])


def eye_warp(centre_mm: np.ndarray, rotation: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """The 3x3 perspective warp from camera-image pixels to the normalised eye patch (``C_n S R C^-1``)."""
    scale = np.diag([1.0, 1.0, EYE_DISTANCE_MM / float(np.linalg.norm(centre_mm))])
    width, height = EYE_PATCH_SIZE
    normalised = np.array([[EYE_FOCAL_PX, 0.0, width / 2], [0.0, EYE_FOCAL_PX, height / 2], [0.0, 0.0, 1.0]])
    return normalised @ scale @ rotation @ np.linalg.inv(camera)


def _head_angles(rotation: np.ndarray) -> np.ndarray:
    """MPIIGaze's 2-D head pose (yaw, pitch), radians, of a head rotation in a normalised camera: the angles
    of the head's z axis."""
    z = rotation[:, 2]
    return np.array([np.arctan2(z[0], z[2]), np.arcsin(np.clip(z[1], -1.0, 1.0))])


def normalize_eyes(gray: np.ndarray, landmarks: np.ndarray, *, full: bool = False,
                   focal_px: float | None = None) -> EyePatches | None:
    """Both eyes of one face, normalised as MPIIGaze does (module docstring); None without a head pose.

    Parameters
    ----------
    gray : ndarray of shape (height, width), uint8
        The frame (the camera's principal point at its centre).
    landmarks : ndarray of shape (68, 2), pixels
    full : bool
        Return the whole 36x60 patches in ``crops`` instead of the 9x15 windows (for checks and display).
    focal_px : float, optional
        The camera's calibrated focal length in pixels; None: the frame width (geoengage's uncalibrated model).
    """
    if gray.ndim != 2:
        raise InvalidParameterError(f"`gray` must be a 2-D grayscale image. Got shape {gray.shape} instead.")
    height, width = gray.shape
    pose = estimate_pose(landmarks, width, height, focal_px)
    if not np.isfinite(pose[:6]).all():
        return None
    head = rotation_from_angles(*pose[:3])
    camera = camera_matrix(width, height, focal_px)
    crops, angles, rotations = [], [], []
    for k, corners in enumerate(_EYE_CORNERS):
        # the depth from the head model, the direction from the eye's own corner landmarks (the mean face's
        # corners can sit a few pixels off the subject's)
        model_centre = head @ FACE_3D_MM[list(corners)].mean(axis=0) + pose[3:6]
        seen = np.linalg.solve(camera, [*landmarks[list(corners)].mean(axis=0), 1.0])
        centre = seen * model_centre[2]
        rotation = eye_normalization(centre, head)
        patch = cv2.equalizeHist(cv2.warpPerspective(gray, eye_warp(centre, rotation, camera), EYE_PATCH_SIZE,
                                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        head_angles = _head_angles(rotation @ head)
        if k == 1:  # the right eye is mirrored to look like a left eye
            patch, head_angles = patch[:, ::-1], head_angles * [-1.0, 1.0]
        crops.append(np.ascontiguousarray(patch if full else patch[EYE_CROP]))
        angles.append(head_angles)
        rotations.append(rotation)
    eye_open = eye_aspect_ratio(np.stack([landmarks[42:48], landmarks[36:42]])) >= MIN_OPEN_EAR
    return EyePatches(np.stack(crops)[None], np.stack(angles)[None], np.stack(rotations)[None], eye_open[None])
