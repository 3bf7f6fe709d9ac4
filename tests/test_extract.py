"""extract.py: the per-frame table for (image | video) x (0 | 1 | 2 faces), batches, storage."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import pandas as pd
import pytest

from geoengage.config import ExtractConfig
from geoengage.detect.landmarks import DlibLandmarker
from geoengage.exceptions import MediaReadError, SchemaError
from geoengage.extract import extract_batch, extract_frames, iter_face_rows, read_frames, write_frames
from geoengage.geometry.expression_cnn import EXPRESSION_CLASSES
from geoengage.media import Frame
from geoengage.schema import FRAMES, LANDMARK_COLUMNS, validate


def test_image_with_one_face(media_dir: Path) -> None:
    # With the HOG detector at dlib's own threshold (0) the photo also yields a weak false positive on the space suit
    # (score 0.05), larger than the face: the reason its default threshold is 0.3.
    hog = ExtractConfig(detector="hog", min_face_px=80, detect_threshold=0.0, face_policy="all")
    loose = extract_frames(media_dir / "one_face.jpg", config=hog)
    assert loose.n_faces.tolist() == [2, 2] and loose.lm30_x_px.iloc[1] == pytest.approx(225, abs=3)
    table = extract_frames(media_dir / "one_face.jpg")
    validate(table, FRAMES, where="test")
    assert len(table) == 1
    row = table.iloc[0]
    assert row.face_found and row.n_faces == 1 and row.track_id == 0 and row.face_source == "detector"
    assert row.video_id == "one_face.jpg" and row.frame_idx == 0 and row.time_s == 0.0
    assert (row.frame_width_px, row.frame_height_px) == (512, 512)
    assert row[list(LANDMARK_COLUMNS)].astype(float).notna().all()
    assert row.lm30_x_px == pytest.approx(225, abs=3) and row.lm30_y_px == pytest.approx(127, abs=3)


def test_image_without_a_face_keeps_its_row(media_dir: Path) -> None:
    table = extract_frames(media_dir / "no_face.png")
    assert len(table) == 1
    row = table.iloc[0]
    assert not row.face_found and row.n_faces == 0 and row.track_id == -1
    assert row[list(LANDMARK_COLUMNS)].astype(float).isna().all() and np.isnan(row.face_width_px)


def test_image_with_two_faces(media_dir: Path) -> None:
    every = extract_frames(media_dir / "two_faces.png", config=ExtractConfig(face_policy="all"))
    assert len(every) == 2 and (every.n_faces == 2).all() and sorted(every.track_id) == [0, 1]
    assert every.face_width_px.iloc[0] > every.face_width_px.iloc[1]
    largest = extract_frames(media_dir / "two_faces.png")
    assert len(largest) == 1 and largest.n_faces.iloc[0] == 2
    assert largest.face_width_px.iloc[0] == every.face_width_px.iloc[0]


def test_video_rows_follow_frames(media_dir: Path) -> None:
    table = extract_frames(media_dir / "leaves.avi")
    assert table.frame_idx.tolist() == list(range(90))
    assert table.time_s.to_numpy() == pytest.approx(np.arange(90) / 30.0)
    absent = (table.time_s >= 1.05) & (table.time_s < 2.05)
    assert (table.face_found == ~absent).all()
    assert table.loc[absent, list(LANDMARK_COLUMNS)].isna().all().all()
    assert set(table.track_id[~absent & (table.time_s < 1)]) == {0} and set(table.track_id[table.time_s > 2.1]) == {0}


def test_sampling_keeps_fewer_frames(media_dir: Path) -> None:
    table = extract_frames(media_dir / "one_face.avi", config=ExtractConfig(sample_fps=10))
    assert table.frame_idx.tolist() == list(range(0, 60, 3)) and table.face_found.all()


def test_batch_records_failures_and_goes_on(media_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8 broken")
    (tmp_path / "empty.mp4").write_bytes(b"")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,label,subject_id\n"
        f"{media_dir / 'one_face.jpg'},1,s01\n"
        "corrupt.jpg,0,s02\n"
        "empty.mp4,0,s02\n"
        f"{media_dir / 'one_face.avi'},2,s03\n"
    )
    result = extract_batch(manifest)
    assert result.failures.source_path.map(lambda p: Path(p).name).tolist() == ["corrupt.jpg", "empty.mp4"]
    assert result.failures.message.str.contains("cannot be decoded").iloc[0]
    assert result.failures.message.str.contains("empty").iloc[1]
    frames = result.frames
    assert frames.groupby("subject_id").size().to_dict() == {"s01": 1, "s03": 60}
    assert set(frames.loc[frames.subject_id == "s03", "label"]) == {"2"}  # manifest columns ride along


def test_unreadable_frames_are_rows_and_counted(media_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.jpg").write_bytes((media_dir / "one_face.jpg").read_bytes())
    (folder / "f1.jpg").write_bytes(b"\xff\xd8 broken")
    table = extract_frames(folder)
    assert table.frame_readable.tolist() == [True, False, True, True, True]
    assert table.face_found.tolist() == [True, False, True, True, True]
    assert np.isnan(table.loc[1, ["yaw_deg", "ear", "lm00_x_px"]].astype(float)).all()
    write_frames(table, tmp_path / "frames.parquet")
    assert json.loads((tmp_path / "frames.meta.json").read_text())["n_unreadable_frames"] == 1


def test_single_source_errors_raise(tmp_path: Path) -> None:
    (tmp_path / "bad.avi").write_bytes(b"RIFF....AVI junk" * 10)
    with pytest.raises(MediaReadError, match="bad.avi"):
        extract_frames(tmp_path / "bad.avi")


def test_write_read_round_trip(media_dir: Path, tmp_path: Path) -> None:
    config = ExtractConfig(sample_fps=15)
    table = extract_frames(media_dir / "one_face.avi", config=config)
    path = write_frames(table, tmp_path / "out" / "frames.parquet", config=config)
    again = read_frames(path)
    pd.testing.assert_frame_equal(again, table)
    meta = json.loads((tmp_path / "out" / "frames.meta.json").read_text())
    assert meta["schema"] == "geoengage.frames/3" and meta["config"]["sample_fps"] == 15
    assert meta["n_rows"] == 30 and meta["face_yield"] == 1.0 and len(meta["models"]["landmarks68"]) == 64
    # every model the extraction ran is recorded, by its SHA-256
    assert set(meta["models"]) == {"landmarks68", "face_detector", "expression_cnn", "expression_embedding", "gaze_cnn"}
    assert all(len(digest) == 64 for digest in meta["models"].values())
    assert meta["n_rows_population_ear_baseline"] == 0  # a 2 s track has its own open-eye baseline
    assert not list((tmp_path / "out").glob("*.tmp"))
    still = extract_frames(media_dir / "one_face.jpg")
    write_frames(still, tmp_path / "still" / "frames.parquet")
    assert json.loads((tmp_path / "still" / "frames.meta.json").read_text())["n_rows_population_ear_baseline"] == 1

    # a table of the version before calibrations were recorded: read, with its distances in mm set missing
    calibrated = extract_frames(media_dir / "one_face.jpg", config=ExtractConfig(focal_px=512.0))
    write_frames(calibrated.drop(columns="camera_focal_px"), tmp_path / "v2" / "frames.parquet")
    old_meta = tmp_path / "v2" / "frames.meta.json"
    old_meta.write_text(json.dumps({**json.loads(old_meta.read_text()), "schema": "geoengage.frames/2"}))
    old = read_frames(tmp_path / "v2" / "frames.parquet").iloc[0]
    assert np.isnan([old.camera_focal_px, old.head_z_mm, old.screen_x_mm]).all() and old.yaw_deg == calibrated.yaw_deg[0]

    meta["schema"] = "geoengage.frames/0"
    (tmp_path / "out" / "frames.meta.json").write_text(json.dumps(meta))
    with pytest.raises(SchemaError, match="geoengage.frames/0.*geoengage.frames/3"):
        read_frames(path)
    with pytest.raises(SchemaError, match="lacks required columns"):
        write_frames(table.drop(columns=["time_s"]), tmp_path / "x.parquet")


@pytest.mark.slow
def test_engagement_crops_landmark_yield(shared_data: Path) -> None:
    """Crop mode gives landmarks for every engagement_wacv image; dlib's HOG detector alone (at its threshold 0) finds
    about 83% of the faces, the default YuNet detector all of them."""
    from geoengage.media import MediaItem

    labels = pd.read_csv(shared_data / "engagement_wacv" / "labels.csv")
    items = [MediaItem(str(shared_data / "engagement_wacv" / p), p, {"subject_id": s})
             for p, s in zip(labels.path[::5], labels.subject_id[::5])]
    result = extract_batch(items, config=ExtractConfig(detector="hog", crop_mode="fallback", detect_threshold=0.0))
    assert result.failures.empty
    assert result.frames.face_found.mean() >= 0.97
    assert 0.75 < (result.frames.face_source == "detector").mean() < 0.9
    result = extract_batch(items, config=ExtractConfig(crop_mode="fallback"))
    assert (result.frames.face_source == "detector").mean() >= 0.99


def test_expression_columns(media_dir) -> None:
    frames = extract_frames(media_dir / "leaves.avi")
    proba = frames[[f"expr_{c}" for c in EXPRESSION_CLASSES]].to_numpy()
    found = frames["face_found"].to_numpy(bool)
    assert found.any() and (~found).any()
    assert np.allclose(proba[found].sum(axis=1), 1.0, atol=1e-5) and np.isnan(proba[~found]).all()
    assert (frames.loc[found, "expr_class"] == np.asarray(EXPRESSION_CLASSES)[proba[found].argmax(axis=1)]).all()
    assert frames.loc[~found, "expr_class"].isna().all()
    # batching changes nothing but speed; expression=False leaves the columns empty
    one = extract_frames(media_dir / "leaves.avi", config=ExtractConfig(expression_batch=1))
    assert np.allclose(one[[f"expr_{c}" for c in EXPRESSION_CLASSES]].to_numpy(), proba, atol=1e-5, equal_nan=True)
    off = extract_frames(media_dir / "leaves.avi", config=ExtractConfig(expression=False))
    assert off["expr_happy"].isna().all() and off["expr_class"].isna().all()
    assert np.allclose(off["yaw_deg"], frames["yaw_deg"], equal_nan=True)


def test_gaze_cnn_columns(media_dir) -> None:
    """The gaze CNN scores both eyes of every face during extraction (batched; batching changes nothing), its
    on-screen estimate follows, and gaze_cnn=False leaves the columns empty."""
    frames = extract_frames(media_dir / "leaves.avi")
    found = frames["face_found"].to_numpy(bool)
    gaze = frames[["gaze_cnn_yaw_deg", "gaze_cnn_pitch_deg"]].to_numpy()
    assert np.isfinite(gaze[found]).all(axis=1).mean() > 0.9 and np.isnan(gaze[~found]).all()
    assert (np.abs(gaze[found & np.isfinite(gaze).all(axis=1)]) < 90).all()
    assert set(frames.loc[found, "on_screen_cnn"].dropna().unique()) <= {0.0, 1.0}
    one = extract_frames(media_dir / "leaves.avi", config=ExtractConfig(expression_batch=1))
    assert np.allclose(one[["gaze_cnn_yaw_deg", "gaze_cnn_pitch_deg"]].to_numpy(), gaze, atol=1e-4, equal_nan=True)
    off = extract_frames(media_dir / "leaves.avi", config=ExtractConfig(gaze_cnn=False))
    assert off["gaze_cnn_yaw_deg"].isna().all() and off["on_screen_cnn"].isna().all()
    assert np.allclose(off["gaze_yaw_deg"], frames["gaze_yaw_deg"], equal_nan=True)  # the geometric gaze stays


def test_features_in_mm_only_from_a_calibrated_camera(media_dir: Path) -> None:
    """Without a calibration the head position and the gaze's landing point in mm are not produced (an assumed
    focal length can be 40% off); everything else is. Calibrated with the focal length the uncalibrated model
    assumes (the frame width), every other feature is unchanged and the mm features appear."""
    image = media_dir / "one_face.jpg"
    mm = ["head_x_mm", "head_y_mm", "head_z_mm", "screen_x_mm", "screen_y_mm", "screen_cnn_x_mm", "screen_cnn_y_mm"]
    plain = extract_frames(image).iloc[0]
    assert np.isnan(plain.camera_focal_px) and np.isnan(plain[mm].astype(float)).all()
    assert np.isfinite(plain[["yaw_deg", "gaze_yaw_deg", "gaze_cnn_yaw_deg", "on_screen", "on_screen_cnn"]]
                       .astype(float)).all()
    same = extract_frames(image, config=ExtractConfig(focal_px=512.0)).iloc[0]
    assert same.camera_focal_px == 512.0 and 300 < same.head_z_mm < 1500
    assert np.isfinite(same[["head_x_mm", "head_y_mm"]].astype(float)).all()
    others = [c for c in plain.index if c not in (*mm, "camera_focal_px")]
    pd.testing.assert_series_equal(plain[others], same[others])
    # a wider camera (70 degrees: focal 366 px at 512 wide) puts the same face nearer, by the focal ratio
    wide = extract_frames(image, config=ExtractConfig(camera_hfov_deg=70.0)).iloc[0]
    assert wide.camera_focal_px == pytest.approx(512 / (2 * np.tan(np.radians(35))))
    assert wide.head_z_mm / same.head_z_mm == pytest.approx(wide.camera_focal_px / 512.0, rel=0.02)
    assert abs(wide.yaw_deg - same.yaw_deg) < 3.0


def test_an_item_calibration_from_its_manifest_columns(media_dir: Path) -> None:
    from geoengage.extract import extract_items
    from geoengage.media import MediaItem

    photo = str(media_dir / "one_face.jpg")
    items = [MediaItem(photo, "calibrated", {"focal_px": "512", "subject_id": "s"}),
             MediaItem(photo, "plain", {"focal_px": "", "subject_id": "s"})]
    table, failures = extract_items(items)
    assert not failures and "focal_px" not in table and (table["subject_id"] == "s").all()
    assert table["camera_focal_px"].tolist()[0] == 512.0 and np.isnan(table["camera_focal_px"].tolist()[1])
    assert np.isfinite(table["head_z_mm"].iloc[0]) and np.isnan(table["head_z_mm"].iloc[1])
    assert table["yaw_deg"].iloc[0] == table["yaw_deg"].iloc[1]  # focal 512 = the uncalibrated model's


def test_face_crops_have_no_on_screen(astronaut: np.ndarray, tmp_path: Path) -> None:
    """A face crop is no camera's view: read as one, the face sits 10-14 cm from the lens and nearly every gaze
    "lands on the screen" (on_screen_cnn read 1 on all 3,724 engagement_wacv crops). In crop mode on_screen and
    on_screen_cnn are NaN, like the distances; the gaze angles stay. A full frame still gets them."""
    import cv2

    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), cv2.resize(astronaut[60:200, 155:290], (120, 124)))  # the face, as crop data sets cut it
    as_crop = extract_frames(crop, config=ExtractConfig(crop_mode="fallback", detect_threshold=0.0)).iloc[0]
    assert as_crop["face_found"]
    assert np.isfinite(as_crop["gaze_yaw_deg"]) and np.isfinite(as_crop["gaze_cnn_pitch_deg"])
    assert np.isnan(as_crop["on_screen"]) and np.isnan(as_crop["on_screen_cnn"])
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), astronaut)
    full = extract_frames(frame).iloc[0]
    assert full["on_screen"] in (0.0, 1.0) and full["on_screen_cnn"] in (0.0, 1.0)


def test_largest_policy_fits_only_the_kept_face(two_face_image: np.ndarray) -> None:
    """Under face_policy="largest" (the default) the face that is not kept is counted (``n_faces``) but not followed:
    one 68-point fit a frame instead of one per face, and the kept face's rows are those of face_policy="all"."""
    frames = []
    for i in range(40):  # two people side by side, the camera shaking a little
        matrix = np.float32([[1, 0, 3 * np.sin(i / 5)], [0, 1, 2 * np.cos(i / 7)]])
        frames.append(Frame(i, i / 30, cv2.warpAffine(two_face_image, matrix, two_face_image.shape[1::-1],
                                                        borderMode=cv2.BORDER_REFLECT)))
    fit = DlibLandmarker.__call__
    lean = {"expression": False, "gaze_cnn": False, "detect_every": 10}
    rows = {}
    for policy in ("largest", "all"):
        with mock.patch.object(DlibLandmarker, "__call__", autospec=True, side_effect=fit) as spy:
            rows[policy] = pd.DataFrame(iter_face_rows(frames, config=ExtractConfig(face_policy=policy, **lean)))
        rows[policy + " fits"] = spy.call_count
    largest, every = rows["largest"], rows["all"]
    assert rows["all fits"] >= 80 and rows["largest fits"] == 40
    assert largest.n_faces.tolist() == [2] * 40 and largest.track_id.nunique() == 1
    kept = every[every.track_id == largest.track_id.iloc[0]].reset_index(drop=True)
    assert len(kept) == 40
    pd.testing.assert_frame_equal(largest[list(LANDMARK_COLUMNS)], kept[list(LANDMARK_COLUMNS)])
