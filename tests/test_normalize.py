"""normalize.py: the aligned crop puts the eyes where the template says, whatever the pose in the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from geoengage.exceptions import InvalidParameterError
from geoengage.geometry.pose import FACE_3D_MM, camera_matrix, rotation_from_angles
from geoengage.normalize import (
    EYE_CROP,
    EYE_PATCH_SIZE,
    align_face,
    alignment_matrix,
    eye_normalization,
    eye_warp,
    normalize_eyes,
    normalize_face,
)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_eyes_land_on_the_template(astronaut_landmarks: np.ndarray) -> None:
    matrix = alignment_matrix(astronaut_landmarks, size=48, eye_y=0.36, iod=0.40)
    moved = _apply(matrix, astronaut_landmarks)
    assert moved[36:42].mean(axis=0) == pytest.approx([24 - 9.6, 0.36 * 48], abs=1e-9)
    assert moved[42:48].mean(axis=0) == pytest.approx([24 + 9.6, 0.36 * 48], abs=1e-9)


def test_rotated_scaled_input_gives_the_same_crop(astronaut: np.ndarray, astronaut_landmarks: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    turn = cv2.getRotationMatrix2D((222.0, 128.0), 25, 1.5)
    turned = cv2.warpAffine(gray, turn, (768, 768))
    a = align_face(gray, astronaut_landmarks).astype(float)
    b = align_face(turned, _apply(turn, astronaut_landmarks)).astype(float)
    assert np.abs(a - b).mean() < 6  # gray levels, interpolation differences only
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.97


def test_illumination_is_evened_out(astronaut: np.ndarray, astronaut_landmarks: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    dim = cv2.convertScaleAbs(gray, alpha=0.45, beta=10)
    a, b = normalize_face(gray, astronaut_landmarks), normalize_face(dim, astronaut_landmarks)
    assert a.dtype == np.float32 and a.shape == (48, 48)
    assert abs(a.mean()) < 1e-5 and a.std() == pytest.approx(1.0, abs=1e-4)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_no_face_is_an_error(astronaut_landmarks: np.ndarray) -> None:
    with pytest.raises(InvalidParameterError, match="no face to align"):
        alignment_matrix(np.full((68, 2), np.nan))


# --- eye normalisation for the gaze CNN (MPIIGaze's) ---------------------------------------------------------------



def _synthetic_eye(seed: int) -> np.ndarray:
    """A 36x60 eye-like patch: bright sclera, a dark iris off centre, lids, texture."""
    rng = np.random.default_rng(seed)
    patch = np.full((36, 60), 60, np.uint8)
    cv2.ellipse(patch, (30, 18), (24, 9), 0, 0, 360, 215, -1)
    cv2.circle(patch, (int(rng.integers(24, 37)), int(rng.integers(15, 22))), 8, 40, -1)
    cv2.circle(patch, (30, 18), 3, 5, -1)
    noise = cv2.GaussianBlur(rng.normal(0, 25, patch.shape), (0, 0), 1.5)  # texture coarser than the resampling
    return cv2.equalizeHist(np.clip(patch + noise, 0, 255).astype(np.uint8))


def _render(patches: tuple[np.ndarray, np.ndarray], angles: tuple[float, float, float],
            position_mm: tuple[float, float, float], size: tuple[int, int] = (1920, 1080)
            ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """A camera frame holding the two eye patches where a 3D mean face with this head pose puts its eyes (the left
    eye's patch as given, the right eye's mirrored), its exact 68 landmarks, and the head rotation's normalised
    rotations per eye."""
    width, height = size
    camera = camera_matrix(width, height)
    head = rotation_from_angles(*angles)
    points = FACE_3D_MM @ head.T + np.array(position_mm)
    landmarks = (points @ camera.T)[:, :2] / points[:, 2:]
    frame = np.full((height, width), 128, np.uint8)
    rotations = []
    for k, (corners, patch) in enumerate(zip(((42, 45), (36, 39)), patches, strict=True)):
        centre = points[list(corners)].mean(axis=0)
        rotation = eye_normalization(centre, head)
        rotations.append(rotation)
        warp = eye_warp(centre, rotation, camera)
        source = patch if k == 0 else patch[:, ::-1]
        mask = cv2.warpPerspective(np.full_like(source, 255), np.linalg.inv(warp), (width, height),
                                   flags=cv2.INTER_NEAREST)
        drawn = cv2.warpPerspective(source, np.linalg.inv(warp), (width, height), flags=cv2.INTER_CUBIC,
                                    borderMode=cv2.BORDER_REPLICATE)
        frame = np.where(mask > 0, drawn, frame)
    return frame, landmarks, rotations


@pytest.mark.parametrize(("angles", "position"), [((0, 0, 0), (0, 0, 550)), ((25, -10, 8), (60, -40, 650)),
                                                 ((-30, 15, -12), (-80, 50, 500))])
def test_eye_normalisation_round_trips_a_known_head_pose(angles, position) -> None:
    """Eye patches re-projected into a camera frame with a known head pose come back as the same patches, with the
    head pose the normalised camera should see."""
    left, right = _synthetic_eye(0), _synthetic_eye(1)
    frame, landmarks, rotations = _render((left, right), angles, position)
    eyes = normalize_eyes(frame, landmarks, full=True)
    assert eyes is not None and eyes.crops.shape == (1, 2, 36, 60) and eyes.eye_open.all()
    for k, original in enumerate((left, right)):
        back = eyes.crops[0, k].astype(float)
        inner = (slice(4, 32), slice(6, 54))  # away from the patch's edge, where the warp samples outside it
        assert np.abs(back[inner] - original[inner]).mean() < 9, k  # gray levels, two resamplings (measured 3.7-7.2)
        assert np.corrcoef(back[inner].ravel(), original[inner].astype(float).ravel())[0, 1] > 0.9, k
        assert np.allclose(eyes.rotations[0, k], rotations[k], atol=1e-3)  # the pose fit converges to ~1e-4
        expected = rotations[k] @ rotation_from_angles(*angles)
        yaw, pitch = np.arctan2(expected[0, 2], expected[2, 2]), np.arcsin(expected[1, 2])
        assert eyes.head_yaw_pitch[0, k] == pytest.approx([yaw if k == 0 else -yaw, pitch], abs=1e-3)
    crops = normalize_eyes(frame, landmarks)
    assert crops.crops.shape == (1, 2, 9, 15) and crops.crops.dtype == np.uint8
    assert np.array_equal(crops.crops[0, 0], eyes.crops[0, 0][EYE_CROP])


def test_a_misplaced_eye_does_not_pass_for_the_same_patch() -> None:
    """The round trip's tolerance is tight enough to see a 1-pixel shift of the patch."""
    left = _synthetic_eye(0)
    frame, landmarks, _ = _render((left, _synthetic_eye(1)), (0, 0, 0), (0, 0, 550))
    landmarks = landmarks + [0.0, 2.0]  # 2 px in a 1920-px frame at 550 mm: about 1 px in the patch
    back = normalize_eyes(frame, landmarks, full=True).crops[0, 0].astype(float)
    inner = (slice(4, 32), slice(6, 54))
    assert np.abs(back[inner] - left[inner]).mean() > 15  # measured 24


def test_mpiigaze_patches_re_projected_give_the_data_sets_crops(shared_data) -> None:
    """p00's full 36x60 patches, placed in a camera frame at a head pose and normalised again, give back the
    data set's own 9x15 crops (rows 13-21, columns 22-36) for the same samples."""
    full = np.load(shared_data / "mpiigaze" / "p00_full36x60.npz")["image"]
    crops = np.load(shared_data / "mpiigaze" / "mpiigaze_eye_crops.npz")["image"][:3000]
    differences = []
    for i, (angles, position) in enumerate([((10, 5, 3), (30, -20, 600)), ((-20, -8, -5), (-40, 30, 520))]):
        left, right = full[100 * i], full[1500 + 100 * i]
        frame, landmarks, _ = _render((left, right), angles, position)
        eyes = normalize_eyes(frame, landmarks)
        for k, row in enumerate((100 * i, 1500 + 100 * i)):
            differences.append(np.abs(eyes.crops[0, k].astype(float) - crops[row]).mean())
    # gray levels: measured 3.7-4.4; the data's own full patch vs its crop differ by 2.8-4.3 (JPEG noise), and the
    # same crops shifted by one row by 7.8-21
    assert max(differences) < 6
    assert EYE_PATCH_SIZE == (60, 36)
