"""detect/landmarks.py: dlib's 68 points land on the face; box <-> landmarks; registry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from geoengage.detect.faces import box_iou
from geoengage.detect.landmarks import (
    DlibLandmarker,
    box_from_landmarks,
    get_landmark_backend,
    register_landmark_backend,
)
from geoengage.exceptions import InvalidParameterError

from .test_faces import ASTRONAUT_BOX


@pytest.fixture(scope="module")
def points(astronaut: np.ndarray) -> np.ndarray:
    return DlibLandmarker()(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY), ASTRONAUT_BOX)


def test_landmarks_land_on_the_face(points: np.ndarray) -> None:
    assert points.shape == (68, 2)
    # Positions read off the photo (pixels): eye centres, nose tip, chin, mouth centre.
    assert points[36:42].mean(axis=0) == pytest.approx([203.3, 101.5], abs=3)  # subject's right eye
    assert points[42:48].mean(axis=0) == pytest.approx([246.7, 103.8], abs=3)  # subject's left eye
    assert points[30] == pytest.approx([225, 127], abs=3)  # nose tip
    assert points[8] == pytest.approx([221, 178], abs=4)  # chin
    assert points[48:68].mean(axis=0) == pytest.approx([223.0, 145.5], abs=3)  # mouth
    # iBUG order: jaw runs left to right in the image, eyes above nose above mouth above chin.
    assert np.all(np.diff(points[0:17, 0]) >= 0) and points[16, 0] - points[0, 0] > 80
    assert points[36:48, 1].mean() < points[30, 1] < points[48:68, 1].mean() < points[8, 1]


def test_box_from_landmarks_reproduces_the_detector_box(points: np.ndarray) -> None:
    assert box_iou(box_from_landmarks(points), ASTRONAUT_BOX) > 0.75


def test_box_from_landmarks_is_translation_and_scale_equivariant(points: np.ndarray) -> None:
    box = box_from_landmarks(points)
    moved = box_from_landmarks(points * 2.0 + [10.0, -5.0])
    assert moved == pytest.approx(box * 2.0 + [10.0, -5.0, 10.0, -5.0])


def test_registry() -> None:
    class Centre:
        def __call__(self, gray: np.ndarray, box: np.ndarray) -> np.ndarray:
            return np.tile([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], (68, 1))

    register_landmark_backend("centre-test", Centre)
    out = get_landmark_backend("centre-test")(np.zeros((10, 10), np.uint8), np.array([0.0, 0.0, 4.0, 6.0]))
    assert out.shape == (68, 2) and out[0].tolist() == [2.0, 3.0]
    assert isinstance(get_landmark_backend(), DlibLandmarker)
    with pytest.raises(InvalidParameterError, match="`landmark_backend` must be one of"):
        get_landmark_backend("nope")


def test_landmarks_on_real_photos(shared_data) -> None:
    """On every real one-face photo the detector box and the box derived from its landmarks agree."""
    from geoengage.detect.faces import HogFaceDetector
    from geoengage.media import read_image

    photos = sorted((shared_data / "face_samples").glob("obama*.jpg")) + [shared_data / "face_samples" / "biden.jpg"]
    for photo in photos:
        gray = cv2.cvtColor(read_image(photo), cv2.COLOR_BGR2GRAY)
        found = HogFaceDetector(min_face_px=40)(gray)
        assert found, photo
        fitted = DlibLandmarker()(gray, found[0].box)
        assert box_iou(box_from_landmarks(fitted), found[0].box) > 0.6, photo
