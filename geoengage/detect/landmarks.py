"""Face boxes -> 68 landmarks (iBUG-68 order), with a small backend registry.

A landmark backend is any object with ``__call__(gray, box) -> ndarray (68, 2)``
(:class:`LandmarkBackend`); :func:`register_landmark_backend` adds one under a name
and :func:`get_landmark_backend` builds it. ``"dlib"`` (the default) is dlib's
ensemble-of-regression-trees shape predictor trained on iBUG 300-W.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Protocol

import dlib
import numpy as np

from ..exceptions import InvalidParameterError
from .models import model_path

__all__ = [
    "FIT_DISAGREEMENT_MAX",
    "FIVE_POINT_LANDMARKS",
    "DlibLandmarker",
    "LandmarkBackend",
    "box_from_landmarks",
    "fit_disagreement",
    "fit_disagrees",
    "get_landmark_backend",
    "register_landmark_backend",
]

# How dlib's detector box relates to the bounding box of the 68 landmarks it yields:
# box centre = landmark-box centre + offset * landmark-box size; box size = gain * landmark-box size.
# Medians over the 31 detector boxes of ../shared/data/face_samples (spread about 0.08 of the size);
# the tracker only needs the box close enough for the shape predictor to converge.
_BOX_GAIN = np.array([1.07, 1.05])
_BOX_OFFSET = np.array([0.02, -0.12])


class LandmarkBackend(Protocol):
    """Anything that fits 68 landmarks inside a face box of a grayscale frame."""

    def __call__(self, gray: np.ndarray, box: np.ndarray) -> np.ndarray: ...


@functools.cache
def _shape_predictor(name: str) -> dlib.shape_predictor:
    return dlib.shape_predictor(str(model_path(name)))


class DlibLandmarker:
    """dlib's 68-point shape predictor: 2-4.5 ms a face on one core with the ``dlib-bin`` wheel (3.8-4.3 ms on the
    real clip's tracked boxes, ``benchmarks/landmark_breakdown.py``)."""

    def __call__(self, gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Landmarks of shape (68, 2), float, frame pixels, for the face in ``box``."""
        rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1)
        shape = _shape_predictor("landmarks68")(gray, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The detector-style box ``(left, top, right, bottom)`` that would yield these landmarks.

    Used by the tracker to refit landmarks in the next frame from the current ones.
    """
    low, high = np.nanmin(landmarks, axis=0), np.nanmax(landmarks, axis=0)
    size = high - low
    centre = (low + high) / 2 + _BOX_OFFSET * size
    side = float(np.mean(_BOX_GAIN * size))
    return np.array([centre[0] - side / 2, centre[1] - side / 2, centre[0] + side / 2, centre[1] + side / 2])


#: Landmarks that stand for the detector's five points: (right eye centre, left eye centre, nose tip, right and left
#: mouth corner), each the mean of these iBUG-68 indices.
FIVE_POINT_LANDMARKS = (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,))

#: Largest :func:`fit_disagreement` of a 68-point fit that holds the face. On the pointing04 photos in ../shared
#: (persons 01-07, pitch within +-30 deg, landmarks fitted in YuNet's mapped box, ``benchmarks/head_pose.py``) the
#: median disagreement is 0.08 at yaw 0, 0.09 at 30, 0.11 at 60, 0.15 at 75 and 0.20 at 90 deg (90th percentiles
#: 0.12, 0.15, 0.19, 0.26, 0.34): the fit holds every frontal face and gives way in profiles. dlib's predictor was
#: trained on faces up to about 45 deg: past that its fit drifts towards a frontal face while the points follow the
#: turn.
FIT_DISAGREEMENT_MAX = 0.2


def fit_disagreement(landmarks: np.ndarray, points: np.ndarray) -> np.ndarray:
    """How far a 68-point fit lies from the detector's five points: the mean distance between each point and the
    landmarks standing for it (:data:`FIVE_POINT_LANDMARKS`), over the five points' own size (the larger of their
    width and height span). ``landmarks`` (..., 68, 2), ``points`` (..., 5, 2); NaN where either is missing."""
    standing = np.stack([landmarks[..., list(idx), :].mean(axis=-2) for idx in FIVE_POINT_LANDMARKS], axis=-2)
    span = np.max(points.max(axis=-2) - points.min(axis=-2), axis=-1)  # NaN where a point is missing
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.linalg.norm(standing - points, axis=-1).mean(axis=-1) / span


def fit_disagrees(landmarks: np.ndarray, points: np.ndarray) -> bool:
    """Whether a 68-point fit does not hold the face the detector's five points show (:data:`FIT_DISAGREEMENT_MAX`)."""
    return bool(fit_disagreement(landmarks, points) > FIT_DISAGREEMENT_MAX)


_BACKENDS: dict[str, Callable[[], LandmarkBackend]] = {"dlib": DlibLandmarker}


def register_landmark_backend(name: str, factory: Callable[[], LandmarkBackend]) -> None:
    """Make ``factory()`` available as the landmark backend ``name``."""
    _BACKENDS[name] = factory


def get_landmark_backend(name: str = "dlib") -> LandmarkBackend:
    """Build the landmark backend registered as ``name``."""
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise InvalidParameterError(
            f"`landmark_backend` must be one of {sorted(_BACKENDS)}. Got {name!r} instead.") from None
