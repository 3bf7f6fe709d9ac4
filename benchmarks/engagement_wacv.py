"""Subject-grouped engagement results on engagement_wacv for the majority class, the old default features (with
set-up features), the new default and the default plus appearance, each with its set-up audit; and the same
XGBoost on OpenFace's own features of the same images (same folds).

1. geoengage extracts every image (crop mode, the default detector, a crop box fitted on the data set's crops;
   benchmarks/engagement_data.py); each image is one window.
2. Binary (not engaged "low" vs engaged "high"), 3-class (0/1/2) and ordinal (0/1/2 regressed, then calibrated)
   models, judged on engaged vs not (auc_engaged) and on their own classes.
3. XGBoost with probabilities calibrated and the decision rule fitted in inner subject-grouped folds, 5
   subject-grouped folds (StratifiedGroupKFold, the same for every row), 95% intervals from bootstrapping subjects.
   "new default, nested tuning": XGBoost's depth and number of trees also chosen in those inner folds.
   Then the binary model on the new default and the audit-clean set over ``--repeats`` subject splits (seeds 0, 1,
   ...: other stratified subject splits), for how much a figure moves with the split alone.
4. Set-up audit per feature set: how well the features identify the subject (geoengage.modeling.audit).
5. OpenFace comparison on the images OpenFace covers (classes 0 and 1 only, per SOURCE.md).
The fine-tuned CNN row (the expression CNN fine-tuned on the crops, same folds) is benchmarks/engagement_finetuned.py.

    python benchmarks/engagement_wacv.py [--data ../shared/data] [--work benchmarks/out] [--out results.json]
                                         [--repeats 5]
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from engagement_data import compared_rows, feature_sets, parse_args, summary_line, wacv, within_subject

from geoengage.importers import read_openface_csv
from geoengage.modeling.audit import setup_audit
from geoengage.modeling.cv import cross_validate, make_folds
from geoengage.report.metrics import classification_metrics, summarize
from geoengage.windows import make_windows

BINARY = {"classes": ["low", "high"], "positive": ["high"]}


def main() -> None:
    args = parse_args(__doc__, ("engagement_wacv",), (("--repeats", int, 5),))
    ours = wacv(args.data, args.work)
    report: dict[str, object] = {"n_images": len(ours)}
    three = {"positive": [1, 2]}
    scored = ours[ours.window_ok].reset_index(drop=True)  # the windows cross_validate scores
    splits = [make_folds(scored, target="engagement", n_splits=5, random_state=seed)
              for seed in range(max(args.repeats, 1))]
    folds = splits[0]
    print(f"{int(ours.window_ok.sum())} windows, {ours.subject_id.nunique()} subjects, the same 5 subject-grouped folds "
          "for every row; auc_engaged = engaged (1-2) vs not (0)")
    for target, estimator, options, label in (("level", "xgboost", BINARY, "binary xgboost (low/high)"),
                                              ("engagement", "xgboost", three, "3-class xgboost (0/1/2)"),
                                              ("engagement", "xgboost_ordinal", three, "ordinal xgboost (0/1/2)")):
        print(f"{label}:")
        results = {}
        for name, (columns, extra, z) in compared_rows().items():
            table = within_subject(ours, columns) if z else ours  # z: per-subject normalisation
            result = cross_validate(table, target=target, estimator="majority" if columns is None else estimator,
                                    features=columns or feature_sets()["new default"], folds=folds, **options, **extra)
            results[name] = summarize(result, n_boot=args.n_boot)
            print(summary_line(name, results[name], ("auc_engaged", "auc_roc", "balanced_accuracy", "minority_recall")))
        report[label] = results
    print(f"binary xgboost over {args.repeats} subject splits (seeds 0-{args.repeats - 1}; seed 0 is the split above):")
    repeated = {}
    for name in ("new default", "audit-clean (+ gaze CNN)"):
        aucs = [classification_metrics(cross_validate(scored, target="level", features=feature_sets()[name],
                                                      folds=split, **BINARY))["auc_engaged"]
                for split in splits[:args.repeats]]
        repeated[name] = aucs
        print(f"  {name:44s} auc_engaged mean {np.mean(aucs):.3f} (splits {', '.join(f'{a:.3f}' for a in aucs)})")
    report["binary_repeated_splits"] = repeated
    print("set-up audit (identity score of the whole set: 0 chance, 1 names every subject; flagged: eta2 >= 0.5):")
    audits = {}
    for name, features in feature_sets().items():
        audit = setup_audit(ours[ours.window_ok], features=features)
        audits[name] = audit.to_dict()
        print(f"  {name:44s} whole set {audit.whole_set_score:.2f}, flagged {audit.flagged or 'none'}")
    report["setup_audit"] = audits

    folder = args.data / "engagement_wacv"
    openface = pd.concat([read_openface_csv(folder / f"openface_processedData{i}.csv") for i in (0, 1)])
    openface = openface.sort_values("face_found", ascending=False).drop_duplicates("video_id")
    columns = [c for c in openface.columns if c.startswith("au") or c in (
        "yaw_deg", "pitch_deg", "roll_deg", "head_x_mm", "head_y_mm", "head_z_mm", "gaze_yaw_deg", "gaze_pitch_deg")]
    of = make_windows(openface.assign(subject_id="", engagement=-1), window_s=1, step_s=1,
                      feature_set=_single_frame_set(columns))
    of = of.rename(columns={c: f"openface_{c}" for c in of.columns if c.endswith("__mean")})
    of_features = [c for c in of.columns if c.startswith("openface_")]
    subset = ours.merge(of[["video_id", *of_features]].rename(columns={"video_id": "image_id"}), on="image_id")
    subset = subset[(subset["engagement"] <= 1) & subset["window_ok"]].reset_index(drop=True)
    folds = make_folds(subset, target="level", n_splits=5, random_state=0)
    print(f"OpenFace subset (classes 0 and 1, {len(subset)} images), same folds for every feature set:")
    comparison = {"majority": summarize(cross_validate(subset, target="level", estimator="majority",
                                                       features=of_features, folds=folds, **BINARY)),
                  "openface": summarize(cross_validate(subset, target="level", features=of_features, folds=folds,
                                                       **BINARY))}
    for name, features in feature_sets().items():
        comparison[name] = summarize(cross_validate(subset, target="level", features=features, folds=folds, **BINARY))
    for name, summary in comparison.items():
        print(summary_line(name if name == "majority" else f"xgboost on {name}", summary))
    report["openface_subset"] = comparison
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=float))


def _single_frame_set(columns: list[str]):
    from geoengage.windows import FeatureName, FeatureSet

    return FeatureSet("openface", tuple(FeatureName(c, "mean") for c in columns))


if __name__ == "__main__":
    main()
