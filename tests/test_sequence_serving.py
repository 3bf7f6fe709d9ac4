"""A sequence model trained on geoengage windows scores with time in live mode, the service and `geoengage score`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geoengage.cli import main
from geoengage.datasets import sample_video
from geoengage.live import LiveConfig, run_live
from geoengage.modeling.sequence import SequenceModel, load_sequence_model
from geoengage.recipe import WindowChanges
from geoengage.serve import ServeConfig
from geoengage.serve import analyse as _analyse

FEATURES = ["yaw_deg__median", "eye_closure__mean", "gaze_yaw_deg__std"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    rows = [{"video_id": f"v{r}", "track_id": 0, "subject_id": f"s{r // 2}", "window_idx": k, "window_ok": True,
             "engagement": [0.0, 1.0][r % 2], **{f: rng.normal() + r % 2 for f in FEATURES}}
            for r in range(12) for k in range(4)]
    windows = pd.DataFrame(rows)
    model = SequenceModel(hidden=8, max_epochs=5, n_seeds=1, early_stopping=False).fit(windows, "engagement")
    folder = tmp_path_factory.mktemp("seq") / "model"
    model.save(folder, settings={"windows": {"window_s": 1.0, "step_s": 0.5, "min_coverage": 0.3}})
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return sample_video(tmp_path_factory.mktemp("seqclip") / "clip.avi", n_frames=90, fps=30.0, absent=(1.0, 1.5))


def test_live_window_records_carry_the_prediction_so_far(clip: Path, model_dir: Path) -> None:
    records: list[dict] = []
    run_live(clip, records.append, config=LiveConfig(realtime=False, windows=WindowChanges(window_s=1.0), step_s=1.0),
             sequence_model=load_sequence_model(model_dir))
    windows = [r for r in records if r["type"] == "window"]
    assert len(windows) == 2
    values = [w["engagement_so_far"] for w in windows]
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values)


def test_service_answers_the_sequence_for_videos(clip: Path, model_dir: Path) -> None:
    answer = _analyse(clip, "video", ServeConfig(sequence_model=str(model_dir)), timeline=False)
    sequence = answer["sequence"]
    assert [s["window_idx"] for s in sequence] == [0, 1, 2, 3, 4]  # 3 s, 1 s windows every 0.5 s
    scored = [s for s in sequence if s["engagement_so_far"] is not None]
    assert scored and scored[-1]["engagement_so_far"] == pytest.approx(scored[-1]["engagement_recording"])
    assert "sequence" not in _analyse(clip, "video", ServeConfig(), timeline=False)


def test_imported_feature_models_cannot_score_media(clip: Path, tmp_path: Path) -> None:
    rows = [{"video_id": f"v{r}", "window_idx": k, "subject_id": f"s{r}", "y": float(r % 2), "gaze_x__value": r + k}
            for r in range(6) for k in range(3)]
    SequenceModel(hidden=4, max_epochs=1, n_seeds=1, early_stopping=False).fit(pd.DataFrame(rows), "y").save(
        tmp_path / "imported")
    assert main(["live", "--source", str(clip), "--sequence-model", str(tmp_path / "imported"), "--every-frame",
                 "--output", str(tmp_path / "out.jsonl")]) == 2
