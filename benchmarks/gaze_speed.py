"""Milliseconds per eye of the shipped gaze CNN at batch 32 and batch 1, and of the eye normalisation, on the CPU.

Measures :func:`geoengage.detect.gaze.predict_eye_crops` (each crop and its mirror image, as extraction runs it)
with the model as geoengage loads it (batch norm folded into the convolutions, channels-last) and, as the
baseline in the same run, the same weights in a plain ``GazeNet`` in eval mode. Also times
:func:`geoengage.normalize.normalize_eyes` (head pose, two perspective warps, histogram equalisation: both eyes of
one face) on the astronaut photo. Inputs are that photo's normalised eyes, jittered. Last, the whole extraction
of the bundled 90-frame 640x480 sample clip with and without the gaze CNN (``ExtractConfig(gaze_cnn=False)``), so
its share of the per-frame cost shows. Prints medians over ``--repeats`` runs (5 for the clip) with torch limited to
``--threads`` threads (default 1: one core). Budget (issue 13): <= 1 ms per eye at batch 32 on one thread.

    python benchmarks/gaze_speed.py [--repeats 30] [--threads 1]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from timing import astronaut_face, median_ms, speed_arguments

from geoengage.config import ExtractConfig
from geoengage.datasets import sample_video
from geoengage.detect.gaze import GAZE_WEIGHTS, load_gaze_model, predict_eye_crops, read_gaze_net
from geoengage.extract import extract_frames
from geoengage.normalize import normalize_eyes


def main() -> None:
    args = speed_arguments(__doc__)
    gray, landmarks = astronaut_face()
    rng = np.random.default_rng(0)
    eyes = [normalize_eyes(gray, landmarks + rng.normal(0, 1.0, landmarks.shape)) for _ in range(16)]
    crops = np.concatenate([e.crops[0] for e in eyes])  # 32 eyes
    head = np.concatenate([e.head_yaw_pitch[0] for e in eyes]).astype(np.float32)
    fast = load_gaze_model()
    plain = read_gaze_net().eval()
    print(f"gaze CNN ({GAZE_WEIGHTS.stat().st_size / 1e6:.2f} MB), torch {torch.__version__}, {args.threads} "
          f"thread(s), median of {args.repeats} runs, crop + mirror image per prediction")
    normalise = median_ms(lambda: normalize_eyes(gray, landmarks), args.repeats)
    print(f"  eye normalisation (normalize_eyes) {normalise:6.2f} ms per face (both eyes)")
    for batch in (32, 1):
        shipped = median_ms(lambda: predict_eye_crops(crops[:batch], head[:batch], model=fast), args.repeats) / batch
        baseline = median_ms(lambda: predict_eye_crops(crops[:batch], head[:batch], model=plain),
                              args.repeats) / batch
        print(f"  batch {batch:2d}: as shipped {shipped:6.3f} ms per eye, plain eval model {baseline:6.3f} ms "
              f"({baseline / shipped:.2f} x faster as shipped)")
    with tempfile.TemporaryDirectory() as tmp:
        clip = sample_video(Path(tmp) / "clip.avi", n_frames=90)
        with_cnn = median_ms(lambda: extract_frames(clip), 5) / 90
        without = median_ms(lambda: extract_frames(clip, config=ExtractConfig(gaze_cnn=False)), 5) / 90
    print(f"  extraction of the 640x480 sample clip: {with_cnn:6.2f} ms per frame with the gaze CNN, {without:6.2f} "
          f"without ({with_cnn / without:.2f} x)")


if __name__ == "__main__":
    main()
