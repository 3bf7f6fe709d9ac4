"""Time of one 128-d face encoding: dlib's own network against geoengage's torch run of it, same faces, same run.

One thread (``--threads``, as the other CNN speed benchmarks: ``timing.speed_arguments``). For each face
(scikit-image's astronaut, and faces of the real clip in ../shared/data/face_samples when present) both encoders
take the same 150x150 chip (dlib's 5-point predictor and ``dlib.get_face_chip``, outside the timing); prints the
median milliseconds of each over ``--repeats`` runs, their ratio, and the largest difference between the two
encodings (dlib's rule calls two faces the same person within a distance of 0.6).

    python benchmarks/face_encoder_speed.py [--repeats 30] [--threads 1]
"""

from __future__ import annotations

import statistics

import dlib
import numpy as np
from timing import SHARED_CLIP, median_ms, speed_arguments

from geoengage.datasets import sample_image
from geoengage.detect.face_encoder import CHIP_PADDING, CHIP_SIZE, face_encoder
from geoengage.detect.identity import _five_point_predictor
from geoengage.detect.models import model_path
from geoengage.media import iter_frames


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


def main() -> None:
    args = speed_arguments(__doc__)
    dlibs = dlib.face_recognition_model_v1(str(model_path("face_encoder")))
    ours = face_encoder()

    def theirs(chip: np.ndarray) -> np.ndarray:
        return np.array(dlibs.compute_face_descriptor(chip))  # a chip already aligned: dlib encodes it as it is

    chips = _chips()
    dlib_ms, torch_ms, differences = [], [], []
    for chip in chips:
        dlib_ms.append(median_ms(lambda c=chip: theirs(c), args.repeats))
        torch_ms.append(median_ms(lambda c=chip: ours(c[None]), args.repeats))
        differences.append(float(np.abs(ours(chip[None])[0] - theirs(chip)).max()))
    print(f"face encoder, {args.threads} thread(s), {len(chips)} faces, median of {args.repeats} runs each")
    print(f"  dlib's own network       {statistics.median(dlib_ms):7.1f} ms a face")
    print(f"  geoengage (torch)        {statistics.median(torch_ms):7.1f} ms a face  "
          f"({statistics.median(d / t for d, t in zip(dlib_ms, torch_ms, strict=True)):.1f}x faster, median of the "
          "per-face ratios)")
    print(f"  largest difference between the encodings: {max(differences):.1e}")


if __name__ == "__main__":
    main()
