"""Fit the map from the YuNet detector's output to the box geometry dlib's 68-point predictor was trained on.

dlib's shape predictor was trained on the boxes of dlib's HOG detector (brows to chin, ear to ear, square). YuNet's
box is taller (forehead included) and narrower, and it follows a turned head differently. On every face both
detectors find, in ``../shared/data/pointing04`` (persons 01-07) and ``../shared/data/face_samples``, this fits by
least squares the HOG box's centre offset (x, y) and log side from YuNet's box aspect and five points (all in units
of YuNet's box width, relative to its centre), and prints the coefficients that
``geoengage.detect.faces.YUNET_TO_HOG`` holds, with the error of the map in held-out halves.

    python models/fit_detector_box.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from geoengage.detect.faces import HogFaceDetector, YuNetFaceDetector, box_iou, yunet_features

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def pairs() -> tuple[np.ndarray, np.ndarray]:
    """(features, targets) over the faces both detectors find, matched by overlap."""
    paths = [SHARED / "pointing04" / p for p in pd.read_csv(SHARED / "pointing04" / "labels.csv").path]
    paths += sorted(p for p in (SHARED / "face_samples").rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    hog, yunet = HogFaceDetector(threshold=0.0), YuNetFaceDetector(min_face_px=20)
    features, targets = [], []
    for path in paths:
        image = cv2.imread(str(path))
        if image is None:
            continue
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        found = yunet.raw(gray)
        for det in hog(gray):
            for raw in found:
                box = np.r_[raw[:2], raw[:2] + raw[2:4]]
                if box_iou(box, det.box) > 0.3:
                    features.append(yunet_features(raw))
                    width, centre = raw[2], raw[:2] + raw[2:4] / 2
                    side = np.mean(det.box[2:] - det.box[:2])
                    targets.append(np.r_[((det.box[:2] + det.box[2:]) / 2 - centre) / width, np.log(side / width)])
    return np.asarray(features), np.asarray(targets)


def main() -> None:
    features, targets = pairs()
    halves = np.array_split(np.random.default_rng(0).permutation(len(features)), 2)
    errors = []
    for fit, test in (halves, halves[::-1]):
        coef, *_ = np.linalg.lstsq(features[fit], targets[fit], rcond=None)
        errors.append(features[test] @ coef - targets[test])
    rmse = np.sqrt(np.mean(np.vstack(errors) ** 2, axis=0))
    coef, *_ = np.linalg.lstsq(features, targets, rcond=None)
    print(f"{len(features)} faces found by both; held-out RMSE of the map: centre x {rmse[0]:.3f}, y {rmse[1]:.3f} "
          f"(box widths), log side {rmse[2]:.3f}")
    print("YUNET_TO_HOG = np.array([")
    for row in coef:
        print("    [" + ", ".join(f"{v:.4f}" for v in row) + "],")
    print("])")


if __name__ == "__main__":
    main()
