"""detect/faces.py: HOG detection at a chosen face size, region checks, crop box."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from geoengage.detect.faces import CROP_BOX_FRACTIONS, HogFaceDetector, box_iou, crop_box
from geoengage.exceptions import InvalidParameterError

ASTRONAUT_BOX = np.array([179.0, 83.0, 267.0, 171.0])  # dlib's box for the astronaut's face


def test_detects_the_astronaut(astronaut: np.ndarray) -> None:
    found = HogFaceDetector()(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    assert len(found) == 1
    assert np.allclose(found[0].box, ASTRONAUT_BOX, atol=1.0)
    assert found[0].score > 1.0


def test_no_face_in_coffee(no_face_image: np.ndarray) -> None:
    assert HogFaceDetector()(cv2.cvtColor(no_face_image, cv2.COLOR_BGR2GRAY)) == []


def test_min_face_px_finds_small_faces(astronaut: np.ndarray) -> None:
    small = cv2.resize(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY), None, fx=0.5, fy=0.5)
    assert HogFaceDetector()(small) == []  # a 44 px face is below dlib's 80 px window
    found = HogFaceDetector(min_face_px=40)(small)
    assert len(found) == 1
    assert box_iou(found[0].box * 2, ASTRONAUT_BOX) > 0.8  # boxes come back in the frame's pixels


def test_in_region_confirms_and_rejects(astronaut: np.ndarray, no_face_image: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    found = HogFaceDetector().in_region(gray, ASTRONAUT_BOX)
    assert found is not None and box_iou(found.box, ASTRONAUT_BOX) > 0.6
    empty = cv2.cvtColor(no_face_image, cv2.COLOR_BGR2GRAY)
    assert HogFaceDetector().in_region(empty, ASTRONAUT_BOX) is None


def test_crop_box_scales_with_the_image() -> None:
    fl, ft, fr, fb = CROP_BOX_FRACTIONS
    assert crop_box(100, 200).tolist() == pytest.approx([fl * 200, ft * 100, fr * 200, fb * 100])


def test_crop_box_fitted_to_tall_crops_frames_their_face(astronaut: np.ndarray) -> None:
    """Tall 3:4 crops (DAiSEE's shape) around the astronaut's face: the fitted box matches the detector's box,
    where the box measured on square crops does not."""
    from geoengage.detect.faces import fit_crop_box

    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    face = HogFaceDetector(threshold=0.0)(gray)[0].box
    cx, cy, size = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2, face[2] - face[0]
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(12):
        width = size * rng.uniform(1.0, 1.15)
        height, dx, dy = width * 4 / 3, rng.normal(0, 0.03) * size, rng.normal(0, 0.03) * size
        left, top = int(cx + dx - width / 2), int(cy + dy - height * 0.45)
        crops.append(cv2.resize(gray[top:top + int(height), left:left + int(width)], (90, 120)))
    fractions, n = fit_crop_box(crops)
    assert n >= 10 and fractions[0] < 0.1 and fractions[2] > 0.9
    held_out = crops[0]
    detector = HogFaceDetector(threshold=0.0)
    truth = detector(cv2.resize(held_out, None, fx=3, fy=3))[0].box / 3
    assert box_iou(crop_box(120, 90, fractions), truth) > 0.75
    assert box_iou(crop_box(120, 90), truth) < box_iou(crop_box(120, 90, fractions), truth)
    with pytest.raises(InvalidParameterError, match="at least 10 are needed"):
        fit_crop_box([np.zeros((120, 90), np.uint8)] * 12)
