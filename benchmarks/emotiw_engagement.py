"""EmotiW "Engagement in the Wild" (146 videos of 57 subjects, 15 overlapping segments of 60 OpenFace statistics
each; engagement intensity 0, 0.33, 0.66, 1): subject-grouped 5-fold CV of the sequence model against the
recording-level baselines, all on the same folds, mean squared error with subject-bootstrap 95% intervals.

Rows: predicting the training mean; ridge (penalty chosen by leave-one-out inside each training fold) and XGBoost on
per-video median, sd and slope of every segment feature; the GRU over the ordered segments
(:class:`geoengage.modeling.sequence.SequenceModel`). The table enters through ``import table`` exactly as a user's
would (:func:`geoengage.window_tables.read_window_table`). Folds: ``--repeats`` different subject-grouped 5-fold
splits (seeds 0, 1, ...); each figure is the mean over repeats, the interval is from the first split.

Published (other protocols; read ../shared/data/emotiw_engagement/SOURCE.md): mean about 0.095 and challenge baseline
about 0.10 on the official validation split; 2018 winner 0.0717 (validation, LSTM over segment features), 2019
winner 0.0597 (test).

    python benchmarks/emotiw_engagement.py [--data ../shared/data] [--segments 15] [--repeats 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from geoengage.modeling.cv import make_folds
from geoengage.modeling.recording_cv import cross_validate_recordings
from geoengage.modeling.recordings import recording_table
from geoengage.modeling.sequence import SequenceModel
from geoengage.report.metrics import summarize
from geoengage.window_tables import read_window_table

#: Positions of the eyes and head in the image or in camera coordinates: where the camera and the person sit, not
#: what the person does (their standard deviations, movement, stay).
SETUP_FEATURE = re.compile(r"^(eye[01]_[xy]_px_mean|eye3d_mm_mean_\d|head_t[xyz]_mm_mean)__value$")

#: The sequence model's settings for this benchmark (models/configs/engagement_sequence_v01.toml says the same).
SEQUENCE = {"cell": "gru", "hidden": 32, "dropout": 0.4, "lr": 1e-3, "max_epochs": 100, "n_seeds": 5,
            "max_features": 10, "inner_splits": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--segments", type=int, choices=[15, 21], default=15)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--features", choices=["all", "invariant"], default="invariant",
                        help="invariant: leave out the mean eye and head positions (pixels, mm: where the camera is)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a sequence-model setting (e.g. --set hidden=16)")
    args = parser.parse_args()
    path = args.data / "emotiw_engagement" / f"segments_{args.segments}.parquet"
    if not path.is_file():
        print(f"skipped: {path} is not here (the EmotiW engagement segments live in ../shared/data)")
        sys.exit(0)
    settings = dict(SEQUENCE)
    for item in args.set:
        key, value = item.split("=", 1)
        settings[key] = json.loads(value)
    imported = read_window_table(path, recording="video_id", order="segment_idx", subject="subject_id",
                                 target="engagement", drop=["start_frac", "end_frac", "match_confidence"])
    windows = imported.windows
    features = [c for c in windows.columns if c.endswith("__value")]
    if args.features == "invariant":
        features = [c for c in features if not SETUP_FEATURE.match(c)]
    print(f"{imported.summary['recordings']} videos, {imported.summary['subjects']} subjects, "
          f"{len(features)} of {imported.summary['features']} features per segment ({args.features}); "
          f"sequence model {settings}")
    recordings = recording_table(windows, ["gaze_angle_x_mean__value"], target="engagement", groups="subject_id")
    report: dict[str, object] = {"settings": settings, "segments": args.segments, "features": args.features,
                                 "n_features": len(features), "repeats": {}}
    mse: dict[str, list[float]] = {}
    for repeat in range(args.repeats):
        folds = make_folds(recordings, target="engagement", groups="subject_id", n_splits=5, random_state=repeat)
        start = time.perf_counter()
        results = cross_validate_recordings(windows, target="engagement", folds=folds, seed=repeat, features=features,
                                            model=SequenceModel("regression", random_state=repeat, **settings))
        seconds = time.perf_counter() - start
        summaries = {name: summarize(result, n_boot=args.n_boot if repeat == 0 else 10, seed=repeat)
                     for name, result in results.items()}
        report["repeats"][str(repeat)] = {"seconds": round(seconds, 1), "results": summaries}
        line = []
        for name, summary in summaries.items():
            m = summary["metrics"]
            mse.setdefault(name, []).append(m["mse"])
            line.append(f"{name} {m['mse']:.4f}")
        print(f"split {repeat} ({seconds:.0f} s): " + ", ".join(line), flush=True)
    first = report["repeats"]["0"]["results"]
    print("\nsubject-grouped 5-fold CV, MSE (mean over splits; 95% CI from split 0), Pearson r, rounded accuracy:")
    for name, values in mse.items():
        m = first[name]["metrics"]
        low, high = m["ci95"]["mse"]
        print(f"  {name:8s} MSE {np.mean(values):.4f} (splits {', '.join(f'{v:.4f}' for v in values)}) "
              f"[{low:.4f}, {high:.4f}]  r {m['pearson']:.3f}  acc {m['accuracy_rounded']:.3f}")
    report["mean_mse"] = {name: float(np.mean(values)) for name, values in mse.items()}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
