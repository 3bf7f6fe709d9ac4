"""Time of one 128-d face encoding: dlib's own network against geoengage's torch run of it, same faces, same run.

Pinned to one core (``os.sched_setaffinity``, ``cv2.setNumThreads(1)``, ``torch.set_num_threads(1)``). For each face
(scikit-image's astronaut, and faces of the real clip in ../shared/data/face_samples when present) both encoders
take the same 150x150 chip (dlib's 5-point predictor and ``dlib.get_face_chip``, outside the timing); prints the
median milliseconds of each over ``--repeats`` runs, their ratio, and the largest difference between the two
encodings (dlib's rule calls two faces the same person within a distance of 0.6).

    python benchmarks/face_encoder_speed.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import cv2
import dlib
import numpy as np
import torch

from geoengage.datasets import sample_image
from geoengage.detect.face_encoder import CHIP_PADDING, CHIP_SIZE, face_encoder
from geoengage.detect.identity import _five_point_predictor
from geoengage.detect.models import model_path
from geoengage.media import iter_frames

SHARED_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "face_samples" / "short_hamilton_clip.mp4"


def _chips() -> list[np.ndarray]:
    """150x150 RGB chips of the faces dlib's HOG detector finds in the astronaut and in every 25th clip frame."""
    images = [sample_image()]
    if SHARED_CLIP.is_file():
        images += [frame.image for frame in iter_frames(SHARED_CLIP)][::25]
    detector, chips = dlib.get_frontal_face_detector(), []
    for image in images:
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        for rect in detector(rgb, 1):
            shape = _five_point_predictor()(rgb, rect)
            chips.append(dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
    return chips


def _median_ms(encode, chip: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        encode(chip)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    dlibs = dlib.face_recognition_model_v1(str(model_path("face_encoder")))
    ours = face_encoder()

    def theirs(chip: np.ndarray) -> np.ndarray:
        return np.array(dlibs.compute_face_descriptor(chip))  # a chip already aligned: dlib encodes it as it is

    chips = _chips()
    ours(chips[0][None]), theirs(chips[0])  # first calls (allocation, torch's set-up) outside the timing
    dlib_ms, torch_ms, differences = [], [], []
    for chip in chips:
        dlib_ms.append(_median_ms(theirs, chip, args.repeats))
        torch_ms.append(_median_ms(lambda c: ours(c[None]), chip, args.repeats))
        differences.append(float(np.abs(ours(chip[None])[0] - theirs(chip)).max()))
    print(f"face encoder, one core, {len(chips)} faces, median of {args.repeats} runs each")
    print(f"  dlib's own network       {statistics.median(dlib_ms):7.1f} ms a face")
    print(f"  geoengage (torch)        {statistics.median(torch_ms):7.1f} ms a face  "
          f"({statistics.median(d / t for d, t in zip(dlib_ms, torch_ms, strict=True)):.1f}x faster, median of the "
          "per-face ratios)")
    print(f"  largest difference between the encodings: {max(differences):.1e}")


if __name__ == "__main__":
    main()
