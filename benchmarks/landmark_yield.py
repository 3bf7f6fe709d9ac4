"""Landmark yield on ../shared/data/engagement_wacv (3,724 face crops, 18 students) and face matching
on ../shared/data/face_samples. Skips cleanly when ../shared/data is absent.

Prints:
- the share of images with 68 landmarks with ``crop_mode="fallback"`` (detector, else the calibrated crop box), with
  the default detector (YuNet) and with dlib's HOG detector (the former default, at dlib's threshold 0); HOG alone at
  its default threshold (0.3) and at 0;
- landmark accuracy by detector: on the images with OpenFace 2.x output (1,123 of the same crops, its own 68-point
  fit: an independent reference, not ground truth) where both detectors find the face, the NME (mean point distance
  / OpenFace's inter-ocular distance) of dlib's 68 landmarks fitted in each detector's box;
- the crop box measured again (median detector box as fractions of the image) beside
  ``geoengage.detect.faces.CROP_BOX_FRACTIONS``;
- on images where the detector finds the face, how far crop-box landmarks lie from
  detector-box landmarks (mean point error / inter-ocular distance: NME);
- enrolment from knn_train/ and recognition of knn_test/ (expected names from the file names).

    python benchmarks/landmark_yield.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from geoengage.config import ExtractConfig
from geoengage.detect.faces import CROP_BOX_FRACTIONS, HogFaceDetector, YuNetFaceDetector, crop_box
from geoengage.detect.identity import enroll_people, save_encodings
from geoengage.detect.landmarks import DlibLandmarker
from geoengage.extract import extract_batch
from geoengage.media import MediaItem, read_image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def engagement_yield() -> None:
    root = SHARED / "engagement_wacv"
    labels = pd.read_csv(root / "labels.csv")
    items = [MediaItem(str(root / p), p, {"subject_id": s}) for p, s in zip(labels.path, labels.subject_id)]
    print(f"engagement_wacv: {len(items)} images, {labels.subject_id.nunique()} subjects")
    for name, config in (("YuNet (default)", ExtractConfig(crop_mode="fallback")),
                         ("HOG at 0 (former default)", ExtractConfig(detector="hog", min_face_px=80, crop_mode="fallback",
                                                                     detect_threshold=0.0))):
        start = time.perf_counter()
        result = extract_batch(items, config=config)
        seconds = time.perf_counter() - start
        frames = result.frames
        by_source = frames.face_source.value_counts(normalize=True)
        print(f"  {name}, crop_mode=fallback: landmarks for {frames.face_found.mean():.2%} of images "
              f"(detector {by_source.get('detector', 0):.2%}, crop box {by_source.get('crop', 0):.2%}); "
              f"{len(result.failures)} unreadable; {len(items) / seconds:.0f} images/s")
        per_subject = frames.groupby("subject_id").face_source.apply(lambda s: (s == "detector").mean())
        print(f"    detector share per subject: min {per_subject.min():.1%} ({per_subject.idxmin()}), "
              f"median {per_subject.median():.1%}")

    strict, loose, nme, boxes = 0, 0, [], []
    detector0, detector3, landmarker = HogFaceDetector(threshold=0.0), HogFaceDetector(threshold=0.3), DlibLandmarker()
    for item in items:
        gray = cv2.cvtColor(read_image(item.path), cv2.COLOR_BGR2GRAY)
        height, width = gray.shape
        strict += bool(detector3(gray))
        found = detector0(gray)
        if not found:
            continue
        loose += 1
        box = found[0].box
        boxes.append([box[0] / width, box[1] / height, box[2] / width, box[3] / height])
        reference, from_crop = landmarker(gray, box), landmarker(gray, crop_box(height, width))
        inter_ocular = np.linalg.norm(reference[36:42].mean(axis=0) - reference[42:48].mean(axis=0))
        nme.append(np.linalg.norm(reference - from_crop, axis=1).mean() / inter_ocular)
    print(f"  detector alone: {strict / len(items):.2%} at threshold 0.3, {loose / len(items):.2%} at 0")
    print(f"  crop box measured {np.round(np.median(boxes, axis=0), 3).tolist()} "
          f"(shipped {list(CROP_BOX_FRACTIONS)})")
    nme_arr = np.array(nme)
    print(f"  crop-box vs detector-box landmarks on {len(nme)} images: NME median {np.median(nme_arr):.2%}, "
          f"p90 {np.percentile(nme_arr, 90):.2%}, under 10% for {np.mean(nme_arr < 0.1):.1%}")


def detector_nme() -> None:
    """NME against OpenFace's 68 landmarks of dlib's fit in each detector's box, on the crops both detectors find."""
    root = SHARED / "engagement_wacv"
    labels = pd.read_csv(root / "labels.csv")
    openface = pd.concat([pd.read_csv(root / f"openface_processedData{i}.csv") for i in (0, 1)])
    openface = openface[openface.face == 0].drop_duplicates("ImageID")
    rows = labels.merge(openface, left_on="source_image_id", right_on="ImageID")
    hog, yunet, landmarker = HogFaceDetector(threshold=0.0), YuNetFaceDetector(), DlibLandmarker()
    errors: dict[str, list[float]] = {"HOG box": [], "YuNet box": []}
    only = {"HOG": 0, "YuNet": 0}
    x_columns, y_columns = [f"x_{i}" for i in range(68)], [f"y_{i}" for i in range(68)]
    for row, xs, ys in zip(rows.itertuples(), rows[x_columns].to_numpy(float), rows[y_columns].to_numpy(float)):
        image = read_image(root / row.path)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        found_hog, found_yunet = hog(gray), yunet(image)
        only["HOG"] += bool(found_hog) and not found_yunet
        only["YuNet"] += bool(found_yunet) and not found_hog
        if not (found_hog and found_yunet):
            continue
        reference = np.column_stack([xs, ys])
        inter_ocular = np.linalg.norm(reference[36:42].mean(axis=0) - reference[42:48].mean(axis=0))
        for name, found in (("HOG box", found_hog), ("YuNet box", found_yunet)):
            errors[name].append(np.linalg.norm(landmarker(gray, found[0].box) - reference, axis=1).mean() / inter_ocular)
    n = len(errors["HOG box"])
    print(f"  landmarks vs OpenFace's on {n} of {len(rows)} crops both detectors find (only HOG: {only['HOG']}, "
          f"only YuNet: {only['YuNet']}):")
    for name, values in errors.items():
        values_arr = np.array(values)
        print(f"    dlib's fit in the {name}: NME mean {values_arr.mean():.2%}, median {np.median(values_arr):.2%}, "
              f"p90 {np.percentile(values_arr, 90):.2%}")
    diff = np.array(errors["YuNet box"]) - np.array(errors["HOG box"])
    print(f"    YuNet minus HOG, per crop: median {np.median(diff):+.2%}, YuNet's better on {np.mean(diff < 0):.1%}")


def identity() -> None:
    samples = SHARED / "face_samples"
    people, skipped = enroll_people(samples / "knn_train")
    with tempfile.TemporaryDirectory() as tmp:
        enc = Path(tmp) / "enc.json"
        save_encodings(people, enc)
        config = ExtractConfig(identify=True, encodings_path=str(enc), face_policy="all", min_face_px=40)
        frames = extract_batch(samples / "knn_test", config=config).frames
    print(f"face_samples: enrolled {len(people.names)} people from {len(people.encodings)} photos "
          f"({len(skipped)} skipped)")
    for video_id, group in frames.groupby("video_id"):
        names = [f"{p} ({d:.2f})" if isinstance(p, str) else f"unknown ({d:.2f})"
                 for p, d in zip(group.person, group.identity_distance)]
        print(f"  {video_id}: {', '.join(names)}")


def main() -> None:
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent")
        sys.exit(0)
    engagement_yield()
    detector_nme()
    identity()


if __name__ == "__main__":
    main()
