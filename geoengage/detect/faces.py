"""Frames -> face boxes: dlib's HOG detector, region checks and the crop-mode box.

Boxes are ``(left, top, right, bottom)`` float arrays in frame pixels, in the
geometry of dlib's frontal face detector (brows to chin, ear to ear).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np

__all__ = ["CROP_BOX_FRACTIONS", "Detection", "HogFaceDetector", "crop_box", "fit_crop_box", "fit_crop_box_to_files"]

#: dlib's HOG detector sees faces of about this width, in pixels, at scale 1.
DETECTOR_FACE_PX = 80

#: Face box of an image that is already a face crop, as fractions of its width and height
#: (left, top, right, bottom): the median detector box over the 3,098 engagement_wacv crops
#: where dlib's detector finds the face (benchmarks/landmark_yield.py measures it again).
CROP_BOX_FRACTIONS = (0.06, 0.16, 0.94, 1.03)


@dataclass(frozen=True)
class Detection:
    """A face box with the detector's score (NaN when no detector scored it)."""

    box: np.ndarray
    score: float


@functools.cache
def _hog() -> dlib.fhog_object_detector:
    return dlib.get_frontal_face_detector()


def _as_box(rect: dlib.rectangle, scale: float, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    return np.array([rect.left() / scale + dx, rect.top() / scale + dy,
                     (rect.right() + 1) / scale + dx, (rect.bottom() + 1) / scale + dy], dtype=np.float64)


class HogFaceDetector:
    """dlib's HOG + linear SVM frontal face detector, scaled to a smallest face size.

    Parameters
    ----------
    min_face_px : int
        Smallest face width to find; frames are resized by ``80 / min_face_px``.
    threshold : float
        Detector score a new face must pass (dlib's own default is 0; see
        :class:`~geoengage.config.ExtractConfig` for why geoengage uses 0.3).
    """

    def __init__(self, *, min_face_px: int = DETECTOR_FACE_PX, threshold: float = 0.3) -> None:
        self.min_face_px = min_face_px
        self.threshold = threshold

    def __call__(self, gray: np.ndarray) -> list[Detection]:
        """Faces in a grayscale uint8 frame, highest score first."""
        scale = DETECTOR_FACE_PX / self.min_face_px
        return self._run(gray, scale, 0.0, 0.0, self.threshold)

    def _run(self, gray: np.ndarray, scale: float, dx: float, dy: float, threshold: float) -> list[Detection]:
        image = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        rects, scores, _ = _hog().run(image, 0, threshold)
        found = [Detection(_as_box(r, scale, dx, dy), float(s)) for r, s in zip(rects, scores, strict=True)]
        return sorted(found, key=lambda d: -d.score)

    def in_region(
        self, gray: np.ndarray, box: np.ndarray, *, margin: float = 0.5, threshold: float = 0.0
    ) -> Detection | None:
        """The best face scoring above ``threshold`` inside ``box`` grown by ``margin`` of its size, or None.

        The region is resized so the face is about 100 px wide: a cheap check
        (a few milliseconds) that a tracked face is still there. Its threshold is dlib's
        default, 0, lower than that for new faces: the region is known to have held a face.
        """
        height, width = gray.shape[:2]
        size = max(box[2] - box[0], box[3] - box[1])
        left, top = int(max(0, box[0] - margin * size)), int(max(0, box[1] - margin * size))
        right, bottom = int(min(width, box[2] + margin * size)), int(min(height, box[3] + margin * size))
        if right - left < 8 or bottom - top < 8:
            return None
        found = self._run(gray[top:bottom, left:right], 100.0 / max(size, 1.0), float(left), float(top), threshold)
        return found[0] if found else None


def crop_box(height: int, width: int, fractions: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """The face box assumed for an image that is itself a face crop.

    ``fractions`` (left, top, right, bottom of the width and height) default to :data:`CROP_BOX_FRACTIONS`,
    measured on square crops; crops of another shape or framing need their own (:func:`fit_crop_box`).
    """
    fl, ft, fr, fb = CROP_BOX_FRACTIONS if fractions is None else fractions
    return np.array([fl * width, ft * height, fr * width, fb * height], dtype=np.float64)


def fit_crop_box(images: list[np.ndarray], *, threshold: float = 0.0, min_found: int = 10
                 ) -> tuple[tuple[float, float, float, float], int]:
    """Crop-box fractions fitted to a data set: the median detector box over the crops where dlib finds a face.

    ``images`` are grayscale or BGR face crops of one data set (a sample of a few hundred is plenty). Each
    is upscaled so that its shorter side is about 240 px, as for detection. Returns the fractions (left,
    top, right, bottom of width and height) and how many crops they come from; raises
    :class:`~geoengage.exceptions.InvalidParameterError` when fewer than ``min_found`` crops show a face.
    """
    from ..exceptions import InvalidParameterError

    detector = HogFaceDetector(threshold=threshold)
    boxes = []
    for image in images:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        height, width = gray.shape[:2]
        scale = max(1.0, 240.0 / min(height, width))
        found = detector(cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR))
        if found:
            left, top, right, bottom = found[0].box / scale
            boxes.append((left / width, top / height, right / width, bottom / height))
    if len(boxes) < min_found:
        raise InvalidParameterError(f"the detector found a face in {len(boxes)} of {len(images)} crops; at least "
                                    f"{min_found} are needed to fit a crop box. Give --crop-box fractions instead.")
    fitted = np.median(np.asarray(boxes), axis=0)
    return (float(fitted[0]), float(fitted[1]), float(fitted[2]), float(fitted[3])), len(boxes)


def fit_crop_box_to_files(paths: list[str] | list[Path], *, n_sample: int = 300, seed: int = 0
                          ) -> tuple[tuple[float, float, float, float], int, int]:
    """:func:`fit_crop_box` on a seeded sample of up to ``n_sample`` image files (unreadable ones are skipped).

    Returns the fractions, how many crops showed a face and how many were read.
    """
    from ..exceptions import GeoEngageError
    from ..media import read_image

    images = []
    for k in np.random.default_rng(seed).permutation(len(paths))[:n_sample]:
        try:
            images.append(read_image(paths[k]))
        except GeoEngageError:
            continue
    fractions, found = fit_crop_box(images)
    return fractions, found, len(images)
