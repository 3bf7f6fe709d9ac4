"""The fine-tuned CNN row of the engagement benchmarks: the expression CNN fine-tuned on face crops, engaged vs not.

:class:`geoengage.modeling.face_cnn.FaceCropClassifier` (the shipped expression CNN with a new 2-way output layer,
the whole network trained for a few epochs) on the faces of the same tables the feature-based benchmarks use,
aligned from the landmarks their extraction stored:

1. engagement_wacv: the same 5 subject-grouped folds as ``benchmarks/engagement_wacv.py`` (binary "low" = 0 vs
   "high" = 1-2), fitted inside each training fold;
2. DAiSEE: fitted on train, scored on validation (low 0-1 vs high 2-3), as ``benchmarks/engagement_daisee.py``;
3. cross-data-set: WACV (all) -> DAiSEE validation and DAiSEE train -> WACV (all).

Subject-bootstrap 95% intervals, as in the other benchmarks. Takes the same options (``--data``, ``--work``,
``--out``, ``--n-boot``) plus ``--epochs`` and ``--threads``; skips when a data set is absent.

    python benchmarks/engagement_finetuned.py [--data ../shared/data] [--epochs 6] [--threads 2]
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from engagement_data import aligned_faces, daisee, parse_args, summary_line, wacv

from geoengage.modeling.cv import CVResult, make_folds, prediction_table
from geoengage.modeling.face_cnn import FaceCropClassifier
from geoengage.report.metrics import summarize

CLASSES, POSITIVE = ("low", "high"), ("high",)
METRICS = ("auc_engaged", "balanced_accuracy", "minority_recall")


def _fit_predict(faces: np.ndarray, labels: np.ndarray, test: np.ndarray, *, epochs: int, threads: int) -> np.ndarray:
    model = FaceCropClassifier(epochs=epochs, threads=threads).fit(faces, labels)
    return model.predict_proba(test)[:, [list(model.classes_).index(c) for c in CLASSES]]


def _result(windows: pd.DataFrame, folds: np.ndarray, proba: np.ndarray) -> CVResult:
    predicted = np.asarray(CLASSES, dtype=object)[proba.argmax(axis=1)]
    table = prediction_table(windows, folds, "subject_id", windows["level"].to_numpy(dtype=object), predicted, proba,
                             CLASSES, POSITIVE)
    return CVResult(table, classes=CLASSES, features=("aligned face pixels",), estimator="fine-tuned CNN",
                    split="subject", positive=POSITIVE)


def main() -> None:
    args = parse_args(__doc__, ("engagement_wacv", "daisee"), extra=(("--epochs", int, 6), ("--threads", int, 2)))
    report: dict[str, object] = {}
    started = time.perf_counter()
    ours = wacv(args.data, args.work)
    ours = ours[ours.window_ok].reset_index(drop=True)
    wacv_faces = aligned_faces(args.work / "wacv", list(ours["video_id"]))
    folds = make_folds(ours, target="engagement", n_splits=5, random_state=0)  # engagement_wacv.py's folds
    proba = np.zeros((len(ours), 2))
    labels = ours["level"].to_numpy(dtype=object)
    for k in range(5):
        proba[folds == k] = _fit_predict(wacv_faces[folds != k], labels[folds != k], wacv_faces[folds == k],
                                         epochs=args.epochs, threads=args.threads)
    report["wacv_cv"] = summarize(_result(ours, folds, proba), n_boot=args.n_boot)
    print(f"fine-tuned CNN ({args.epochs} epochs), engaged vs not; {time.perf_counter() - started:.0f} s so far")
    print(summary_line("WACV, 5 subject-grouped folds", report["wacv_cv"], METRICS))

    train, validation = daisee(args.data, args.work)
    train, validation = (t[t.window_ok].reset_index(drop=True) for t in (train, validation))
    train_faces = aligned_faces(args.work / "daisee", list(train["video_id"]))
    validation_faces = aligned_faces(args.work / "daisee", list(validation["video_id"]))
    held = _fit_predict(train_faces, train["level"].to_numpy(dtype=object), validation_faces, epochs=args.epochs,
                        threads=args.threads)
    report["daisee_train_to_validation"] = summarize(_result(validation, np.zeros(len(validation), int), held),
                                                     n_boot=args.n_boot)
    print(summary_line("DAiSEE train -> validation", report["daisee_train_to_validation"], METRICS))
    there = _fit_predict(wacv_faces, labels, validation_faces, epochs=args.epochs, threads=args.threads)
    report["wacv_to_daisee_validation"] = summarize(_result(validation, np.zeros(len(validation), int), there),
                                                    n_boot=args.n_boot)
    print(summary_line("WACV (all) -> DAiSEE validation", report["wacv_to_daisee_validation"], METRICS))
    back = _fit_predict(train_faces, train["level"].to_numpy(dtype=object), wacv_faces, epochs=args.epochs,
                        threads=args.threads)
    report["daisee_train_to_wacv"] = summarize(_result(ours, np.zeros(len(ours), int), back), n_boot=args.n_boot)
    print(summary_line("DAiSEE train -> WACV (all)", report["daisee_train_to_wacv"], METRICS))
    print(f"({time.perf_counter() - started:.0f} s in all)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    sys.exit(main())
