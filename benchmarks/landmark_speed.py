"""Frames per second of the landmark stage on a 640x480 one-face video, beside decoding alone.

Runs pinned to one core (``os.sched_setaffinity`` and ``cv2.setNumThreads(1)``). The clip is
made from scikit-image's astronaut photo (``geoengage.datasets.sample_video``); the real
640x360 clip in ../shared/data/face_samples is measured too when present.

For each clip it prints the median over ``--repeats`` runs of:
- decode: reading the file into frames (``iter_frames``), no face work;
- landmarks with tracking / without tracking: the landmark stage on frames already decoded
  in memory (detection, landmarks, tracks), so decode time is not counted twice;
- tracking + expression CNN: the same with the expression CNN on every face (batches of 32),
  as ``geoengage extract`` runs by default;
and the ratio of each landmark rate to the decode rate measured in the same run; then the
per-frame feature stage (pose, blink, mouth/brow geometry, gaze direction: everything that
works on the table after extraction) on the tracked rows.

    python benchmarks/landmark_speed.py [--frames 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from geoengage.config import ExtractConfig
from geoengage.datasets import sample_video
from geoengage.extract import frames_from_rows, iter_face_rows
from geoengage.geometry.registry import compute_frame_features
from geoengage.media import iter_frames

SHARED_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "face_samples" / "short_hamilton_clip.mp4"


def _fps(n: int, seconds: float) -> float:
    return n / seconds


def measure(clip: Path, repeats: int) -> dict[str, float]:
    frames = list(iter_frames(clip))
    list(iter_face_rows(frames[:2], config=ExtractConfig()))  # load the models once, outside the timing
    decode, tracked, detected, expressed, features, yields = [], [], [], [], [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        n = sum(1 for _ in iter_frames(clip))
        decode.append(_fps(n, time.perf_counter() - start))
        for label, config, out in (("tracking", ExtractConfig(expression=False), tracked),
                                   ("detection", ExtractConfig(tracking=False, expression=False), detected),
                                   ("expression", ExtractConfig(), expressed)):
            start = time.perf_counter()
            rows = list(iter_face_rows(frames, config=config))
            out.append(_fps(len(frames), time.perf_counter() - start))
            yields[label] = sum(bool(r["face_found"]) for r in rows) / len(frames)
            if label == "tracking":
                table = frames_from_rows([{"video_id": "clip", "source_path": str(clip), **r} for r in rows])
                start = time.perf_counter()
                compute_frame_features(table)
                features.append(_fps(len(table), time.perf_counter() - start))
    result = {"frames": len(frames), "decode_fps": statistics.median(decode),
              "tracking_fps": statistics.median(tracked), "detection_fps": statistics.median(detected),
              "expression_fps": statistics.median(expressed),
              "features_fps": statistics.median(features)}
    result["tracking_vs_decode"] = result["tracking_fps"] / result["decode_fps"]
    result["detection_vs_decode"] = result["detection_fps"] / result["decode_fps"]
    result["face_yield_tracking"] = yields["tracking"]
    result["face_yield_detection"] = yields["detection"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        clips = {"astronaut 640x480 (generated)": sample_video(Path(tmp) / "clip.avi", n_frames=args.frames)}
        if SHARED_CLIP.is_file():
            clips["hamilton 640x360 (real, shared/)"] = SHARED_CLIP
        print(f"landmark stage, one core, median of {args.repeats} runs")
        for name, clip in clips.items():
            r = measure(clip, args.repeats)
            print(f"{name}: {r['frames']} frames")
            print(f"  decode only            {r['decode_fps']:8.1f} fps")
            print(f"  landmarks, tracking    {r['tracking_fps']:8.1f} fps  ({r['tracking_vs_decode']:.2f} x decode)"
                  f"  face in {r['face_yield_tracking']:.1%} of frames")
            print(f"  landmarks, no tracking {r['detection_fps']:8.1f} fps  ({r['detection_vs_decode']:.2f} x decode)"
                  f"  face in {r['face_yield_detection']:.1%} of frames")
            print(f"  tracking + expression  {r['expression_fps']:8.1f} fps  "
                  f"({r['expression_fps'] / r['tracking_fps']:.2f} x landmarks alone)")
            print(f"  feature stage          {r['features_fps']:8.1f} rows/s (after extraction)")


if __name__ == "__main__":
    main()
