"""modeling/clips.py: CNN embeddings + geometry per frame -> GRU, on generated clips of a real photo."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from geoengage.datasets import sample_image, sample_video
from geoengage.modeling.clips import clip_steps, clip_steps_from_manifest, sample_clip_frames
from geoengage.modeling.sequence import SequenceModel

N_FRAMES = 12


def _clip(photo: np.ndarray, *, away: bool, seed: int) -> list[np.ndarray]:
    """Frames of the astronaut with small jitter; in `away` clips the head turns far over for 4 frames somewhere."""
    rng = np.random.default_rng(seed)
    start = int(rng.integers(1, N_FRAMES - 5))
    frames = []
    for k in range(N_FRAMES):
        angle = rng.normal(0, 3) + (75 if away and start <= k < start + 4 else 0)
        matrix = cv2.getRotationMatrix2D((222.0, 128.0), angle, 1.0 + rng.normal(0, 0.02))
        matrix[:, 2] += rng.normal(0, 4, 2) + np.array([160 - 222, 120 - 128])
        frames.append(cv2.warpAffine(photo, matrix, (320, 240), borderMode=cv2.BORDER_REFLECT))
    return frames


@pytest.fixture(scope="module")
def clip_table() -> pd.DataFrame:
    photo = sample_image()
    parts = []
    for i in range(24):
        away = bool(i % 2)
        steps = clip_steps(_clip(photo, away=away, seed=i), video_id=f"clip{i:02d}")
        parts.append(steps.assign(subject_id=f"s{i // 2}", label=int(away)))
    return pd.concat(parts, ignore_index=True)


def test_clip_steps_carry_the_cnn_embedding_and_geometry(clip_table: pd.DataFrame) -> None:
    assert clip_table.groupby("video_id").size().eq(N_FRAMES).all()
    columns = set(clip_table.columns)
    assert {"expr_emb_00__value", "expr_emb_15__value", "yaw_deg__value", "eye_closure__value",
            "face_found__value"} <= columns
    still = clip_table[clip_table.label == 0]
    assert still["face_found__value"].mean() > 0.9 and still["expr_emb_00__value"].notna().mean() > 0.9


def test_cnn_gru_learns_the_turned_away_clips(clip_table: pd.DataFrame) -> None:
    train = clip_table[clip_table.video_id < "clip16"]
    test = clip_table[clip_table.video_id >= "clip16"]
    model = SequenceModel("classification", hidden=16, max_epochs=60, batch_size=4, n_seeds=1, dropout=0.0,
                          lr=1e-2, early_stopping=False).fit(train, "label")
    predicted = model.predict_recordings(test).set_index("video_id")["prediction"]
    truth = test.groupby("video_id")["label"].first()
    assert (predicted.loc[truth.index].astype(int) == truth).mean() == 1.0


def test_manifest_of_videos_with_a_bad_file(tmp_path) -> None:
    sample_video(tmp_path / "a.avi", n_frames=20)
    (tmp_path / "broken.avi").write_bytes(b"not a video")
    pd.DataFrame({"path": ["a.avi", "broken.avi"], "label": [1, 0], "subject_id": ["p1", "p2"]}).to_csv(
        tmp_path / "clips.csv", index=False)
    steps, failures = clip_steps_from_manifest(tmp_path / "clips.csv", n_frames=5)
    assert len(steps) == 5 and steps["label"].eq("1").all() and steps["window_idx"].tolist() == [0, 1, 2, 3, 4]
    assert len(failures) == 1 and "broken.avi" in failures.loc[0, "path"]
    frames = sample_clip_frames(tmp_path / "a.avi", n_frames=5)
    assert [f.frame_idx for f in frames] == [0, 5, 10, 14, 19]
