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
    "DlibLandmarker",
    "LandmarkBackend",
    "box_from_landmarks",
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
    """dlib's 68-point shape predictor (about 1 ms a face on one core)."""

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
