"""cli.py: each subcommand runs the real stage, writes its outputs and returns an exit status."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from geoengage.cli import main


def test_demo_writes_outputs(tmp_path: Path, capsys) -> None:
    assert main(["-q", "demo", "--out", str(tmp_path / "demo")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_frames"] == 90 and 0.8 < summary["face_yield"] < 0.86  # the face leaves for 0.5 s of 3
    assert summary["tracks"] == [0]  # the face that leaves and returns is re-identified: one person, one track
    # the share of face frames on the screen by each gaze estimate, not a flag's median
    assert set(summary["on_screen_share"]) == {"on_screen", "on_screen_cnn"}
    assert all(0.0 <= v <= 1.0 for v in summary["on_screen_share"].values())
    assert "on_screen" not in summary["median_features"]
    assert summary["windows"]["n"] == 5 and summary["windows"]["ok"] == 3  # two windows half without the face
    scored = [p is not None for p in summary["windows"]["engagement_probability"]]
    assert scored == [True, True, False, False, True]
    # an unscored window has no prediction: null, not pandas' "<NA>" written as a class name
    assert [p is not None for p in summary["windows"]["engagement_pred"]] == scored
    for name in ("frames.parquet", "frames.meta.json", "windows.parquet", "preview.png", "sample.avi", "summary.json"):
        assert (tmp_path / "demo" / name).is_file()


def test_extract_folder_with_a_bad_file(media_dir: Path, tmp_path: Path, capsys, caplog) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jpg").write_bytes((media_dir / "one_face.jpg").read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(["-q", "extract", str(folder), "--out", str(tmp_path / "out"), "--crop-mode", "fallback"]) == 1
    assert json.loads(capsys.readouterr().out)["n_failures"] == 1  # the batch went on; the status says one failed
    assert "1 of 2 items failed" in caplog.text
    frames = pd.read_parquet(tmp_path / "out" / "frames.parquet")
    assert frames.video_id.tolist() == ["good.jpg"] and frames.face_found.all()
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert failures.video_id.tolist() == ["broken.png"] and "cannot be decoded" in failures.message[0]


def test_ctrl_c_is_one_line_and_status_130(tmp_path: Path, monkeypatch, caplog) -> None:
    import geoengage.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(geoengage.cli, "build_dataset", interrupted)
    assert main(["-q", "extract", str(tmp_path), "--out", str(tmp_path / "o")]) == 130
    assert "interrupted; finished work is kept" in caplog.text and "Traceback" not in caplog.text


def test_user_errors_exit_2_without_traceback(tmp_path: Path, caplog) -> None:
    assert main(["-q", "enroll", str(tmp_path / "nobody"), "--out", str(tmp_path / "e.json")]) == 2
    assert "nobody" in caplog.text and "Traceback" not in caplog.text
    (tmp_path / "c.toml").write_text("[extract]\nface_policy = 'biggest'\n")
    assert main(["-q", "extract", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(tmp_path / "c.toml")]) == 2
    assert "`face_policy` must be 'largest' or 'all'" in caplog.text


def test_default_model_scores_the_demo_windows(tmp_path: Path) -> None:
    from geoengage.modeling.train import load_default_model
    from geoengage.windows import load_feature_set

    model = load_default_model()
    assert model.classes_.tolist() == ["not_engaged", "nominally_engaged", "very_engaged"]  # least to most engaged
    assert model.positive_.tolist() == ["nominally_engaged", "very_engaged"]
    assert set(model.features_) <= set(load_feature_set("audit_clean").columns)
    assert main(["-q", "demo", "--out", str(tmp_path)]) == 0
    windows = pd.read_parquet(tmp_path / "windows.parquet")
    ok = windows[windows.window_ok]
    total = ok[["engagement_not_engaged", "engagement_nominally_engaged", "engagement_very_engaged"]].sum(axis=1)
    assert ((total - 1.0).abs() < 1e-5).all() and ok.engagement_pred.isin(model.classes_.tolist()).all()
    assert ok.reason_text.str.match(r"predicted (not engaged|nominally engaged|very engaged): ").all()
    assert not ok.reason_text.str.contains(r"probability 0%").any()  # what the astronaut did, not what was absent
    engaged = ok["engagement_nominally_engaged"] + ok["engagement_very_engaged"]
    assert np.allclose(ok["engagement_probability"], engaged)
    faceless = windows[~windows.window_ok]  # windows the face left: no score, no prediction, no reasons
    assert len(faceless) == 2 and faceless.engagement_probability.isna().all() and faceless.engagement_pred.isna().all()


def test_extract_without_the_gaze_cnn(media_dir: Path, tmp_path: Path) -> None:
    """--no-gaze-cnn leaves the CNN's columns empty and says so in the metadata (no gaze weights behind them)."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "face.jpg").write_bytes((media_dir / "one_face.jpg").read_bytes())
    for flag, out in (([], "with"), (["--no-gaze-cnn"], "without")):
        assert main(["-q", "extract", str(folder), "--out", str(tmp_path / out), *flag]) == 0
    with_cnn = pd.read_parquet(tmp_path / "with" / "frames.parquet")
    without = pd.read_parquet(tmp_path / "without" / "frames.parquet")
    assert np.isfinite(with_cnn["gaze_cnn_yaw_deg"]).all() and without["gaze_cnn_yaw_deg"].isna().all()
    meta = json.loads((tmp_path / "without" / "windows.meta.json").read_text())
    assert meta["feature_models"]["gaze"] is None and meta["extract"]["gaze_cnn"] is False
    assert json.loads((tmp_path / "with" / "windows.meta.json").read_text())["feature_models"]["gaze"]


def test_extract_with_a_calibrated_camera(media_dir: Path, tmp_path: Path) -> None:
    """--camera-hfov-deg (or --focal-px) gives the frames a focal length and the head a distance in mm; without
    a calibration (the other tests) head_*_mm are missing. The two options exclude each other."""
    import pytest

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "face.jpg").write_bytes((media_dir / "one_face.jpg").read_bytes())
    assert main(["-q", "extract", str(folder), "--out", str(tmp_path / "o"), "--camera-hfov-deg", "60"]) == 0
    frames = pd.read_parquet(tmp_path / "o" / "frames.parquet")
    assert frames["camera_focal_px"].iloc[0] == pytest.approx(256 / np.tan(np.radians(30)))
    assert 200 < frames["head_z_mm"].iloc[0] < 1500
    with pytest.raises(SystemExit):
        main(["-q", "extract", str(folder), "--out", str(tmp_path / "x"), "--focal-px", "500", "--camera-hfov-deg", "60"])
    assert main(["-q", "extract", str(folder), "--out", str(tmp_path / "y"), "--focal-px", "500",
                 "--crop-mode", "fallback"]) == 2  # a face crop has no camera: a clear error, status 2


def test_extract_on_face_crops_says_no_face_was_found_and_what_to_try(tmp_path: Path, caplog) -> None:
    """A folder of small images where the detector finds no face (48x48 patches of the astronaut's suit, as tight or
    odd crops can be): extract says so, suggests --crop-mode fallback and exits 1 instead of reporting success with
    empty windows."""
    import cv2

    from geoengage.datasets import sample_image

    crops = tmp_path / "crops"
    crops.mkdir()
    for k in range(3):
        cv2.imwrite(str(crops / f"c{k}.png"), sample_image()[350 + 20 * k:398 + 20 * k, 100:148])
    caplog.set_level("INFO")
    status = main(["extract", str(crops), "--out", str(tmp_path / "out"), "--jobs", "1", "--no-gaze-cnn"])
    assert status == 1
    message = next(r.getMessage() for r in caplog.records if "no face found" in r.getMessage())
    assert "in any of the 3 inputs" in message and "--crop-mode fallback" in message
    assert main(["-q", "extract", str(crops), "--out", str(tmp_path / "fallback"), "--jobs", "1", "--no-gaze-cnn",
                 "--crop-mode", "fallback"]) == 0


def test_warnings_reach_the_user_as_one_log_line(tmp_path: Path, caplog) -> None:
    """A photo without a face, among photos with one: the command says it in one log line, never in Python's
    warning format (the package's file path and a line of its source)."""
    import cv2

    from geoengage.datasets import sample_image

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "face.png"), sample_image())
    cv2.imwrite(str(photos / "wall.png"), np.full((200, 200, 3), 128, np.uint8))
    assert main(["extract", str(photos), "--out", str(tmp_path / "out"), "--jobs", "1", "--no-gaze-cnn"]) == 0
    lines = [r.getMessage() for r in caplog.records if "have no face" in r.getMessage()]
    assert lines == ["1 of 2 images have no face; they are kept with window_ok=False."]
    assert not any("warnings.warn" in r.getMessage() or ".py:" in r.getMessage() for r in caplog.records)
