"""Contract tests over the whole feature registry (loops over it, no hand-copied lists)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from geoengage.detect.landmarks import FIVE_POINT_LANDMARKS
from geoengage.geometry.registry import (
    compute_frame_features,
    eye_patch_features,
    face_crop_features,
    feature_specs,
    features_markdown,
    image_features,
)
from geoengage.importers import IMPORTED_SIGNALS
from geoengage.normalize import EyePatches, normalize_eyes, normalize_face
from geoengage.schema import DETECTOR_POINT_COLUMNS, LANDMARK_COLUMNS

FEATURES_MD = Path(__file__).resolve().parents[2] / "features" / "FEATURES.md"


def _table(landmarks: np.ndarray, times: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(landmarks.reshape(len(landmarks), -1), columns=list(LANDMARK_COLUMNS))
    return table.assign(video_id="v", track_id=0, time_s=times, frame_width_px=512, frame_height_px=512,
                        face_found=~np.isnan(landmarks).any(axis=(1, 2)))


def test_every_feature_is_documented() -> None:
    specs = feature_specs()
    assert len({s.name for s in specs}) == len(specs) >= 30
    for spec in specs:
        assert spec.unit and spec.doc and spec.low < spec.high and "__" not in spec.name, spec


def test_every_feature_has_one_value_per_frame_and_nan_without_a_face(
    astronaut: np.ndarray, astronaut_landmarks: np.ndarray
) -> None:
    n = 12
    rng = np.random.default_rng(0)
    landmarks = np.stack([astronaut_landmarks + rng.normal(0, 0.5, (68, 2)) for _ in range(n)])
    landmarks[[3, 7]] = np.nan
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    images = [image_features(gray, lm) if not np.isnan(lm).any() else {} for lm in landmarks]
    good = [i for i in range(n) if not np.isnan(landmarks[i]).any()]
    crops = face_crop_features(np.stack([normalize_face(gray, landmarks[i]) for i in good]))
    crops.update(eye_patch_features(EyePatches.stack([normalize_eyes(gray, landmarks[i]) for i in good])))
    faces = {name: np.full(n, np.nan) for name in crops}
    for name, values in crops.items():
        faces[name][good] = values
    # the detector's five points where a detector placed the face (they check the 68-point fit: landmarks_ok)
    points = np.stack([landmarks[:, list(idx)].mean(axis=1) for idx in FIVE_POINT_LANDMARKS], axis=1)
    table = _table(landmarks, np.arange(n) / 30).assign(
        **{s.name: [row.get(s.name, np.nan) for row in images] for s in feature_specs("image")}, **faces,
        **dict(zip(DETECTOR_POINT_COLUMNS, points.reshape(n, 10).T, strict=True)))
    out = compute_frame_features(table.assign(camera_focal_px=512.0))  # a calibrated camera: every feature
    for spec in feature_specs():
        column = out[spec.name].to_numpy(dtype=float)
        assert column.shape == (n,), spec.name
        assert np.isnan(column[[3, 7]]).all(), f"{spec.name} must be NaN without a face"
        assert not np.isnan(np.delete(column, [3, 7])).any(), f"{spec.name} is NaN on a good face"
    assert table.shape[1] < out.shape[1]  # the input is not modified
    # uncalibrated (the column absent, or NaN in some rows): every feature in mm is NaN there, the rest the same
    # (the uncalibrated model's focal length is the frame width, 512, the calibration given above)
    mixed = compute_frame_features(table.assign(camera_focal_px=np.where(np.arange(n) < 6, 512.0, np.nan)))
    for uncalibrated, first in ((compute_frame_features(table), 0), (mixed, 6)):
        for spec in feature_specs():
            expected = out[spec.name].to_numpy(dtype=float).copy()
            if spec.unit == "mm":
                expected[first:] = np.nan
            np.testing.assert_array_equal(uncalibrated[spec.name].to_numpy(dtype=float), expected, err_msg=spec.name)


def test_imported_tables_without_images_get_nan_image_features(astronaut_landmarks: np.ndarray) -> None:
    out = compute_frame_features(_table(astronaut_landmarks[None], np.array([0.0])))
    for spec in (*feature_specs("image"), *feature_specs("faces")):
        assert np.isnan(out[spec.name].iloc[0])
    assert np.isfinite(out["yaw_deg"].iloc[0])


def test_features_md_is_generated_from_the_registry() -> None:
    assert FEATURES_MD.read_text() == features_markdown(IMPORTED_SIGNALS), "run: geoengage features --markdown > features/FEATURES.md"


def test_extracted_features_lie_in_their_ranges(media_dir: Path) -> None:
    from geoengage.config import ExtractConfig
    from geoengage.extract import extract_frames

    table = extract_frames(media_dir / "one_face.avi", config=ExtractConfig(camera_hfov_deg=60.0))  # all features
    detected = int(table.det_nose_tip_x_px.notna().sum())  # frames where the detector (not the tracker) placed it
    assert 0 < detected < len(table)
    for spec in feature_specs():
        values = table[spec.name].dropna()
        # the check of the 68-point fit against the detector's points needs those points
        assert len(values) == (detected if spec.name in ("landmark_fit_error", "landmarks_ok") else len(table)), spec.name
        assert values.between(spec.low, spec.high).all(), (spec.name, values.min(), values.max())


def test_quality_follows_blur_and_light(astronaut: np.ndarray, astronaut_landmarks: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    sharp = image_features(gray, astronaut_landmarks)
    blurred = image_features(cv2.GaussianBlur(gray, (0, 0), 2.0), astronaut_landmarks)
    brighter = image_features(cv2.convertScaleAbs(gray, alpha=1.0, beta=40), astronaut_landmarks)
    assert blurred["face_sharpness"] < 0.3 * sharp["face_sharpness"]
    assert brighter["face_brightness"] == pytest.approx(sharp["face_brightness"] + 40, abs=3)
