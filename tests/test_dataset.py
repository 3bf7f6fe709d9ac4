"""dataset.py: the resumable, parallel dataset builder behind `geoengage extract`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from geoengage.config import ExtractConfig
from geoengage.dataset import WindowConfig, build_dataset
from geoengage.datasets import sample_video

WINDOWS = WindowConfig(window_s=1.0, step_s=0.5)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    """Eight short one-face clips, one with a face that leaves, one image, and one corrupt file."""
    root = tmp_path_factory.mktemp("clips")
    for i in range(8):
        sample_video(root / f"clip{i}.avi", n_frames=40 + 5 * i, absent=(0.5, 1.0) if i == 3 else None)
    (root / "photo.jpg").write_bytes((media_dir / "one_face.jpg").read_bytes())
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    return root


def _frames(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "frames.parquet")


@pytest.fixture(scope="module")
def reference(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    result = build_dataset(clips, out, windows=WINDOWS)
    assert result.to_dict() == {"out": str(out), "n_items": 10, "n_extracted": 9, "n_skipped": 0, "n_failures": 1,
                                "n_with_face": 9}
    return out


def test_outputs_failures_and_windows(reference: Path) -> None:
    frames = _frames(reference)
    assert frames.video_id.nunique() == 9 and len(frames) == sum(40 + 5 * i for i in range(8)) + 1
    failures = pd.read_csv(reference / "failures.csv")
    assert failures.video_id.tolist() == ["broken.mp4"] and "broken.mp4" in failures.message[0]
    windows = pd.read_parquet(reference / "windows.parquet")
    assert set(windows.video_id) == set(frames.video_id)
    assert windows.loc[windows.video_id == "clip3.avi", "coverage"].min() < 0.6  # the face left for 0.5 s
    assert (reference / "frames.meta.json").is_file() and (reference / "windows.meta.json").is_file()
    assert not list(reference.rglob("*.tmp"))


def test_second_run_skips_finished_items(clips: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build_dataset(clips, out, windows=WINDOWS)
    again = build_dataset(clips, out, windows=WINDOWS)
    assert (first.n_extracted, again.n_skipped, again.n_extracted) == (9, 9, 0)
    assert len(again.failures) == 1  # failed items are retried, and fail again
    pd.testing.assert_frame_equal(_frames(out), _frames(reference))


def test_parallel_workers_give_the_same_rows(clips: Path, reference: Path, tmp_path: Path) -> None:
    build_dataset(clips, tmp_path, windows=WINDOWS, n_jobs=2)
    pd.testing.assert_frame_equal(_frames(tmp_path), _frames(reference))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "windows.parquet"),
                                  pd.read_parquet(reference / "windows.parquet"))


def test_kill_and_resume_gives_the_rows_of_an_uninterrupted_run(clips: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "geoengage", "-q", "extract", str(clips), "--out", str(out), "--jobs", "1",
               "--window-s", "1", "--step-s", "0.5"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "parts").glob("*/*.parquet"))) < 3:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(list((out / "parts").glob("*/*.parquet")))
    assert 3 <= done < 9, "the kill must land half way"
    assert not (out / "frames.parquet").exists()
    assert subprocess.run(command, check=False).returncode == 1  # finished; the one broken clip still fails
    resumed = _frames(out)
    pd.testing.assert_frame_equal(resumed, _frames(reference))
    assert len(resumed) == len(_frames(reference))


def test_kill_9_leaves_no_worker_processes(clips: Path, tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "orphans"
    command = [sys.executable, "-m", "geoengage", "-q", "extract", str(clips), "--out", str(out), "--jobs", "2",
               "--window-s", "1", "--step-s", "0.5"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "parts").glob("*/*.parquet")):
        time.sleep(0.02)
    family = psutil.Process(process.pid).children(recursive=True)
    assert len(family) >= 2, "the workers must be running when the parent is killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, f"orphaned: {[(p.pid, p.name()) for p in alive]}"


def test_dask_cluster(clips: Path, reference: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = build_dataset(clips, tmp_path, windows=WINDOWS, scheduler=cluster.scheduler_address)
    assert result.n_extracted == 9 and len(result.failures) == 1
    pd.testing.assert_frame_equal(_frames(tmp_path), _frames(reference))


def test_manifest_columns_ride_along(clips: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,subject_id,label\n" + "".join(f"{clips / f'clip{i}.avi'},s{i % 2},{i % 3}\n"
                                                            for i in range(3)))
    build_dataset(manifest, tmp_path / "out", windows=WINDOWS, extract=ExtractConfig(sample_fps=10))
    windows = pd.read_parquet(tmp_path / "out" / "windows.parquet")
    assert {"subject_id", "label"} <= set(windows.columns)
    assert windows.groupby("video_id")["subject_id"].nunique().eq(1).all()


def test_resume_with_another_configuration_recomputes(clips: Path, tmp_path: Path, caplog) -> None:
    """Expression off, then on: the second run extracts every item again instead of keeping the first run's
    parts, so frames.parquet holds expression probabilities and its metadata describes the values."""
    import json
    import logging

    out = tmp_path / "out"
    items = [p for p in sorted(clips.iterdir()) if p.name in ("clip0.avi", "photo.jpg")]
    from geoengage.media import MediaItem

    manifest = [MediaItem(path=str(p), video_id=p.name, extra={}) for p in items]
    first = build_dataset(manifest, out, windows=WINDOWS, extract=ExtractConfig(expression=False))
    assert first.n_extracted == 2 and _frames(out)["expr_happy"].isna().all()
    with caplog.at_level(logging.WARNING, logger="geoengage.dataset"):
        second = build_dataset(manifest, out, windows=WINDOWS, extract=ExtractConfig(expression=True))
    assert second.n_skipped == 0 and second.n_extracted == 2
    frames = _frames(out)
    assert frames.loc[frames["face_found"], "expr_happy"].notna().all()
    assert json.loads((out / "frames.meta.json").read_text())["config"]["expression"] is True
    assert "expression" in caplog.text  # the differing option is named
    third = build_dataset(manifest, out, windows=WINDOWS, extract=ExtractConfig(expression=True))
    assert third.n_skipped == 2  # same settings: resumed


def test_each_camera_gets_its_own_calibration_from_the_manifest(clips: Path, tmp_path: Path, caplog) -> None:
    """A manifest column focal_px calibrates its item (distances in mm), an empty cell leaves it uncalibrated, a bad
    value is that item's recorded failure; changing one item's focal length extracts that item again and reuses
    the others, without warning about the other calibration's parts."""
    import logging

    import numpy as np

    out = tmp_path / "out"
    photo, clip = clips / "photo.jpg", clips / "clip0.avi"
    (tmp_path / "m.csv").write_text(f"path,focal_px,subject_id\n{photo},512,a\n{clip},,b\n{clips / 'clip1.avi'},wide,c\n")
    first = build_dataset(tmp_path / "m.csv", out, windows=WINDOWS, extract=ExtractConfig(sample_fps=10))
    assert first.n_extracted == 2 and first.failures["message"].str.contains("focal_px").all()
    frames = _frames(out)
    assert "focal_px" not in frames
    assert frames.groupby("video_id")["subject_id"].first().to_dict() == {str(photo): "a", str(clip): "b"}
    still = frames[frames["video_id"] == str(photo)].iloc[0]
    video = frames[frames["video_id"] == str(clip)]
    assert still["camera_focal_px"] == 512.0 and 200 < still["head_z_mm"] < 1500
    assert video["camera_focal_px"].isna().all() and video["head_z_mm"].isna().all()
    (tmp_path / "m.csv").write_text(f"path,focal_px,subject_id\n{photo},400,a\n{clip},,b\n")
    with caplog.at_level(logging.WARNING, logger="geoengage.dataset"):
        second = build_dataset(tmp_path / "m.csv", out, windows=WINDOWS, extract=ExtractConfig(sample_fps=10))
    assert second.n_skipped == 1 and second.n_extracted == 1  # the clip resumed, the photo extracted again
    again = _frames(out)
    changed = again[again["video_id"] == str(photo)].iloc[0]
    assert changed["camera_focal_px"] == 400.0
    assert changed["head_z_mm"] / still["head_z_mm"] == pytest.approx(400 / 512, rel=0.02)
    assert np.isfinite(again.loc[again["video_id"] == str(clip), "yaw_deg"]).any()
    stale = [r.getMessage() for r in caplog.records if "not reused" in r.getMessage()]
    assert len(stale) == 1 and "(focal_px)" in stale[0]  # only the 512 px parts; the uncalibrated ones are current


def test_parts_of_earlier_feature_code_are_not_resumed(clips: Path, tmp_path: Path, monkeypatch, caplog) -> None:
    """Parts made before the features' computation changed (FEATURES_VERSION) are extracted again, not mixed with
    new ones (2026-12-02 changed the gaze and the crops' pose for the same settings); the metadata records it, and
    the warning names the version, not a tuple setting that JSON reads back as a list (it named crop_box)."""
    import json
    import logging

    from geoengage import dataset
    from geoengage.geometry import registry
    from geoengage.media import MediaItem

    out = tmp_path / "out"
    manifest = [MediaItem(path=str(clips / "photo.jpg"), video_id="photo.jpg", extra={})]
    config = ExtractConfig(crop_mode="fallback", crop_box=(0.1, 0.2, 0.9, 1.0))
    monkeypatch.setattr(dataset, "FEATURES_VERSION", registry.FEATURES_VERSION - 1)  # parts of the previous code
    assert build_dataset(manifest, out, windows=WINDOWS, extract=config).n_extracted == 1
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING, logger="geoengage.dataset"):
        again = build_dataset(manifest, out, windows=WINDOWS, extract=config)
    assert again.n_skipped == 0 and again.n_extracted == 1
    stale = [r.getMessage() for r in caplog.records if "not reused" in r.getMessage()]
    assert len(stale) == 1 and "(features_version)" in stale[0]
    assert build_dataset(manifest, out, windows=WINDOWS, extract=config).n_skipped == 1  # the same code: resumed
    assert json.loads((out / "frames.meta.json").read_text())["features_version"] == registry.FEATURES_VERSION
