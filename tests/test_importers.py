"""importers.py: OpenFace and Py-Feat CSVs become per-frame tables with geoengage's units and signs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geoengage.exceptions import InvalidParameterError, MediaReadError, SchemaError
from geoengage.importers import read_openface_csv, read_pyfeat_csv
from geoengage.schema import FRAMES, validate


def _openface_rows(landmarks: np.ndarray, n: int = 4) -> pd.DataFrame:
    """A video-run OpenFace CSV (frame, timestamp, success) built from real landmarks."""
    rows = []
    for i in range(n):
        row = {"frame": i + 1, "face_id": 0, "timestamp": i / 30, "confidence": 0.98, "success": int(i != 2),
               "gaze_angle_x": 0.1, "gaze_angle_y": -0.2, "pose_Tx": 10.0, "pose_Ty": 20.0, "pose_Tz": 500.0,
               "pose_Rx": 0.1, "pose_Ry": -0.2, "pose_Rz": 0.05, "AU01_r": 1.5, "AU45_c": 1.0}
        row.update({f"x_{k}": landmarks[k, 0] for k in range(68)})
        row.update({f"y_{k}": landmarks[k, 1] for k in range(68)})
        rows.append(row)
    return pd.DataFrame(rows)


def test_openface_units_signs_and_missing_faces(tmp_path: Path, astronaut_landmarks: np.ndarray) -> None:
    path = tmp_path / "clip.csv"
    _openface_rows(astronaut_landmarks).to_csv(path, index=False)
    path.write_text(path.read_text().replace(",", ", "))  # OpenFace writes ", " separators
    frames = read_openface_csv(path)
    validate(frames, FRAMES, where="test")
    assert frames.frame_idx.tolist() == [0, 1, 2, 3] and frames.time_s.iloc[3] == pytest.approx(0.1)
    assert frames.face_found.tolist() == [True, True, False, True]
    row = frames.iloc[0]
    assert row.yaw_deg == pytest.approx(np.degrees(-0.2)) and row.pitch_deg == pytest.approx(-np.degrees(0.1))
    assert row.roll_deg == pytest.approx(-np.degrees(0.05))
    assert row.gaze_yaw_deg == pytest.approx(-np.degrees(0.1)) and row.gaze_pitch_deg == pytest.approx(np.degrees(0.2))
    assert row.au01_intensity == 1.5 and row.au45_presence == 1.0
    # OpenFace's position in mm comes from its assumed camera: kept only when the run's focal length is given
    assert np.isnan(row.head_z_mm) and np.isnan(frames.camera_focal_px).all()
    calibrated = read_openface_csv(path, focal_px=500.0).iloc[0]
    assert calibrated.head_z_mm == 500.0 and calibrated.camera_focal_px == 500.0
    assert calibrated.gaze_yaw_deg == row.gaze_yaw_deg and calibrated.yaw_deg == row.yaw_deg
    assert row.lm30_x_px == pytest.approx(astronaut_landmarks[30, 0])
    assert 0.25 < row.ear < 0.4  # geoengage's landmark features computed from OpenFace's landmarks
    missing = frames.iloc[2]
    assert np.isnan([missing.yaw_deg, missing.ear, missing.au01_intensity, missing.lm00_x_px]).all()


def test_bad_csvs(tmp_path: Path) -> None:
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SchemaError, match="other.csv: not this tool's CSV"):
        read_openface_csv(tmp_path / "other.csv")
    with pytest.raises(MediaReadError, match="no such CSV file"):
        read_pyfeat_csv(tmp_path / "missing.csv")


def test_pyfeat(tmp_path: Path, astronaut_landmarks: np.ndarray) -> None:
    row = {"frame": 0, "FaceRectX": 179.0, "FaceRectY": 83.0, "FaceRectWidth": 88.0, "FaceRectHeight": 88.0,
           "FaceScore": 0.99, "Pitch": 1.0, "Roll": 2.0, "Yaw": 3.0, "AU12": 0.8, "happiness": 0.9, "neutral": 0.1,
           "input": "/data/astronaut.png"}
    row.update({f"x_{k}": astronaut_landmarks[k, 0] for k in range(68)})
    row.update({f"y_{k}": astronaut_landmarks[k, 1] for k in range(68)})
    empty = {**row, "FaceScore": np.nan, **{f"x_{k}": np.nan for k in range(68)}, "frame": 1}
    pd.DataFrame([row, empty]).to_csv(tmp_path / "fex.csv", index=False)
    frames = read_pyfeat_csv(tmp_path / "fex.csv")
    assert frames.face_found.tolist() == [True, False] and frames.video_id.iloc[0] == "/data/astronaut.png"
    first = frames.iloc[0]
    assert first.face_width_px == 88.0 and first.au12_probability == 0.8 and first.expr_happy == 0.9
    assert first.pyfeat_yaw_deg == 3.0 and first.pyfeat_roll_deg == -2.0  # Py-Feat's roll sign is geoengage's negated
    # no frame size in a Py-Feat CSV: geoengage's own pose from a camera assumed centred on the face, flagged
    assert np.isfinite([first.yaw_deg, first.pitch_deg, first.roll_deg]).all() and first.pose_camera_assumed == 1
    assert np.isnan(frames.iloc[1].pose_camera_assumed)  # no face, no pose
    assert np.isnan(frames.iloc[1].expr_happy)


def test_real_openface_files(shared_data: Path) -> None:
    folder = shared_data / "engagement_wacv"
    frames = pd.concat([read_openface_csv(folder / f"openface_processedData{i}.csv") for i in (0, 1)])
    assert len(frames) == 1124 and frames.video_id.nunique() == 1123  # img11_44 has two face rows (face 0 and 1)
    assert sorted(frames.loc[frames.video_id == "img11_44", "track_id"]) == [-1, -1]  # neither confident
    found = frames[frames.face_found]
    assert 0.6 < len(found) / len(frames) < 0.95
    assert found.yaw_deg.abs().max() < 90 and found.pitch_deg.abs().max() < 90  # degrees, not radians
    assert found.yaw_deg.std() > 5  # radians would give a spread below 1
    assert {"au01_intensity", "au45_presence", "gaze_yaw_deg", "ear", "mouth_aspect_ratio"} <= set(frames.columns)
    assert frames.loc[~frames.face_found, ["yaw_deg", "au01_intensity", "ear"]].isna().all().all()


def _pyfeat_row(landmarks: np.ndarray, name: str, *, v2: bool = False, roll: float = 2.0) -> dict[str, object]:
    """One row in Py-Feat's column layout: 0.5-0.7 (lower-case emotions) or 2.x (capitalised emotions)."""
    row: dict[str, object] = {"FaceRectX": 179.0, "FaceRectY": 83.0, "FaceRectWidth": 88.0, "FaceRectHeight": 88.0,
                              "FaceScore": 0.99}
    row.update({f"x_{k}": landmarks[k, 0] for k in range(68)})
    row.update({f"y_{k}": landmarks[k, 1] for k in range(68)})
    row.update({"Pitch": 1.0, "Roll": roll, "Yaw": 3.0, "AU01": 0.2, "AU12": 0.8})
    emotions = ("Anger", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral") if v2 else (
        "anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    row.update(dict(zip(emotions, (0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.1), strict=True)))
    row.update({"input": name, "frame": 0})
    return row


def test_pyfeat_same_image_names_in_two_csvs_are_kept_apart(tmp_path: Path, astronaut_landmarks) -> None:
    """One CSV per class, image names repeating across them (the Kaggle set): every row is kept, none merged."""
    from geoengage.importers import import_tables

    for label in ("engaged", "bored"):
        rows = [_pyfeat_row(astronaut_landmarks, f"{i:04d}.jpg") for i in range(1, 6)]
        pd.DataFrame(rows).to_csv(tmp_path / f"{label}.csv", index=False)
    result = import_tables([tmp_path / "engaged.csv", tmp_path / "bored.csv"], tool="pyfeat")
    summary = result.to_dict()
    assert summary["rows_in"] == 10 == summary["rows_kept"] + summary["rows_dropped"] and summary["rows_kept"] == 10
    assert summary["recordings"] == 10 and summary["recordings_renamed_apart"] == 5
    assert "engaged/0001.jpg" in set(result.frames.video_id) and "bored/0001.jpg" in set(result.frames.video_id)


def test_pyfeat_2x_emotions_and_frame_size_from_the_images(tmp_path: Path, astronaut, astronaut_landmarks) -> None:
    import cv2

    from geoengage.importers import import_tables

    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    pd.DataFrame([_pyfeat_row(astronaut_landmarks, "a.png", v2=True)]).to_csv(tmp_path / "fex.csv", index=False)
    result = import_tables([tmp_path / "fex.csv"], tool="pyfeat")
    row = result.frames.iloc[0]
    assert row.expr_happy == 0.9 and row.expr_sad == 0.0  # capitalised 2.x columns are not dropped
    assert row.frame_width_px == 512 and np.isfinite([row.yaw_deg, row.gaze_yaw_deg, row.on_screen]).all()
    missing = import_tables([tmp_path / "fex.csv"], tool="pyfeat", frame_size=None)
    assert missing.frames.frame_width_px.iloc[0] == 512  # read from the image the CSV names
    (tmp_path / "a.png").unlink()
    unknown = import_tables([tmp_path / "fex.csv"], tool="pyfeat")
    assert any("frame size unknown" in k and "assumed camera" in k for k in unknown.notes)
    given = import_tables([tmp_path / "fex.csv"], tool="pyfeat", frame_size=(512, 512))
    guessed, known = unknown.frames.iloc[0], given.frames.iloc[0]
    assert guessed.pose_camera_assumed == 1 and known.pose_camera_assumed == 0
    # the assumed camera looks at the face head-on: the rotation differs from the true camera's by about the face's
    # angle off the true camera's axis (here 4 deg across, 14 deg up: the astronaut's face sits high in the photo)
    assert abs(guessed.yaw_deg - known.yaw_deg) < 6 and abs(guessed.roll_deg - known.roll_deg) < 3
    assert abs(guessed.pitch_deg - known.pitch_deg) < 20
    assert guessed.pose_residual_iod < 0.05  # the mean face fits as well as with the true camera


def test_pyfeat_roll_sign_agrees_with_geoengages_pose(tmp_path: Path, astronaut_landmarks) -> None:
    """Landmarks tilted 15 deg counter-clockwise (towards the subject's right shoulder: + roll in geoengage);
    Py-Feat reports such a tilt with the opposite sign, and the import converts it."""
    from geoengage.importers import import_tables

    centre = astronaut_landmarks.mean(axis=0)
    angle = np.radians(15.0)
    turn = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])  # counter-clockwise on screen
    tilted = (astronaut_landmarks - centre) @ turn.T + centre
    pd.DataFrame([_pyfeat_row(tilted, "t.png", roll=-15.0)]).to_csv(tmp_path / "fex.csv", index=False)
    row = import_tables([tmp_path / "fex.csv"], tool="pyfeat", frame_size=(512, 512)).frames.iloc[0]
    assert row.roll_deg > 10 and row.pyfeat_roll_deg > 10  # same sign, same convention


def _openface_csv(path: Path, table: pd.DataFrame, *, truncate: bool = False) -> Path:
    table.to_csv(path, index=False)
    text = path.read_text().replace(",", ", ")
    if truncate:  # the last row cut off after a few fields, as a killed OpenFace leaves it
        lines = text.rstrip("\n").split("\n")
        lines[-1] = ", ".join(lines[-1].split(", ")[:5])
        text = "\n".join(lines) + "\n"
    path.write_text(text)
    return path


def test_openface_edge_cases(tmp_path: Path, astronaut_landmarks) -> None:
    from geoengage.importers import import_tables

    truncated = _openface_csv(tmp_path / "cut.csv", _openface_rows(astronaut_landmarks, n=5), truncate=True)
    zeros = _openface_rows(astronaut_landmarks, n=3).assign(frame=0)
    zeros = _openface_csv(tmp_path / "zeros.csv", zeros)
    no_landmarks = _openface_rows(astronaut_landmarks, n=4)
    no_landmarks = _openface_csv(tmp_path / "pose_aus.csv", no_landmarks.drop(
        columns=[c for c in no_landmarks.columns if c[:2] in ("x_", "y_")]))
    (tmp_path / "broken.csv").write_text("frame, face_id\n1, 0\n")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)  # not text at all
    (tmp_path / "empty.csv").write_bytes(b"")
    result = import_tables([truncated, zeros, no_landmarks, tmp_path / "broken.csv", tmp_path / "binary.csv",
                            tmp_path / "empty.csv"], tool="openface")
    summary = result.to_dict()
    assert summary["files_failed"] == 3
    assert result.failures.set_index("video_id").loc["binary", "message"].startswith(str(tmp_path / "binary.csv"))
    assert summary["dropped_by_reason"] == {"truncated row": 1}
    assert summary["rows_in"] == 5 + 3 + 4 == summary["rows_kept"] + summary["rows_dropped"]  # imported files' rows
    assert summary["rows_kept"] == 4 + 3 + 4 and summary["rows_dropped"] == 1
    assert set(result.failures.video_id) == {"broken", "binary", "empty"}
    frames = result.frames.set_index("video_id")
    assert sorted(frames.loc["zeros", "frame_idx"]) == [0, 1, 2]  # never -1
    assert (frames.loc["cut", "frame_idx"] >= 0).all() and len(frames.loc["cut"]) == 4
    pose_aus = frames.loc["pose_aus"]
    assert pose_aus.yaw_deg.notna().sum() == 3 and pose_aus.au01_intensity.notna().sum() == 3
    assert pose_aus.ear.isna().all()  # no landmarks: landmark features NaN, with the reason in the notes
    assert any("no landmarks" in k for k in result.notes)


def test_cli_import_with_a_manifest(tmp_path: Path, astronaut_landmarks, capsys) -> None:
    """A labelled import: the manifest names each OpenFace CSV with its label, subject and fps; AUs reach the
    windows, the summary accounts for every row, and a bad file makes the exit status non-zero."""
    import json

    from geoengage.cli import main

    for name in ("s1_a", "s2_a"):
        _openface_csv(tmp_path / f"{name}.csv", _openface_rows(astronaut_landmarks, n=30))
    pd.DataFrame({"path": ["s1_a.csv", "s2_a.csv"], "label": ["engaged", "bored"], "subject_id": ["s1", "s2"],
                  "fps": [10, 10], "frame_width": [512, 512], "frame_height": [512, 512]}).to_csv(
        tmp_path / "manifest.csv", index=False)
    out = tmp_path / "out"
    assert main(["-q", "import", "openface", str(tmp_path / "manifest.csv"), "--out", str(out),
                 "--window-s", "1", "--step-s", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_in"] == 60 == summary["rows_kept"] and summary["files_failed"] == 0
    windows = pd.read_parquet(out / "windows.parquet")
    assert set(windows.label) == {"engaged", "bored"} and set(windows.subject_id) == {"s1", "s2"}
    assert len(windows) == 6  # 30 frames at 10 fps = 3 s per recording
    assert windows["au01_intensity__mean"].notna().all() and "au45_presence__frac" in windows
    assert windows["yaw_deg__median"].notna().all()
    meta = json.loads((out / "frames.meta.json").read_text())
    assert meta["import"]["rows_kept"] == 60
    (tmp_path / "bad.csv").write_text("nothing, here\n1, 2\n")
    assert main(["-q", "import", "openface", str(tmp_path / "s1_a.csv"), str(tmp_path / "bad.csv"),
                 "--out", str(tmp_path / "out2")]) == 1
    assert pd.read_csv(tmp_path / "out2" / "failures.csv").source_path.str.endswith("bad.csv").all()


def test_import_dataset_is_what_the_command_runs(tmp_path: Path, astronaut_landmarks, capsys) -> None:
    """``ge.import_dataset`` writes the tables ``geoengage import`` writes, identical, and says what it did; with no
    importable file it writes the failures and no windows."""
    import json

    import geoengage as ge
    from geoengage.cli import main
    from geoengage.dataset import WindowConfig

    for name in ("s1_a", "s2_a"):
        _openface_csv(tmp_path / f"{name}.csv", _openface_rows(astronaut_landmarks, n=30))
    sources = [tmp_path / "s1_a.csv", tmp_path / "s2_a.csv"]
    done = ge.import_dataset(sources, tmp_path / "lib", tool="openface", fps=10.0, frame_size=(512, 512),
                             windows=WindowConfig(window_s=1.0, step_s=1.0))
    assert main(["-q", "import", "openface", *map(str, sources), "--out", str(tmp_path / "cli"), "--fps", "10",
                 "--frame-size", "512x512", "--window-s", "1", "--step-s", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in printed.items() if k != "out"} == {k: v for k, v in done.to_dict().items() if k != "out"}
    assert done.to_dict()["n_windows"] == len(done.windows) == 6
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "lib" / "windows.parquet"),
                                  pd.read_parquet(tmp_path / "cli" / "windows.parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "lib" / "frames.parquet"),
                                  pd.read_parquet(tmp_path / "cli" / "frames.parquet"))
    (tmp_path / "bad.csv").write_text("nothing, here\n1, 2\n")
    failed = ge.import_dataset([tmp_path / "bad.csv"], tmp_path / "none", tool="openface")
    assert failed.windows is None and len(failed.imported.failures) == 1
    assert (tmp_path / "none" / "failures.csv").is_file() and not (tmp_path / "none" / "windows.parquet").exists()


def test_frame_size_from_media_follows_exif_orientation(tmp_path: Path, astronaut) -> None:
    """A photo stored landscape with EXIF orientation 6 is decoded (and landmarked by the tools) portrait:
    the imported frame size is the decoded one, and a video's size comes from its header."""
    from PIL import Image

    from geoengage.datasets import sample_video
    from geoengage.importers import _media_size
    from geoengage.media import read_image

    wide = Image.fromarray(np.ascontiguousarray(astronaut[:300, :, ::-1]))  # 512 x 300
    exif = wide.getexif()
    exif[0x0112] = 6
    wide.save(tmp_path / "turned.jpg", exif=exif)
    height, width = read_image(tmp_path / "turned.jpg").shape[:2]
    assert (width, height) == (300, 512) and _media_size(str(tmp_path / "turned.jpg")) == (300.0, 512.0)
    clip = sample_video(tmp_path / "clip.avi", n_frames=5, size=(320, 240))
    assert _media_size(str(clip)) == (320.0, 240.0)
    assert np.isnan(_media_size(str(tmp_path / "absent.png"))).all()


def test_manifest_focal_lengths_and_bad_values(tmp_path: Path, astronaut_landmarks: np.ndarray) -> None:
    """A manifest's focal_px calibrates its CSV; a value that is not a focal length (or a bad fps) is that CSV's
    recorded failure naming the file and the column, and the other CSVs are imported."""
    from geoengage.importers import import_tables

    for name in ("a", "b", "c"):
        _openface_rows(astronaut_landmarks).to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / "m.csv").write_text("path,focal_px,fps\na.csv,500,30\nb.csv,-3,30\nc.csv,500,fast\n")
    result = import_tables([tmp_path / "m.csv"], tool="openface")
    assert sorted(result.failures["video_id"]) == ["b", "c"]
    assert result.failures["message"].str.contains("b.csv: manifest column 'focal_px' must be a focal length").any()
    assert result.failures["message"].str.contains("c.csv").any()
    kept = result.frames[result.frames["face_found"]]
    assert (kept["camera_focal_px"] == 500.0).all() and (kept["head_z_mm"] == 500.0).all()
    with pytest.raises(InvalidParameterError, match="`focal_px` must be a focal length"):
        read_openface_csv(tmp_path / "a.csv", focal_px=0.0)
