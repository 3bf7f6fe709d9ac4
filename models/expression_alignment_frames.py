"""Landmark alignment vs a plain crop when the face sits in a camera-like frame (moved, scaled, rolled).

    python models/expression_alignment_frames.py [--rolls 0 10 20] [--limit N] [--seed 0]

The alignment comparison in the expression card is on FER-2013's own crops, which their makers already framed.
What a webcam frame adds is a face at an unknown place, size and roll, found by the detector. There is no
expression-labelled webcam set in ``../shared``, so this script makes camera-like frames from labelled faces:
each FER-2013 PrivateTest face with a FER+ majority (3,376) is upscaled 3x (as ``normalize_crops`` does), scaled
by a random factor in [0.85, 1.25], rolled by +/- ``roll`` degrees (random sign) and moved to a random place in a
320x320 frame (the crop's border pixels fill the rest), with sensor noise (sd 3) and JPEG compression (quality
85). Each frame then goes through the two paths a user would have:

- **landmarks**: dlib's HOG detector (threshold 0, as ``normalize_crops``) -> 68 landmarks ->
  ``geoengage.normalize.normalize_face`` -> the CNN trained on landmark-aligned faces;
- **plain crop**: the same detector box, widened to FER-2013's own framing (the median detector box inside the
  unrolled crops, :func:`geoengage.detect.faces.fit_crop_box`) -> resized to 48x48 -> the same equalisation and
  standardisation (``geoengage.modeling.cnn_training.plain_faces``) -> the CNN trained on plain crops.

Both CNNs are the equal-budget pair of the card's comparison (12 epochs, seed 0; ``models/artifacts/
expression_align_landmarks`` and ``expression_align_plain``, made by ``models/train_expression.py
models/configs/expression_align_*.toml``). Both paths are scored on the same frames: those where the detector
found the face (its detection rate is printed per roll). Accuracy is against the FER+ majority label, with a
95% bootstrap interval of the difference (paired, 1,000 resamples). Prints a table and writes
``models/artifacts/expression_alignment_frames.json``. These are synthetic frames: they test placement, scale and
roll, not webcam lighting, resolution or head yaw.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from geoengage.detect.expression import load_expression_model, predict_proba
from geoengage.detect.faces import HogFaceDetector, fit_crop_box
from geoengage.detect.landmarks import DlibLandmarker
from geoengage.modeling.cnn_training import ferplus_targets, plain_faces
from geoengage.normalize import normalize_face

ROOT = Path(__file__).resolve().parents[1]
FRAME = 320
UPSCALE = 3


def camera_frame(image: np.ndarray, roll_deg: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One 48x48 face crop placed in a FRAME x FRAME frame: upscaled, scaled, rolled, moved; noise and JPEG.

    Returns the frame and the 2x3 matrix taking the crop's own pixel coordinates to the frame's."""
    side = image.shape[0] * UPSCALE * rng.uniform(0.85, 1.25)
    big = cv2.resize(image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    margin = side * 0.75
    centre = rng.uniform(margin, FRAME - margin, size=2)
    matrix = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), roll_deg, side / big.shape[0])
    matrix[:, 2] += centre - np.array([big.shape[1] / 2, big.shape[0] / 2])
    frame = cv2.warpAffine(big, matrix, (FRAME, FRAME), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    noisy = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE), matrix @ np.diag([UPSCALE, UPSCALE, 1.0])


def plain_crop(frame: np.ndarray, box: np.ndarray, fractions: tuple[float, float, float, float]) -> np.ndarray:
    """The detector box widened to FER-2013's framing (``fractions`` of a crop where that box sits), as 48x48."""
    fl, ft, fr, fb = fractions
    width, height = (box[2] - box[0]) / (fr - fl), (box[3] - box[1]) / (fb - ft)
    left, top = box[0] - fl * width, box[1] - ft * height
    source = np.float32([[left, top], [left + width, top], [left, top + height]])
    target = np.float32([[0, 0], [48, 0], [0, 48]])
    return cv2.warpAffine(frame, cv2.getAffineTransform(source, target), (48, 48), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def paired_interval(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n: int = 1000) -> tuple[float, float]:
    """95% bootstrap interval of mean(a) - mean(b) over the same items."""
    rows = rng.integers(0, len(a), size=(n, len(a)))
    diffs = a[rows].mean(axis=1) - b[rows].mean(axis=1)
    return float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.npz")
    parser.add_argument("--rolls", type=float, nargs="+", default=[0.0, 10.0, 20.0])
    parser.add_argument("--limit", type=int, default=None, help="first N usable PrivateTest faces (default all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    artifacts = ROOT / "models" / "artifacts"
    weights = {k: artifacts / f"expression_align_{k}" / "expression_cnn.pt" for k in ("landmarks", "plain")}
    if not args.data.is_file() or not all(w.is_file() for w in weights.values()):
        print(f"blocked: needs {args.data} and the comparison's weights {[str(w) for w in weights.values()]}")
        return 2
    data = np.load(args.data, allow_pickle=False)
    rows = np.flatnonzero(data["usage"] == "PrivateTest")
    _, majority, usable = ferplus_targets(data["ferplus_votes"][rows])
    keep = usable & data["ferplus_has"][rows] & (majority >= 0)
    # the comparison's weights are training-run outputs: their classes are in FER+'s order (shipping reorders them)
    images, truth = data["images"][rows][keep], majority[keep]
    if args.limit:
        images, truth = images[: args.limit], truth[: args.limit]
    big = [cv2.resize(im, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC) for im in images[:500]]
    fractions, n_fit = fit_crop_box(big)
    print(f"{len(images)} PrivateTest faces; FER-2013 framing around the detector box from {n_fit} crops: "
          f"{tuple(round(f, 3) for f in fractions)}")
    models = {k: load_expression_model(w) for k, w in weights.items()}
    detector, landmarker = HogFaceDetector(threshold=0.0), DlibLandmarker()
    rng = np.random.default_rng(args.seed)
    results = []
    print("| roll | detected | landmarks | plain crop | landmarks - plain, 95% CI |")
    print("| --- | --- | --- | --- | --- |")
    for roll in args.rolls:
        aligned, plain, found = [], [], np.zeros(len(images), bool)
        for i, image in enumerate(images):
            frame, _ = camera_frame(image, roll * rng.choice([-1.0, 1.0]), rng)
            faces = detector(frame)
            if not faces:
                continue
            found[i] = True
            box = faces[0].box
            aligned.append(normalize_face(frame, landmarker(frame, box)))
            plain.append(plain_crop(frame, box, fractions))
        right = {"landmarks": predict_proba(models["landmarks"], np.stack(aligned)).argmax(axis=1) == truth[found],
                 "plain": predict_proba(models["plain"], plain_faces(np.stack(plain))).argmax(axis=1) == truth[found]}
        low, high = paired_interval(right["landmarks"].astype(float), right["plain"].astype(float), rng)
        row = {"roll_deg": roll, "n": int(found.sum()), "detected": float(found.mean()),
               "landmarks_accuracy": float(right["landmarks"].mean()), "plain_accuracy": float(right["plain"].mean()),
               "difference_ci95": [low, high]}
        results.append(row)
        print(f"| +/-{roll:g} deg | {row['detected']:.1%} ({row['n']}) | {row['landmarks_accuracy']:.1%} | "
              f"{row['plain_accuracy']:.1%} | {row['landmarks_accuracy'] - row['plain_accuracy']:+.1%} "
              f"[{low:+.1%}, {high:+.1%}] |")
    out = artifacts / "expression_alignment_frames.json"
    out.write_text(json.dumps({"fractions": fractions, "seed": args.seed, "rows": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
