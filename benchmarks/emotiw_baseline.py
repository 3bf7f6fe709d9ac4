"""Relative to the person's own baseline, or as measured? EmotiW "Engagement in the Wild" (146 videos, one person
each, 57 subjects; 15 overlapping segments of OpenFace statistics; intensity 0-1): recording-level ridge and XGBoost
on per-video median, sd and slope of the segment features, subject-grouped 5-fold CV (``--repeats`` splits), mean
squared error with its subject-bootstrap 95% interval (first split).

Rows (geoengage.windows.relative_to_baseline, which reads each video's features only, never labels):
- as measured (the features of benchmarks/emotiw_engagement.py, invariant set);
- relative to the first 3 segments (about the first 70 s of a 5-minute video);
- relative to the running median (causal);
- as measured plus relative to the first 3 segments (both, side by side).

    python benchmarks/emotiw_baseline.py [--data ../shared/data] [--repeats 5] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from emotiw_engagement import SETUP_FEATURE

from geoengage.modeling.cv import cross_validate, make_folds
from geoengage.modeling.recordings import recording_table
from geoengage.report.metrics import summarize
from geoengage.window_tables import read_window_table
from geoengage.windows import relative_to_baseline

FIRST = 3  # segments in the first-minutes baseline


def variants(windows: pd.DataFrame, features: list[str]) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Name -> (windows, feature columns) of each row."""
    first = relative_to_baseline(windows, features=features, method="first", baseline_windows=FIRST)
    running = relative_to_baseline(windows, features=features, method="running")
    renamed = {f: f.replace("__value", "_rel__value") for f in features}
    both = pd.concat([windows, first[features].rename(columns=renamed)], axis=1)
    return {"as measured": (windows, features), f"relative to the first {FIRST} segments": (first, features),
            "relative to the running median": (running, features),
            f"as measured + relative to the first {FIRST}": (both, features + list(renamed.values()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    path = args.data / "emotiw_engagement" / "segments_15.parquet"
    if not path.is_file():
        print(f"skipped: {path} is not here (the EmotiW engagement segments live in ../shared/data)")
        sys.exit(0)
    warnings.simplefilter("ignore")
    windows = read_window_table(path, recording="video_id", order="segment_idx", subject="subject_id",
                                target="engagement", drop=["start_frac", "end_frac", "match_confidence"]).windows
    features = [c for c in windows.columns if c.endswith("__value") and not SETUP_FEATURE.match(c)]
    report: dict[str, dict] = {}
    print(f"{windows.video_id.nunique()} videos, {windows.subject_id.nunique()} subjects, {len(features)} features; "
          f"MSE mean over {args.repeats} subject-grouped 5-fold splits [95% CI, split 0]")
    for name, (table, columns) in variants(windows, features).items():
        recordings = recording_table(table, columns, target="engagement", groups="subject_id")
        inputs = [c for c in recordings.columns if "__rec_" in c]
        for estimator in ("ridge", "xgboost_regressor"):
            mse, first = [], None
            for repeat in range(args.repeats):
                folds = make_folds(recordings, target="engagement", groups="subject_id", n_splits=5,
                                   random_state=repeat)
                result = cross_validate(recordings, target="engagement", groups="subject_id", estimator=estimator,
                                        features=inputs, folds=folds, random_state=repeat)
                summary = summarize(result, n_boot=args.n_boot if repeat == 0 else 10, seed=repeat)
                mse.append(summary["metrics"]["mse"])
                first = first or summary["metrics"]
            low, high = first["ci95"]["mse"]
            report[f"{name}: {estimator}"] = {"mse_mean": float(np.mean(mse)), "mse_splits": mse, "ci95": [low, high]}
            print(f"  {name:45s} {estimator:18s} MSE {np.mean(mse):.4f} [{low:.4f}, {high:.4f}]")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
