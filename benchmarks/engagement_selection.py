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
ordinal XGBoost, default features, no weights, trained on WACV) is the ordinal/default/none row. Inside its training
data each model fits its calibration and decision rule on subject-grouped inner folds.

- Stage 1, a new lab: each candidate trained on one data set and scored on the other (leave one data set out).
  Criterion: the worst held-out AUC; a candidate ties with the best when the paired subject-bootstrap 95% interval of
  their difference holds 0 (every candidate is scored on the same held-out subjects).
- Stage 2, people held back from every training set, as the shipped model (trained on both sets) meets them: the
  stage-1 ties without weights trained on both sets pooled, each set's subjects in 5 grouped folds; the same
  criterion and ties. The simplest stage-2 tie is chosen (``Candidate.complexity``: learner, then fewer features).
  (Stage 2 was added after stage 1 alone had tied 11 of 12 candidates and so chosen logistic regression by
  simplicity; stage 2 then separates them: see the card.)
- Training data for the chosen candidate: each set's held-out subjects scored by the model trained on the set's
  other subjects ("same"), the other set ("other") or both ("pooled", with weights none / each data set equal / each
  subject equal; intervals from 300 resamples). Then its calibration on each held-out set (stage 1: ECE of
  P(engaged)), the share of windows outside the training range with the AUC inside and outside it, and the set-up
  audit by data set.

``--stage1 results.json`` reads stage 1 from an earlier run's ``--out`` (it takes ~25 minutes on 2 cores).

    python benchmarks/engagement_selection.py [--data ../shared/data] [--work benchmarks/out] [--out results.json]
                                              [--stage1 results.json]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from engagement_data import daisee, parse_args, wacv
from sklearn.metrics import roc_auc_score

from geoengage.modeling.audit import setup_audit
from geoengage.modeling.pooling import DATASET, pool_datasets
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


def _print_paired(paired: dict) -> None:
    for name, v in paired.items():
        print(f"  {name:40s} worst {v['worst_auc']:.3f} [{v['worst_ci'][0]:.3f}, {v['worst_ci'][1]:.3f}] "
              f"({v['worst_set']})  difference {v['diff']:+.3f} [{v['diff_ci'][0]:+.3f}, {v['diff_ci'][1]:+.3f}]")


def stage1(pooled: pd.DataFrame, pool: dict[str, Candidate], n_boot: int) -> list[dict]:
    """Leave one data set out: each candidate's held-out AUC, interval and ECE per set, and its worst case paired
    with the best candidate's."""
    sets = list(pd.unique(pooled[DATASET]))
    rows, lodo = [], {}
    print("\nstage 1, leave one data set out: engaged-vs-not AUC on the held-out set [subject-bootstrap 95% CI], "
          "ECE of P(engaged)")
    for name, candidate in pool.items():
        started = time.perf_counter()
        lodo[name] = leave_one_dataset_out(pooled, candidate)
        held = {s: summarize(r, n_boot=n_boot) for s, r in lodo[name].items()}
        row = {"name": name, **{f"{s}_{k}": v for s in sets for k, v in (
                   ("auc", held[s]["metrics"]["auc_engaged"]), ("ci", held[s]["metrics"]["ci95"]["auc_engaged"]),
                   ("ece", held[s]["metrics"]["calibration"]["ece_engaged"]),
                   ("balanced_accuracy", held[s]["metrics"]["balanced_accuracy"]))}}
        rows.append(row)
        cells = "  ".join(f"{s} {row[f'{s}_auc']:.3f} [{row[f'{s}_ci'][0]:.3f}, {row[f'{s}_ci'][1]:.3f}] "
                          f"ECE {row[f'{s}_ece']:.3f}" for s in sets)
        print(f"  {name:40s} {cells}  ({time.perf_counter() - started:.0f} s)")
    paired = paired_worst_case(lodo, n_boot=n_boot)
    print("worst held-out AUC, and its difference from the best candidate's (paired subject bootstrap, 95%):")
    _print_paired(paired)
    for row in rows:
        row.update(paired[row["name"]])
    return rows


def main() -> None:
    args = parse_args(__doc__, ("daisee", "engagement_wacv"), extra=(("--stage1", str, ""),))
    pooled = pooled_table(args)
    sets = list(pd.unique(pooled[DATASET]))
    print("pooled:", {s: (int((pooled[DATASET] == s).sum()), int(pooled.loc[pooled[DATASET] == s, "subject_id"]
                                                                   .nunique())) for s in sets}, "(windows, subjects)")
    report: dict[str, object] = {"codings": {"engaged": BINARY_MAPS, "level": ORDINAL_MAPS}}
    pool = candidates(pooled)
    if args.stage1:  # stage 1's rows from an earlier run of this script (its --out JSON)
        rows = json.loads(Path(args.stage1).read_text())["stage1"]
        print(f"\nstage 1 read from {args.stage1}:")
        _print_paired({r["name"]: r for r in rows})
    else:
        rows = stage1(pooled, pool, args.n_boot)
    report["stage1"] = rows
    first = choose(rows, pool)
    report["stage1_choice"] = first
    print(f"stage 1: {first['rule']}; ties: {first['ties']}")

    ties = [n for n in first["ties"] if pool[n].weights == "none"]
    print(f"\nstage 2, people held back from every training set: the {len(ties)} stage-1 ties without weights, "
          "trained on both sets pooled, each set's subjects in 5 grouped folds")
    pooled_results = {n: held_out_subjects(pooled, pool[n], train_on="pooled") for n in ties}
    paired = paired_worst_case(pooled_results, n_boot=args.n_boot)
    _print_paired(paired)
    second = choose([{"name": n, **v} for n, v in paired.items()], pool)
    report["stage2"], report["stage2_choice"] = paired, second
    print(f"stage 2: {second['rule']}; ties: {second['ties']}")
    chosen = pool[second["chosen"]]

    print(f"\ntraining data for {chosen.name}: AUC on each set's held-out subjects (5 grouped folds)")
    arms = {"pooled, weights none": pooled_results[chosen.name]}
    for train_on, weights in (("same", "none"), ("other", "none"), ("pooled", "dataset"), ("pooled", "subject")):
        candidate = Candidate(chosen.name, chosen.target, chosen.estimator, chosen.features, weights, chosen.options)
        key = train_on if train_on != "pooled" else f"pooled, weights {weights}"
        arms[key] = held_out_subjects(pooled, candidate, train_on=train_on)
    report["training_data"] = {}
    for key, results in arms.items():
        figures = {s: summarize(r, n_boot=min(args.n_boot, ARM_BOOT))["metrics"] for s, r in results.items()}
        report["training_data"][key] = {s: {"auc": m["auc_engaged"], "ci": m["ci95"]["auc_engaged"],
                                            "ece": m["calibration"]["ece_engaged"]} for s, m in figures.items()}
        print(f"  trained on {key:25s} " + "  ".join(
            f"{s} {m['auc_engaged']:.3f} [{m['ci95']['auc_engaged'][0]:.3f}, {m['ci95']['auc_engaged'][1]:.3f}]"
            for s, m in figures.items()))

    print("\nthe chosen candidate on each held-out set (stage 1): calibration and the out-of-range flag")
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
