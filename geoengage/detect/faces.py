"""Frames -> face boxes: the YuNet CNN detector (default) or dlib's HOG detector, region checks and the crop-mode box.

Boxes are ``(left, top, right, bottom)`` float arrays in frame pixels, in the
geometry of dlib's frontal face detector (brows to chin, ear to ear): the geometry dlib's 68-point predictor
was trained on.

**YuNet** (:class:`YuNetFaceDetector`, the default): a 233 KB CNN (Wu, Peng, Yu, "YuNet: A Tiny Millisecond-level
Face Detector", 2023; Apache-2.0, ``geoengage/models/face_detection/LICENSE``) run by OpenCV's own
``cv2.FaceDetectorYN``. It finds faces turned to 90 deg, where the HOG detector (trained on frontal faces) loses
them past 45 deg, and gives five points (right eye, left eye, nose tip, right and left mouth corners: the subject's
right). Its box is taller and narrower than dlib's; :data:`YUNET_TO_HOG` maps its box and points to the HOG box
(fitted by ``models/fit_detector_box.py`` on the faces both detectors find). The input size decides both cost and
the smallest face found: frames are resized by ``YUNET_FACE_PX / min_face_px`` (never below
:data:`YUNET_MIN_INPUT_PX` on the longer side), so a face of ``min_face_px`` reaches YuNet at the size it still finds.
The model file is checked against its SHA-256 when loaded (:func:`~geoengage.detect.models.packaged_model`).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import dlib
import numpy as np

from ..exceptions import GeoEngageError, InvalidParameterError, ModelFileError
from ..media import opencv_errors_only, read_image
from .models import packaged_model

__all__ = ["CROP_BOX_FRACTIONS", "DETECTORS", "Detection", "FaceDetector", "HogFaceDetector", "YuNetFaceDetector",
           "box_area", "box_iou", "closest_face", "crop_box", "fit_crop_box", "fit_crop_box_to_files", "make_detector",
           "yunet_features"]

#: dlib's HOG detector sees faces of about this width, in pixels, at scale 1.
DETECTOR_FACE_PX = 80

#: Face box of an image that is already a face crop, as fractions of its width and height
#: (left, top, right, bottom): the median detector box over the 3,098 engagement_wacv crops
#: where dlib's detector finds the face (benchmarks/landmark_yield.py measures it again).
CROP_BOX_FRACTIONS = (0.06, 0.16, 0.94, 1.03)


@dataclass(frozen=True)
class Detection:
    """A face box with the detector's score (NaN when no detector scored it) and, from YuNet, its five points
    ((5, 2) frame pixels: right eye, left eye, nose tip, right and left mouth corner, the subject's right first)."""

    box: np.ndarray
    score: float
    points: np.ndarray | None = None


class FaceDetector(Protocol):
    """What the tracker needs of a face detector: faces in a frame, and a check in a region. ``colour`` says
    whether it wants the BGR frame (True) or the grayscale one."""

    colour: bool

    def __call__(self, image: np.ndarray) -> list[Detection]: ...

    def in_region(self, image: np.ndarray, box: np.ndarray) -> Detection | None: ...


def _region(gray: np.ndarray, box: np.ndarray, margin: float) -> tuple[int, int, int, int] | None:
    """``box`` grown by ``margin`` of its size and clipped to the frame, as integer (left, top, right, bottom);
    None when too small to search."""
    height, width = gray.shape[:2]
    size = max(box[2] - box[0], box[3] - box[1])
    left, top = int(max(0, box[0] - margin * size)), int(max(0, box[1] - margin * size))
    right, bottom = int(min(width, box[2] + margin * size)), int(min(height, box[3] + margin * size))
    if right - left < 8 or bottom - top < 8:
        return None
    return left, top, right, bottom


def box_area(box: np.ndarray) -> float:
    """Area of a ``(left, top, right, bottom)`` box, in square pixels."""
    return float((box[2] - box[0]) * (box[3] - box[1]))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(left, top, right, bottom)`` boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = box_area(a) + box_area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def closest_face(found: list[Detection], box: np.ndarray) -> Detection | None:
    """The answer of a region check: of the faces found around ``box``, the one that overlaps it most (the highest
    score among equals, and where none overlaps). The region (the box grown by half its size) can hold a neighbour:
    two faces 0.9 face widths apart, the better-scored neighbour was answered, and a track followed it."""
    return max(found, key=lambda face: (box_iou(face.box, box), face.score), default=None)


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

    colour = False  # HOG works on the grayscale frame

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
        """The face scoring above ``threshold`` inside ``box`` grown by ``margin`` of its size that overlaps ``box``
        most (:func:`closest_face`), or None.

        The region is resized so the face is about 100 px wide: a cheap check
        (a few milliseconds) that a tracked face is still there. Its threshold is dlib's
        default, 0, lower than that for new faces: the region is known to have held a face.
        """
        region = _region(gray, box, margin)
        if region is None:
            return None
        left, top, right, bottom = region
        size = max(box[2] - box[0], box[3] - box[1])
        found = self._run(gray[top:bottom, left:right], 100.0 / max(size, 1.0), float(left), float(top), threshold)
        return closest_face(found, box)


#: YuNet finds faces down to about this width, in pixels, at its input (on the real clip in ../shared, faces of
#: 42-190 px were all found with the frame at 0.3 of its size, i.e. 13 px and up at the input).
YUNET_FACE_PX = 16
#: The smallest input YuNet is given, on its longer side: small images (face crops) are enlarged to it.
YUNET_MIN_INPUT_PX = 160
#: YuNet score a new face must pass. Faces score 0.85-0.95 (turned to 90 deg: 0.92 on pointing04); among
#: scikit-image's photos without a face the highest score is 0.58 (a galaxy in the Hubble deep field).
YUNET_THRESHOLD = 0.6
#: YuNet score a tracked face must keep in its region check: the region is known to have held a face. On the real
#: clip in ../shared, 211 of 213 region and full-frame answers on real faces score 0.5 or more (lowest 0.43); a coffee
#: cup that replaced a face in the test clip scored 0.47 in the face's region.
YUNET_REGION_THRESHOLD = 0.5

#: Least-squares map from :func:`yunet_features` to dlib's HOG box: columns are the HOG box centre's offset
#: (x, y) from YuNet's box centre and the log of its side, in YuNet box widths. Fitted by
#: ``models/fit_detector_box.py`` on the 714 faces both detectors find in ../shared (pointing04 persons 01-07 and
#: face_samples); held-out error of the map: centre 0.045 (x) and 0.048 (y) box widths, side 8%.
YUNET_TO_HOG = np.array([
    [0.0878, 0.1853, -0.0665],
    [0.1575, 0.3068, 0.1468],
    [-0.0831, 0.1924, -0.2603],
    [0.8200, -0.3067, 1.1475],
    [-0.1258, 0.3125, -0.3253],
    [-0.4799, 1.1972, -1.6016],
    [0.3402, -0.1273, 0.4885],
    [-0.1488, 0.4128, -0.6518],
    [0.1771, -0.1990, 0.0343],
    [-1.2262, 0.9324, -1.4622],
    [0.3045, -0.0988, -0.3124],
    [0.9881, -1.4751, 2.1930],
])


def yunet_features(raw: np.ndarray) -> np.ndarray:
    """The inputs of :data:`YUNET_TO_HOG` from one YuNet row (box x, y, w, h, five points, in frame pixels): a
    constant, the log of the box's height/width and the five points relative to the box centre, in box widths."""
    x, y, w, h = (float(v) for v in raw[:4])
    points = (np.asarray(raw[4:14], dtype=np.float64).reshape(5, 2) - [x + w / 2, y + h / 2]) / w
    return np.r_[1.0, np.log(h / w), points.ravel()]


def _hog_box(raw: np.ndarray) -> np.ndarray:
    """dlib's HOG-geometry box for one YuNet row (:data:`YUNET_TO_HOG`)."""
    dx, dy, log_side = yunet_features(raw) @ YUNET_TO_HOG
    width = float(raw[2])
    cx, cy = raw[0] + raw[2] / 2 + dx * width, raw[1] + raw[3] / 2 + dy * width
    half = width * float(np.exp(log_side)) / 2
    return np.array([cx - half, cy - half, cx + half, cy + half], dtype=np.float64)


class _Net:
    """One loaded YuNet network and the input size it is set to."""

    def __init__(self, path: Path) -> None:
        try:
            with opencv_errors_only():  # OpenCV's DNN engine warns about backend targets on every load
                self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), 0.05, 0.3, 50)
        except cv2.error as err:
            raise ModelFileError(f"{path}: OpenCV cannot load the face detector ({str(err).strip()[:200]}).") from err
        self.size = (320, 320)


_NETS = threading.local()


def _yunet_net(path: Path) -> _Net:
    """The YuNet network of ``path`` loaded once per thread (loading takes ~5 ms: a service request would pay it
    each time); detectors of one thread share it, each setting the input size it needs."""
    nets = _NETS.__dict__.setdefault("nets", {})
    if path not in nets:
        nets[path] = _Net(path)
    return nets[path]


class YuNetFaceDetector:
    """The YuNet CNN face detector (OpenCV's ``cv2.FaceDetectorYN``), boxes in dlib's geometry (module docstring).

    Parameters
    ----------
    min_face_px : int
        Smallest face width to find; frames are resized by ``YUNET_FACE_PX / min_face_px``.
    threshold : float
        YuNet score (0-1) a new face must pass (:data:`YUNET_THRESHOLD`).

    It takes BGR frames (``colour``): given grayscale ones (replicated to three channels) it scores faces lower
    (on the real clip in ../shared at a third of its size: 221 of 275 frames at 0.6 instead of 275).
    """

    colour = True

    def __init__(self, *, min_face_px: int = 48, threshold: float = YUNET_THRESHOLD) -> None:

        self.min_face_px = min_face_px
        self.threshold = threshold
        self._net = _yunet_net(packaged_model("face_detector"))  # hash-checked: a damaged file fails here, by name

    def raw(self, image: np.ndarray, *, scale: float | None = None, threshold: float | None = None) -> np.ndarray:
        """YuNet's rows (n, 15) in frame pixels (box x, y, w, h, five points, score), highest score first, for a BGR
        (or grayscale) uint8 frame."""
        height, width = image.shape[:2]
        if scale is None:
            scale = YUNET_FACE_PX / self.min_face_px
        scale = max(scale, YUNET_MIN_INPUT_PX / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if size != self._net.size:
            self._net.net.setInputSize(size)
            self._net.size = size
        _, found = self._net.net.detect(resized if resized.ndim == 3 else cv2.cvtColor(resized, cv2.COLOR_GRAY2BGR))
        if found is None:
            return np.zeros((0, 15))
        found = found[found[:, 14] >= (self.threshold if threshold is None else threshold)].astype(np.float64)
        found[:, 0:14:2] /= size[0] / width
        found[:, 1:14:2] /= size[1] / height
        return found[np.argsort(-found[:, 14], kind="stable")]

    @staticmethod
    def _detection(row: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> Detection:
        row = row.copy()
        row[[0, 4, 6, 8, 10, 12]] += dx  # x of the box's corner and of the points (2 and 3 are its size)
        row[[1, 5, 7, 9, 11, 13]] += dy
        return Detection(_hog_box(row), float(row[14]), row[4:14].reshape(5, 2))

    def __call__(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR (or grayscale) uint8 frame, highest score first."""
        return [self._detection(row) for row in self.raw(image)]

    def in_region(self, image: np.ndarray, box: np.ndarray, *, margin: float = 0.5,
                  threshold: float = YUNET_REGION_THRESHOLD) -> Detection | None:
        """The face scoring above ``threshold`` inside ``box`` grown by ``margin`` of its size that overlaps ``box``
        most (:func:`closest_face`), or None.

        The region is resized so the face is about 64 px wide, but never below :data:`YUNET_MIN_INPUT_PX` on its
        longer side (so a region twice the face's size reaches YuNet at 160 px): 2.5-3.5 ms on one core."""
        region = _region(image, box, margin)
        if region is None:
            return None
        left, top, right, bottom = region
        size = max(box[2] - box[0], box[3] - box[1])
        found = self.raw(image[top:bottom, left:right], scale=64.0 / max(size, 1.0), threshold=threshold)
        return closest_face([self._detection(row, float(left), float(top)) for row in found], box)


#: The face detectors ``ExtractConfig.detector`` names, with their default thresholds.
DETECTORS = {"yunet": YUNET_THRESHOLD, "hog": 0.3}


def make_detector(name: str, *, min_face_px: int, threshold: float | None = None) -> FaceDetector:
    """The detector ``name`` (a key of :data:`DETECTORS`) at its default threshold unless one is given."""
    threshold = DETECTORS[name] if threshold is None else threshold
    if name == "hog":
        return HogFaceDetector(min_face_px=min_face_px, threshold=threshold)
    return YuNetFaceDetector(min_face_px=min_face_px, threshold=threshold)


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

    images = []
    for k in np.random.default_rng(seed).permutation(len(paths))[:n_sample]:
        try:
            images.append(read_image(paths[k]))
        except GeoEngageError:
            continue
    fractions, found = fit_crop_box(images)
    return fractions, found, len(images)
