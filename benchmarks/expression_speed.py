"""Milliseconds per face of the shipped expression CNN, batch 1 and batch 32, on the CPU.

Measures :func:`geoengage.detect.expression.predict_proba` (the face and its mirror image, as
extraction runs it) with the model as geoengage loads it (batch norm folded into the
convolutions, channels-last, in the precision :func:`geoengage.detect.expression.cnn_dtype` picks
for this CPU), the same folded model in float32, and, as the baseline in the same run, the same
weights in a plain ``ExpressionNet`` in eval mode. Also times the alignment (:func:`geoengage.normalize.normalize_face`)
that prepares each face. Inputs are aligned crops of scikit-image's astronaut. Prints medians
over ``--repeats`` runs, with torch limited to ``--threads`` threads (default 1: one core).

    python benchmarks/expression_speed.py [--repeats 30] [--threads 1]
"""

from __future__ import annotations

import numpy as np
import torch
from timing import astronaut_face, median_ms, speed_arguments

from geoengage.detect.expression import (
    EXPRESSION_WEIGHTS,
    cnn_dtype,
    load_expression_model,
    predict_proba,
    read_expression_net,
)
from geoengage.normalize import normalize_face


def main() -> None:
    args = speed_arguments(__doc__)
    gray, landmarks = astronaut_face()
    rng = np.random.default_rng(0)
    faces = np.stack([normalize_face(gray, landmarks + rng.normal(0, 1.0, landmarks.shape)) for _ in range(32)])
    fast = load_expression_model()
    float32 = load_expression_model(precision="float32")
    plain = read_expression_net().eval()
    print(f"expression CNN ({EXPRESSION_WEIGHTS.stat().st_size / 1e6:.2f} MB), torch {torch.__version__}, "
          f"{args.threads} thread(s), median of {args.repeats} runs, face + mirror image per prediction; "
          f"shipped precision here: {str(cnn_dtype()).removeprefix('torch.')}")
    align = median_ms(lambda: normalize_face(gray, landmarks), args.repeats)
    print(f"  alignment (normalize_face)        {align:6.2f} ms per face")
    for batch in (1, 32):
        shipped = median_ms(lambda: predict_proba(fast, faces[:batch]), args.repeats) / batch
        folded = median_ms(lambda: predict_proba(float32, faces[:batch]), args.repeats) / batch
        baseline = median_ms(lambda: predict_proba(plain, faces[:batch]), args.repeats) / batch
        print(f"  batch {batch:2d}: as shipped {shipped:6.2f} ms per face, folded float32 {folded:6.2f} ms, "
              f"plain eval model {baseline:6.2f} ms ({baseline / shipped:.2f} x faster as shipped)")


if __name__ == "__main__":
    main()
