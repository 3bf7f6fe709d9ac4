"""DAiSEE engagement (one face crop per 10 s clip): subject-grouped CV on train, train -> validation, and the two
cross-data-set directions with engagement_wacv, for the majority class, the old default features (with set-up
features), the new default and the default plus appearance, each with subject-bootstrap 95% intervals.

Two models per feature set, both judged on engaged ("high", levels 2-3) against not ("low", 0-1), which is 4.6%
of train: XGBoost on the binary label, and XGBoost on the 4 ordered levels (``xgboost_ordinal``: the position
regressed, then calibrated into level probabilities; engaged = P(2) + P(3)). Both with probabilities calibrated
and the decision rule fitted in inner subject-grouped folds (geoengage.modeling.train). ``auc_engaged`` is the
engaged-vs-not AUC for both; balanced accuracy and minority recall are over the model's own classes (2 or 4).
Cross-data-set label maps: DAiSEE 0-1 -> WACV 0, 2 -> 1, 3 -> 2; WACV 0 -> DAiSEE 1, 1 -> 2, 2 -> 3 (ordinal);
low/high for the binary model (WACV: 0 low, 1-2 high). The fine-tuned CNN's rows (the expression CNN fine-tuned on
the crops) are benchmarks/engagement_finetuned.py. "new default + gaze CNN" adds the gaze CNN's aggregates;
"new default, nested tuning" is the new default with XGBoost's depth and number of trees chosen inside the training
data's own subject-grouped folds.

    python benchmarks/engagement_daisee.py [--data ../shared/data] [--work benchmarks/out] [--out results.json]
"""

from __future__ import annotations

import json

from engagement_data import compared_rows, daisee, feature_sets, parse_args, summary_line, wacv, within_subject

from geoengage.evaluation import transfer
from geoengage.modeling.cv import cross_validate
from geoengage.report.metrics import summarize

METRICS = ("auc_engaged", "balanced_accuracy", "minority_recall")
MODELS = {
    "binary xgboost": {"target": "level", "estimator": "xgboost", "classes": ["low", "high"], "positive": ["high"]},
    "ordinal xgboost (levels 0-3)": {"target": "engagement", "estimator": "xgboost_ordinal", "positive": [2, 3]},
}


def main() -> None:
    args = parse_args(__doc__, ("daisee", "engagement_wacv"))
    train, validation = daisee(args.data, args.work)
    other = wacv(args.data, args.work)
    print(f"DAiSEE train {len(train)} windows / {train.subject_id.nunique()} subjects "
          f"(low {int((train.level == 'low').sum())}), validation {len(validation)} / "
          f"{validation.subject_id.nunique()} (low {int((validation.level == 'low').sum())}); "
          f"WACV {len(other)} / {other.subject_id.nunique()}")
    report: dict[str, dict] = {}
    majority = {"target": "level", "estimator": "majority", "classes": ["low", "high"], "positive": ["high"]}
    for label, (features, extra, z) in compared_rows().items():
        columns, fit_on, test_on = features or feature_sets()["new default"], train, validation
        if z:  # per-subject normalisation: each subject's windows against its own median and MAD
            fit_on, test_on = within_subject(train, columns), within_subject(validation, columns)
        for model, common in ({"majority": majority} if features is None else MODELS).items():
            options = {**common, **extra}
            cv = summarize(cross_validate(fit_on, features=columns, **options), n_boot=args.n_boot)
            held = summarize(transfer(fit_on, test_on, features=columns, **options), n_boot=args.n_boot)
            report[f"{label}: {model}"] = {"cv_train": cv, "train_to_validation": held}
            print(f"{label}, {model}:")
            print(summary_line("subject-grouped CV on train (5 folds)", cv, METRICS))
            print(summary_line("train -> validation", held, METRICS))
    maps = {"binary xgboost": ({}, {}),
            "ordinal xgboost (levels 0-3)": ({0: 0, 1: 0, 2: 1, 3: 2}, {0: 1, 1: 2, 2: 3})}
    for label, (features, extra, _) in compared_rows(majority=False, within=False).items():
        for model, common in MODELS.items():
            options = {**common, **extra}
            to_daisee, to_wacv = maps[model]
            wacv_options = ({**options, "positive": [1, 2]} if model.startswith("ordinal") else options)
            there = summarize(transfer(other, validation, features=features, label_map=to_daisee or None,
                                       **wacv_options), n_boot=args.n_boot)
            back = summarize(transfer(train, other, features=features, label_map=to_wacv or None, **options),
                             n_boot=args.n_boot)
            report[f"cross {label}: {model}"] = {"wacv_to_daisee_validation": there, "daisee_train_to_wacv": back}
            print(f"cross-data-set, {label}, {model}:")
            print(summary_line("WACV (all) -> DAiSEE validation", there, METRICS))
            print(summary_line("DAiSEE train -> WACV (all)", back, METRICS))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
