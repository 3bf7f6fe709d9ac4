"""``geoengage demo``: the whole pipeline on a bundled clip, with no user data.

It writes a 3-second 640x480 clip made from scikit-image's astronaut photo (the face
moves, zooms, turns, leaves for half a second and returns), runs every stage on it
(landmarks, per-frame features and expressions, cleaning, 1-second windows, engagement scored by the
shipped default model with the reasons for each window), and leaves the
outputs in one folder: ``frames.parquet``, ``windows.parquet``, ``preview.png``, ``summary.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import pandas as pd

from .annotate import draw_face
from .config import ExtractConfig
from .datasets import sample_video
from .extract import extract_frames, write_frames
from .media import iter_frames
from .predict import PredictConfig, predict_frames
from .recipe import WindowChanges

__all__ = ["run_demo"]


def run_demo(out: Path) -> dict[str, object]:
    """Run the demo into ``out`` and return a summary (also written to ``out/summary.json``)."""
    out.mkdir(parents=True, exist_ok=True)
    clip = sample_video(out / "sample.avi", n_frames=90, fps=30.0, absent=(1.5, 2.0))
    config = ExtractConfig()
    start = time.perf_counter()
    frames = extract_frames(clip, config=config, video_id="sample.avi")
    seconds = time.perf_counter() - start
    write_frames(frames, out / "frames.parquet", config=config)
    # 1 s windows (the model learnt from 10 s ones) so that the 3 s clip shows the face leaving and coming back
    short = WindowChanges(window_s=1.0, step_s=0.5, min_coverage=0.6)
    prediction = predict_frames(frames, config=PredictConfig(windows=short))
    windows = prediction.windows
    windows.drop(columns=["reasons"]).to_parquet(out / "windows.parquet", index=False)
    first = frames.iloc[0].to_dict()
    image = next(iter_frames(clip, max_frames=1)).image
    cv2.imwrite(str(out / "preview.png"), draw_face(image, first))
    summary = {
        "clip": str(clip),
        "n_frames": int(frames["frame_idx"].nunique()),
        "face_yield": round(float(frames["face_found"].mean()), 3),
        "tracks": sorted(int(t) for t in frames.loc[frames["face_found"], "track_id"].unique()),
        "median_features": {name: round(float(frames[name].median()), 3) for name in
                            ("yaw_deg", "pitch_deg", "roll_deg", "ear", "gaze_h_ratio", "mouth_aspect_ratio",
                             "smile_width_iod")},
        # a flag's median says little: the share of face frames whose gaze lands on the screen, by both estimates
        "on_screen_share": {name: round(float(frames[name].mean()), 3) for name in ("on_screen", "on_screen_cnn")},
        "expression_share": {str(k): round(float(v), 3) for k, v in
                             frames["expr_class"].value_counts(normalize=True).items()},
        "cleaning": prediction.cleaning.to_dict(),
        "windows": {"n": len(windows), "window_s": 1.0, "step_s": 0.5,
                    "ok": int(windows["window_ok"].sum()),
                    "coverage": [round(float(c), 2) for c in windows["coverage"]],
                    "engagement_pred": [None if pd.isna(c) else str(c) for c in windows["engagement_pred"]],
                    "engagement_probability": [None if pd.isna(p) else round(float(p), 2)
                                               for p in windows["engagement_probability"]],
                    "reasons": list(windows["reason_text"])},
        "extract_s": round(seconds, 2),  # includes loading the 100 MB landmark model
        "outputs": sorted(p.name for p in out.iterdir()) + ["summary.json"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
