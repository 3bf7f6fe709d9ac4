"""Live mode: records as frames come, windows scored, frames dropped (and counted) when behind."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from geoengage.cli import main
from geoengage.datasets import mjpeg_stream, sample_video
from geoengage.exceptions import InvalidParameterError
from geoengage.live import FRAME_FIELDS, CsvSink, JsonLinesSink, LiveConfig, run_live
from geoengage.recipe import WindowChanges


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return sample_video(tmp_path_factory.mktemp("live") / "clip.avi", n_frames=90, fps=30.0, absent=(1.0, 1.5))


def test_every_frame_offline(clip: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    config = LiveConfig(realtime=False, windows=WindowChanges(window_s=1.0), step_s=1.0)
    stats = run_live(clip, JsonLinesSink(out), config=config,
                     annotate_path=tmp_path / "annotated.avi")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    frames = [r for r in records if r["type"] == "frame"]
    windows = [r for r in records if r["type"] == "window"]
    assert stats.n_read == stats.n_processed == len(frames) == 90 and stats.n_dropped == 0
    assert [f["frame_idx"] for f in frames] == list(range(90))
    assert set(FRAME_FIELDS) <= set(frames[0])
    for f in frames:
        if 1.0 <= f["time_s"] < 1.45:
            assert not f["face_found"] and f["yaw_deg"] is None and f["expr_class"] is None
        elif f["time_s"] < 0.95:
            assert f["face_found"] and abs(f["yaw_deg"]) < 30
            assert sum(f[f"expr_{c}"] for c in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")) \
                == pytest.approx(1.0, abs=1e-4)
    assert len(windows) == stats.n_windows == 2  # at 1 s and 2 s of source time
    scored = [w for w in windows if w["window_ok"]]
    assert scored and all(0 <= w["engagement_probability"] <= 1 and w["reason_text"].startswith("predicted")
                          for w in scored)
    for w in windows:  # no score without a face: the window where the face is gone has none
        if not w["window_ok"]:
            assert w["engagement_probability"] is None and w["reasons"] == [] and w["coverage"] < 0.6
            assert w["blink_per_min"] is None  # nor a blink rate over a few frames of face
    assert windows[1]["coverage"] == pytest.approx(0.5, abs=0.1)  # half of 1-2 s has no face
    # the annotated video has every frame, with drawings on it
    cap = cv2.VideoCapture(str(tmp_path / "annotated.avi"))
    ok, first = cap.read()
    count = 1 + sum(1 for _ in iter(lambda: cap.read()[0], False))
    cap.release()
    source = cv2.VideoCapture(str(clip)).read()[1]
    assert ok and count == 90 and np.abs(first.astype(int) - source.astype(int)).mean() > 0.5


def test_drops_frames_to_keep_up(tmp_path: Path) -> None:
    fast = sample_video(tmp_path / "fast.avi", n_frames=150, fps=600.0)  # plays 20x faster than real time
    records: list[dict] = []
    stats = run_live(fast, records.append, config=LiveConfig(windows=WindowChanges(window_s=0.05), step_s=0.05))
    assert stats.n_read == 150 and stats.n_dropped > 0
    assert stats.n_processed + stats.n_dropped == stats.n_read
    drops = [r["dropped_total"] for r in records if r["type"] == "frame"]
    assert drops == sorted(drops) and drops[-1] <= stats.n_dropped
    idx = [r["frame_idx"] for r in records if r["type"] == "frame"]
    assert idx == sorted(idx) and len(idx) == stats.n_processed and max(np.diff(idx)) > 1  # gaps where it dropped


def test_csv_output_and_cli(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "live.csv"
    assert main(["-q", "live", "--source", str(clip), "--every-frame", "--format", "csv", "--output", str(out),
                 "--window-s", "1", "--step-s", "1"]) == 0
    frames, windows = pd.read_csv(out), pd.read_csv(tmp_path / "live_windows.csv")
    assert len(frames) == 90 and list(frames.columns) == list(FRAME_FIELDS)
    assert len(windows) == 2 and windows["window_ok"].tolist() == [True, False]  # the face leaves in the second
    assert windows["engagement_probability"].iloc[0] <= 1 and np.isnan(windows["engagement_probability"].iloc[1])


def test_still_images_are_not_live(tmp_path: Path, astronaut) -> None:
    cv2.imwrite(str(tmp_path / "a.jpg"), astronaut)
    with pytest.raises(InvalidParameterError, match="camera index, stream address or video file"):
        run_live(tmp_path / "a.jpg", lambda r: None)
    sink = CsvSink(tmp_path / "x.csv")
    sink.close()


def test_reads_an_mjpeg_stream_over_http(clip: Path) -> None:
    """A stream address (an IP camera's MJPEG over HTTP, paced at 30 frames a second) is read as it arrives:
    frames it cannot keep up with (the first, while the models warm up) are dropped, not queued; faces and
    windows as from the file."""
    import time

    cap = cv2.VideoCapture(str(clip))
    first_second = [cap.read()[1] for _ in range(30)]  # a face in every frame
    cap.release()
    with mjpeg_stream(first_second, fps=30.0) as url:
        records: list[dict] = []
        started = time.perf_counter()
        stats = run_live(url, records.append, config=LiveConfig(windows=WindowChanges(window_s=0.5), step_s=0.5))
        elapsed = time.perf_counter() - started
    frames = [r for r in records if r["type"] == "frame"]
    assert stats.n_read == 30 and stats.n_processed + stats.n_dropped == 30 and stats.n_processed >= 10
    assert elapsed >= 0.9  # read as it arrived, not faster
    assert all(f["face_found"] for f in frames) and all(abs(f["yaw_deg"]) < 30 for f in frames)
    windows = [r for r in records if r["type"] == "window"]
    assert windows and any(w["window_ok"] and 0 <= w["engagement_probability"] <= 1 for w in windows)
