"""Milliseconds per face of the shipped expression CNN, batch 1 and batch 32, on the CPU.

Measures :func:`geoengage.detect.expression.predict_proba` (the face and its mirror image, as
extraction runs it) with the model as geoengage loads it (batch norm folded into the
convolutions, channels-last) and, as the baseline in the same run, the same weights in a plain
``ExpressionNet`` in eval mode. Also times the alignment (:func:`geoengage.normalize.normalize_face`)
that prepares each face. Inputs are aligned crops of scikit-image's astronaut. Prints medians
over ``--repeats`` runs, with torch limited to ``--threads`` threads (default 1: one core).

    python benchmarks/expression_speed.py [--repeats 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
import torch

from geoengage.datasets import sample_image
from geoengage.detect.expression import EXPRESSION_WEIGHTS, ExpressionNet, load_expression_model, predict_proba
from geoengage.detect.faces import HogFaceDetector
from geoengage.detect.landmarks import DlibLandmarker
from geoengage.normalize import normalize_face


def _median_ms(func, repeats: int) -> float:
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    gray = cv2.cvtColor(sample_image(), cv2.COLOR_BGR2GRAY)
    landmarks = DlibLandmarker()(gray, HogFaceDetector()(gray)[0].box)
    rng = np.random.default_rng(0)
    faces = np.stack([normalize_face(gray, landmarks + rng.normal(0, 1.0, landmarks.shape)) for _ in range(32)])
    fast = load_expression_model()
    plain = ExpressionNet.from_state_dict(torch.load(EXPRESSION_WEIGHTS, weights_only=True))
    plain.eval()
    print(f"expression CNN ({EXPRESSION_WEIGHTS.stat().st_size / 1e6:.2f} MB), torch {torch.__version__}, "
          f"{args.threads} thread(s), median of {args.repeats} runs, face + mirror image per prediction")
    align = _median_ms(lambda: normalize_face(gray, landmarks), args.repeats)
    print(f"  alignment (normalize_face)        {align:6.2f} ms per face")
    for batch in (1, 32):
        shipped = _median_ms(lambda: predict_proba(fast, faces[:batch]), args.repeats) / batch
        baseline = _median_ms(lambda: predict_proba(plain, faces[:batch]), args.repeats) / batch
        print(f"  batch {batch:2d}: as shipped {shipped:6.2f} ms per face, plain eval model {baseline:6.2f} ms "
              f"({baseline / shipped:.2f} x faster as shipped)")


if __name__ == "__main__":
    main()
