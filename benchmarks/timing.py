"""Helpers shared by the speed benchmarks (imported as ``from timing import ...``)."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: The real 640x360 clip in ../shared (beside the project root), used when present.
SHARED_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "face_samples" / "short_hamilton_clip.mp4"


def pin_one_core() -> None:
    """Run on one core: the process pinned to it, OpenCV and torch at one thread each."""
    import cv2
    import torch

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    # torch sized its thread pool when geoengage imported it, before the pinning: two threads on one core spin
    # against each other (the face encoder ran 0.7 s a face instead of 25 ms)
    torch.set_num_threads(1)


def median_ms(func: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``func()`` in milliseconds over ``repeats`` runs, after one warm-up run."""
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def speed_arguments(doc: str) -> argparse.Namespace:
    """``--repeats`` (default 30) and ``--threads`` (default 1), with torch and OpenCV limited to them."""
    import cv2
    import torch

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    return args


def astronaut_face() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo in grayscale and its 68 landmarks (detector box, dlib)."""
    import cv2

    from geoengage.datasets import sample_image
    from geoengage.detect.faces import HogFaceDetector
    from geoengage.detect.landmarks import DlibLandmarker

    gray = cv2.cvtColor(sample_image(), cv2.COLOR_BGR2GRAY)
    return gray, DlibLandmarker()(gray, HogFaceDetector()(gray)[0].box)
