"""Subject-grouped engagement results on ../shared/data/engagement_wacv, beside the majority baseline and
beside the same XGBoost trained on OpenFace's own features of the same images (same folds).

1. geoengage extracts every image (crop_mode="fallback", threshold 0); each image is one window.
2. 3-class (not / nominally / very engaged) and binary (not engaged vs engaged) targets.
3. XGBoost, logistic regression and the majority class, 5 subject-grouped folds
   (StratifiedGroupKFold), 95% intervals from 1,000 bootstrap resamples of subjects.
4. OpenFace comparison on the images OpenFace covers (classes 0 and 1 only, per SOURCE.md):
   XGBoost on OpenFace's pose, gaze and AU outputs vs XGBoost on geoengage's features, same folds.

    python benchmarks/engagement_wacv.py [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from geoengage.config import ExtractConfig
from geoengage.dataset import build_dataset
from geoengage.exceptions import GeoEngageWarning
from geoengage.importers import read_openface_csv
from geoengage.media import MediaItem
from geoengage.modeling.cv import cross_validate, feature_columns, make_folds
from geoengage.report.metrics import summarize
from geoengage.windows import make_windows

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "engagement_wacv"


def _line(name: str, summary: dict) -> str:
    m = summary["metrics"]
    ci = m["ci95"]
    parts = [f"{k} {m[k]:.3f} [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" for k in ("balanced_accuracy", "f1_macro", "auc_roc")]
    return f"  {name:28s} " + "  ".join(parts) + f"  (leak-free: {summary['audit']['leak_free']})"


def run(estimators: list[str], windows: pd.DataFrame, target: str, folds: np.ndarray, features: list[str],
        label: str) -> dict[str, dict]:
    results = {}
    print(f"{label}: {len(windows)} windows, {windows.subject_id.nunique()} subjects, "
          f"classes {windows[target].value_counts().sort_index().to_dict()}")
    for estimator in estimators:
        result = cross_validate(windows, target=target, estimator=estimator, features=features, folds=folds)
        results[estimator] = summarize(result, n_boot=1000)
        print(_line(estimator, results[estimator]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        sys.exit(0)
    labels = pd.read_csv(DATA / "labels.csv")
    items = [MediaItem(str(DATA / p), p, {"subject_id": f"s{s:02d}", "engagement": int(e), "image_id": i})
             for p, s, e, i in zip(labels.path, labels.subject_id, labels.engagement, labels.source_image_id)]
    warnings.simplefilter("ignore", GeoEngageWarning)
    with tempfile.TemporaryDirectory() as out:
        build_dataset(items, out, extract=ExtractConfig(crop_mode="fallback", detect_threshold=0.0), n_jobs=2)
        ours = pd.read_parquet(Path(out) / "windows.parquet")
    ours["engaged"] = (ours["engagement"] > 0).astype(int)
    features = feature_columns(ours)
    report: dict[str, object] = {"n_images": len(ours), "features": len(features)}
    for target, label in (("engagement", "3-class"), ("engaged", "binary (not engaged vs engaged)")):
        folds = make_folds(ours, target=target, n_splits=5, random_state=0)
        report[target] = run(["xgboost", "logistic", "majority"], ours, target, folds, features, label)

    openface = pd.concat([read_openface_csv(DATA / f"openface_processedData{i}.csv") for i in (0, 1)])
    openface = openface.sort_values("face_found", ascending=False).drop_duplicates("video_id")
    columns = [c for c in openface.columns if c.startswith("au") or c in (
        "yaw_deg", "pitch_deg", "roll_deg", "head_x_mm", "head_y_mm", "head_z_mm", "gaze_yaw_deg", "gaze_pitch_deg")]
    of = make_windows(openface.assign(subject_id="", engagement=-1), window_s=1, step_s=1,
                      feature_set=_single_frame_set(columns))
    of = of.rename(columns={c: f"openface_{c}" for c in of.columns if c.endswith("__mean")})
    of_features = [c for c in of.columns if c.startswith("openface_")]
    subset = ours.merge(of[["video_id", *of_features]].rename(columns={"video_id": "image_id"}), on="image_id")
    subset = subset[subset["engagement"] <= 1].reset_index(drop=True)
    folds = make_folds(subset, target="engaged", n_splits=5, random_state=0)
    print(f"OpenFace subset (classes 0 and 1, {len(subset)} images), same folds for both feature sets:")
    report["openface_subset"] = {
        "geoengage": summarize(cross_validate(subset, target="engaged", features=features, folds=folds)),
        "openface": summarize(cross_validate(subset, target="engaged", features=of_features, folds=folds)),
        "majority": summarize(cross_validate(subset, target="engaged", estimator="majority", features=features,
                                             folds=folds)),
    }
    for name, summary in report["openface_subset"].items():
        print(_line(f"xgboost on {name}" if name != "majority" else "majority", summary))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=float))


def _single_frame_set(columns: list[str]):
    from geoengage.windows import FeatureName, FeatureSet

    return FeatureSet("openface", tuple(FeatureName(c, "mean") for c in columns))


if __name__ == "__main__":
    main()
