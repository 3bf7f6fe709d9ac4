"""Which engagement model transfers: every candidate trained on one data set and scored on the other
(leave-one-data-set-out), then the training data (one set, the other, both pooled) on subjects held back from all.

Data sets: engagement_wacv (18 subjects) and DAiSEE (train and validation together: 88 subjects), from the tables
benchmarks/engagement_data.py extracts (features version 3). One target coding for both (geoengage.modeling.selection):

- binary ``engaged``: WACV 0 -> 0, 1-2 -> 1; DAiSEE 0-1 -> 0, 2-3 -> 1;
- ordinal ``level`` (0 low, 1 high, 2 very high): WACV 0/1/2 as they are; DAiSEE 0-1 -> 0, 2 -> 1, 3 -> 2
  (the map the cross-data-set rows of engagement_daisee.py use); engaged = levels 1-2, so every candidate is judged
  on the same engaged-vs-not AUC.

Candidates: learner (logistic regression on ``engaged``, XGBoost on ``engaged``, ordinal XGBoost on ``level``) x
feature set (``default``, ``audit_clean``) x weights (none, each subject equal). Today's default (engagement_v08:
ordinal XGBoost, default features, no weights, trained on WACV) is the ordinal/default/none row. Inside the training
set each model fits its calibration and decision rule on subject-grouped inner folds. Criterion: the worst held-out
AUC; a candidate ties with the best when the paired subject-bootstrap 95% interval of their difference holds 0
(every candidate is scored on the same held-out subjects), and ties go to the simplest candidate.

Then, for the chosen candidate and today's default: each set's subjects in 5 grouped folds, scored by the model
trained on the set's other subjects ("same"), the other set ("other") or both ("pooled", with weights none / each
data set equal / each subject equal; intervals from 300 resamples). Then the chosen candidate's calibration on each
held-out set (ECE of P(engaged)), the share of windows outside the training range, and the AUC inside and outside it.

    python benchmarks/engagement_selection.py [--data ../shared/data] [--work benchmarks/out] [--out results.json]
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
from engagement_data import daisee, parse_args, wacv
from sklearn.metrics import roc_auc_score

from geoengage.modeling.audit import setup_audit
from geoengage.modeling.pooling import DATASET, WEIGHT_SCHEMES, pool_datasets
from geoengage.modeling.selection import (
    Candidate,
    choose,
    held_out_subjects,
    leave_one_dataset_out,
    paired_worst_case,
)
from geoengage.report.metrics import summarize
from geoengage.windows import load_feature_set

#: The documented target codings (see the module docstring).
BINARY_MAPS = {"wacv": {0: 0, 1: 1, 2: 1}, "daisee": {0: 0, 1: 0, 2: 1, 3: 1}}
ORDINAL_MAPS = {"wacv": {0: 0, 1: 1, 2: 2}, "daisee": {0: 0, 1: 0, 2: 1, 3: 2}}
LEARNERS = {"logistic": ("engaged", "logistic", {"classes": [0, 1], "positive": [1]}),
            "xgboost": ("engaged", "xgboost", {"classes": [0, 1], "positive": [1]}),
            "ordinal xgboost": ("level", "xgboost_ordinal", {"classes": [0, 1, 2], "positive": [1, 2]})}
TODAY = "ordinal xgboost / default / none"
#: Subject-bootstrap resamples for the training-data arms' intervals (fewer than the selection's: 10 arms).
ARM_BOOT = 300


def pooled_table(args) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    train, validation = daisee(args.data, args.work)
    tables = {"wacv": wacv(args.data, args.work), "daisee": pd.concat([train, validation], ignore_index=True)}
    pooled = pool_datasets(tables, target="engagement", label_maps=BINARY_MAPS, out_target="engaged")
    pooled["level"] = pool_datasets(tables, target="engagement", label_maps=ORDINAL_MAPS)["engagement"]
    return pooled


def candidates(pooled: pd.DataFrame) -> dict[str, Candidate]:
    out = {}
    for learner, (target, estimator, options) in LEARNERS.items():
        for feature_set in ("default", "audit_clean"):
            columns = tuple(c for c in load_feature_set(feature_set).columns if c in pooled.columns)
            for weights in ("none", "subject"):
                name = f"{learner} / {feature_set} / {weights}"
                out[name] = Candidate(name, target, estimator, columns, weights, options)
    return out


def _auc(predictions: pd.DataFrame, positive: tuple) -> float:
    engaged = np.isin(predictions["y_true"].to_numpy(), np.asarray(positive))
    return float(roc_auc_score(engaged, predictions["p_engaged"])) if 0 < engaged.sum() < len(engaged) else np.nan


def main() -> None:
    args = parse_args(__doc__, ("daisee", "engagement_wacv"))
    pooled = pooled_table(args)
    sets = list(pd.unique(pooled[DATASET]))
    print("pooled:", {s: (int((pooled[DATASET] == s).sum()), int(pooled.loc[pooled[DATASET] == s, "subject_id"]
                                                                   .nunique())) for s in sets}, "(windows, subjects)")
    report: dict[str, object] = {"codings": {"engaged": BINARY_MAPS, "level": ORDINAL_MAPS}}
    pool = candidates(pooled)
    rows, lodo = [], {}
    print("\nleave-one-data-set-out: engaged-vs-not AUC on the held-out set [subject-bootstrap 95% CI], ECE of "
          "P(engaged)")
    for name, candidate in pool.items():
        started = time.perf_counter()
        lodo[name] = leave_one_dataset_out(pooled, candidate)
        held = {s: summarize(r, n_boot=args.n_boot) for s, r in lodo[name].items()}
        worst = min(sets, key=lambda s: held[s]["metrics"]["auc_engaged"])
        row = {"name": name, "worst_set": worst, "worst_auc": held[worst]["metrics"]["auc_engaged"],
               "worst_ci": held[worst]["metrics"]["ci95"]["auc_engaged"],
               **{f"{s}_{k}": v for s in sets for k, v in (
                   ("auc", held[s]["metrics"]["auc_engaged"]), ("ci", held[s]["metrics"]["ci95"]["auc_engaged"]),
                   ("ece", held[s]["metrics"]["calibration"]["ece_engaged"]),
                   ("balanced_accuracy", held[s]["metrics"]["balanced_accuracy"]))}}
        rows.append(row)
        cells = "  ".join(f"{s} {row[f'{s}_auc']:.3f} [{row[f'{s}_ci'][0]:.3f}, {row[f'{s}_ci'][1]:.3f}] "
                          f"ECE {row[f'{s}_ece']:.3f}" for s in sets)
        print(f"  {name:40s} {cells}  worst {row['worst_auc']:.3f}  ({time.perf_counter() - started:.0f} s)")
    paired = paired_worst_case(lodo, n_boot=args.n_boot)
    print("\nworst held-out AUC, and its difference from the best candidate's (paired subject bootstrap, 95%):")
    for row in rows:
        row.update(paired[row["name"]])
        print(f"  {row['name']:40s} worst {row['worst_auc']:.3f} [{row['worst_ci'][0]:.3f}, {row['worst_ci'][1]:.3f}]"
              f" ({row['worst_set']})  difference {row['diff']:+.3f} [{row['diff_ci'][0]:+.3f}, {row['diff_ci'][1]:+.3f}]")
    report["leave_one_dataset_out"] = rows
    decision = choose(rows, pool)
    report["choice"] = decision
    print(f"\nchosen: {decision['chosen']} ({decision['rule']}); ties: {decision['ties']}")

    print("\nheld-out subjects (5 grouped folds per set): AUC by training data")
    arms = {}
    for name in dict.fromkeys([decision["chosen"], TODAY]):
        base = pool[name]
        for train_on, weights in (("same", base.weights), ("other", base.weights),
                                  *(("pooled", w) for w in WEIGHT_SCHEMES)):
            candidate = Candidate(name, base.target, base.estimator, base.features, weights, base.options)
            results = held_out_subjects(pooled, candidate, train_on=train_on)
            figures = {s: summarize(r, n_boot=min(args.n_boot, ARM_BOOT))["metrics"] for s, r in results.items()}
            key = f"{name} | trained on {train_on}" + (f", weights {weights}" if train_on == "pooled" else "")
            arms[key] = {s: {"auc": m["auc_engaged"], "ci": m["ci95"]["auc_engaged"],
                             "ece": m["calibration"]["ece_engaged"]} for s, m in figures.items()}
            print(f"  {key:75s} " + "  ".join(f"{s} {m['auc_engaged']:.3f} [{m['ci95']['auc_engaged'][0]:.3f}, "
                                               f"{m['ci95']['auc_engaged'][1]:.3f}]" for s, m in figures.items()))
    report["held_out_subjects"] = arms

    chosen = pool[decision["chosen"]]
    print("\nchosen candidate on each held-out set: calibration and the out-of-range flag")
    flags = {}
    for s, result in leave_one_dataset_out(pooled, chosen).items():
        summary = summarize(result, n_boot=args.n_boot)
        table = result.predictions
        outside = table["n_out_of_range"].to_numpy() > 0
        flags[s] = {"ece_engaged": summary["metrics"]["calibration"]["ece_engaged"],
                    "bins_engaged": summary["metrics"]["calibration"]["bins_engaged"],
                    "share_out_of_range": float(outside.mean()),
                    "auc_in_range": _auc(table[~outside], result.positive),
                    "auc_out_of_range": _auc(table[outside], result.positive)}
        print(f"  {s}: ECE {flags[s]['ece_engaged']:.3f}; out of range {flags[s]['share_out_of_range']:.1%} of "
              f"windows; AUC in range {flags[s]['auc_in_range']:.3f}, out of range {flags[s]['auc_out_of_range']:.3f}")
    report["chosen_held_out"] = flags

    audit = setup_audit(pooled, features=list(chosen.features), groups=DATASET).to_dict()
    report["dataset_audit"] = audit
    print(f"\nset-up audit by data set (features that tell the sets apart): the whole set's identity score "
          f"{audit['whole_set_identity_score']}; {len(audit['flagged'])} features flagged: {audit['flagged']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
