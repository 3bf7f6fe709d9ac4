"""importers.py: OpenFace and Py-Feat CSVs become per-frame tables with geoengage's units and signs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geoengage.exceptions import MediaReadError, SchemaError
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
    assert row.head_z_mm == 500.0 and row.au01_intensity == 1.5 and row.au45_presence == 1.0
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
    assert frames.face_found.tolist() == [True, False] and frames.video_id.iloc[0] == "astronaut.png"
    first = frames.iloc[0]
    assert first.face_width_px == 88.0 and first.au12_intensity == 0.8 and first.expr_happy == 0.9
    assert first.pyfeat_yaw_deg == 3.0
    assert np.isnan(first.yaw_deg)  # no frame size in a Py-Feat CSV: geoengage's own pose is not guessed
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
