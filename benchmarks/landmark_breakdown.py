"""Where the landmark stage's time goes, per frame, on one core: the default extraction without the CNNs (the
``landmarks, tracking`` rate of ``benchmarks/landmark_speed.py``).

The real 640x360 clip in ../shared/data/face_samples is used when present, else the generated astronaut clip
(``geoengage.datasets.sample_video``). Pinned to one core like ``landmark_speed.py``. It prints:

- the stage's median time a frame over ``--repeats`` runs, unprofiled;
- a profile of one more run (``cProfile``, which adds Python overhead, so the shares are of the profiled total): dlib's
  68-point fit (``DlibLandmarker``), YuNet's network (``cv2.FaceDetectorYN.detect``), the rest of a YuNet call
  (resizing the frame or region to YuNet's input, reading its rows), the image features computed while the frame
  is in memory (pupils, face quality), the re-identification encodings, and everything else (tracking's patches and
  boxes, building the rows);
- the same 68-point fits (same frames, same boxes, recorded in that run) timed back to back, outside the stage:
  what the fit costs when nothing else runs between two fits.

    python benchmarks/landmark_breakdown.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
from timing import SHARED_CLIP, pin_one_core

from geoengage.config import ExtractConfig
from geoengage.datasets import sample_video
from geoengage.detect.landmarks import DlibLandmarker
from geoengage.extract import iter_face_rows
from geoengage.media import iter_frames

CONFIG = ExtractConfig(expression=False, gaze_cnn=False)


def _profiled(frames: list) -> tuple[dict[str, float], list]:
    """Seconds by part of one profiled run, and the (gray, box) of every 68-point fit in it."""
    fits: list = []
    fit = DlibLandmarker.__call__

    def recorded(self: DlibLandmarker, gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        fits.append((gray, box))
        return fit(self, gray, box)

    profile = cProfile.Profile()
    with mock.patch.object(DlibLandmarker, "__call__", recorded):
        profile.enable()
        list(iter_face_rows(frames, config=CONFIG))
        profile.disable()
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (calls, primitive calls, own time, cumulative, _)

    def cumulative(file_end: str, name: str, own: bool = False) -> float:
        return sum(v[2 if own else 3] for (file, _, func), v in stats.items() if file.endswith(file_end)
                   and func == name)

    parts = {"68-point fit (dlib)": cumulative("landmarks.py", "__call__"),
             "YuNet network": cumulative("~", "<method 'detect' of 'cv2.FaceDetectorYN' objects>", own=True)}
    parts["YuNet resize and rows"] = cumulative("faces.py", "raw") - parts["YuNet network"]
    parts["image features (pupils, quality)"] = cumulative("registry.py", "image_features")
    parts["re-identification encodings"] = cumulative("identity.py", "encode_face")
    total = cumulative("extract.py", "iter_face_rows")
    parts["everything else"] = total - sum(parts.values())
    parts["total"] = total
    return parts, fits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pin_one_core()
    with tempfile.TemporaryDirectory() as tmp:
        clip = SHARED_CLIP if SHARED_CLIP.is_file() else sample_video(Path(tmp) / "clip.avi", n_frames=300)
        frames = list(iter_frames(clip))
    n = len(frames)
    list(iter_face_rows(frames[:2], config=CONFIG))  # models loaded outside the timing
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        list(iter_face_rows(frames, config=CONFIG))
        times.append(time.perf_counter() - start)
    print(f"{clip.name}: {n} frames, one core; the landmark stage (CNNs off), median of {args.repeats} runs: "
          f"{1000 * statistics.median(times) / n:.2f} ms a frame ({n / statistics.median(times):.1f} fps)")
    parts, fits = _profiled(frames)
    total = parts.pop("total")
    print(f"profiled run: {1000 * total / n:.2f} ms a frame")
    for name, seconds in parts.items():
        print(f"  {name:34s} {1000 * seconds / n:6.2f} ms a frame  {seconds / total:6.1%}")
    landmarker = DlibLandmarker()
    alone = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for gray, box in fits:
            landmarker(gray, box)
        alone.append(time.perf_counter() - start)
    in_stage = parts["68-point fit (dlib)"] / len(fits)
    print(f"68-point fits: {len(fits)} in the run ({len(fits) / n:.2f} a frame); {1000 * in_stage:.2f} ms each inside "
          f"the stage (profiled), {1000 * statistics.median(alone) / len(fits):.2f} ms each back to back "
          f"(median of {args.repeats})")


if __name__ == "__main__":
    main()
