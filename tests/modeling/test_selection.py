"""Several data sets: pooling onto one coding, weights, leave-one-data-set-out and its command, the choice rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from geoengage.cli import main
from geoengage.exceptions import InvalidParameterError
from geoengage.modeling.pooling import DATASET, pool_datasets, pool_weights
from geoengage.modeling.selection import Candidate, choose, held_out_subjects, leave_one_dataset_out, paired_worst_case
from geoengage.modeling.train import EngagementModel
from geoengage.report.metrics import summarize
from geoengage.testing import synthetic_windows


@pytest.fixture()
def two_sets() -> dict[str, pd.DataFrame]:
    """Two labs: the same subject ids ("s0"...), another set-up (shift; a lens that tells the labs apart), and
    levels 0-2 in the second."""
    sets = {"lab_a": synthetic_windows(1, n_subjects=8, per_subject=20),
            "lab_b": synthetic_windows(2, n_subjects=10, per_subject=12, classes=3, shift=0.5)}
    rng = np.random.default_rng(3)
    for k, table in enumerate(sets.values()):
        table["lens__mean"] = 3.0 * k + rng.normal(0, 0.1, len(table))
    return sets


B_TO_BINARY = {0: 0, 1: 1, 2: 1}


def test_pooling_maps_labels_and_keeps_labs_apart(two_sets) -> None:
    pooled = pool_datasets(two_sets, target="label", label_maps={"lab_b": B_TO_BINARY})
    assert len(pooled) == 8 * 20 + 10 * 12
    assert set(pooled["label"]) == {0, 1}
    assert pooled.loc[pooled[DATASET] == "lab_a", "subject_id"].iloc[0] == "lab_a/s0"
    assert pooled["subject_id"].nunique() == 18  # "s0" of lab_a is not "s0" of lab_b
    b = pooled[pooled[DATASET] == "lab_b"]
    assert (b["label"].astype(int).to_numpy() == (two_sets["lab_b"]["label"].to_numpy() > 0)).all()
    with pytest.raises(InvalidParameterError, match="unknown data sets"):
        pool_datasets(two_sets, target="label", label_maps={"lab_c": {}})


def test_pooled_folds_never_split_a_subject(two_sets) -> None:
    pooled = pool_datasets(two_sets, target="label", label_maps={"lab_b": B_TO_BINARY})
    candidate = Candidate("xgb", "label", "xgboost", ("signal__mean", "noise__std"), "none",
                          {"classes": [0, 1], "positive": [1]})
    for train_on in ("same", "pooled"):
        results = held_out_subjects(pooled, candidate, train_on=train_on, n_splits=4)
        assert set(results) == {"lab_a", "lab_b"}
        for name, result in results.items():
            table = result.predictions
            assert table.groupby("group")["fold"].nunique().max() == 1  # each subject in one outer fold
            assert table["group"].str.startswith(f"{name}/").all()
            assert result.audit["n_subjects_in_train_and_test"] == 0
            assert summarize(result, n_boot=50)["metrics"]["auc_engaged"] > 0.8


def test_weights_make_each_set_or_subject_count_the_same(two_sets) -> None:
    pooled = pool_datasets(two_sets, target="label", label_maps={"lab_b": B_TO_BINARY})
    for scheme, column in (("dataset", DATASET), ("subject", "subject_id")):
        weight = pool_weights(pooled, scheme)
        assert weight.mean() == pytest.approx(1.0)
        totals = pd.Series(weight).groupby(pooled[column].to_numpy()).sum()
        assert totals.to_numpy() == pytest.approx(np.full(len(totals), totals.iloc[0]))
    assert (pool_weights(pooled, "none") == 1).all()
    # a set weighted out of training is as good as absent: the learner's fit on lab_a alone
    weight = (pooled[DATASET] == "lab_a").to_numpy(float)
    options = {"classes": [0, 1], "positive": [1], "calibrate": False, "decision": "argmax"}
    features = ["signal__mean", "noise__std"]
    weighted = EngagementModel(features=features, **options).fit(pooled, pooled["label"], sample_weight=weight)
    alone = pooled[pooled[DATASET] == "lab_a"]
    plain = EngagementModel(features=features, **options).fit(alone, alone["label"])
    assert weighted.predict_proba(pooled) == pytest.approx(plain.predict_proba(pooled), abs=1e-5)
    with pytest.raises(InvalidParameterError, match="sample_weight"):
        EngagementModel(features=features).fit(pooled, pooled["label"], sample_weight=weight[:5])


def test_leave_one_dataset_out_scores_each_set_unseen(two_sets) -> None:
    pooled = pool_datasets(two_sets, target="label", label_maps={"lab_b": B_TO_BINARY})
    candidate = Candidate("logistic", "label", "logistic", ("signal__mean",), "subject",
                          {"classes": [0, 1], "positive": [1]})
    results = leave_one_dataset_out(pooled, candidate)
    assert {k: len(r.predictions) for k, r in results.items()} == {"lab_a": 160, "lab_b": 120}
    for result in results.values():
        assert result.audit["leak_free"]
        assert "n_out_of_range" in result.predictions


def test_choose_prefers_the_simplest_tie() -> None:
    candidates = {"big": Candidate("big", "y", "xgboost", ("a", "b")), "small": Candidate("small", "y", "logistic", ("a",)),
                  "bad": Candidate("bad", "y", "logistic", ())}
    rows = [{"name": "big", "worst_auc": 0.70, "worst_ci": (0.64, 0.76)},
            {"name": "small", "worst_auc": 0.67, "worst_ci": (0.60, 0.74)},
            {"name": "bad", "worst_auc": 0.55, "worst_ci": (0.50, 0.60)}]
    decision = choose(rows, candidates)
    assert decision["best"] == "big" and decision["chosen"] == "small" and set(decision["ties"]) == {"big", "small"}


def test_the_leave_one_dataset_out_command(two_sets, tmp_path, capsys, caplog) -> None:
    paths = []
    for name, table in two_sets.items():
        (tmp_path / name).mkdir()
        table.to_parquet(tmp_path / name / "windows.parquet")
        paths.append(str(tmp_path / name / "windows.parquet"))
    out = tmp_path / "report"
    assert main(["-q", "evaluate", *paths, "--target", "label", "--by", "dataset", "--set-map", "lab_b:0=0,1=1,2=1",
                 "--weights", "dataset", "--n-boot", "50", "--n-splits", "3", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["xgboost: held out lab_a"]["auc_engaged"] > 0.8
    assert summary["xgboost: held out lab_b"]["auc_engaged"] > 0.8
    report = json.loads((out / "report.json").read_text())
    matrix = report["protocol"]["cross-data-set matrix, engaged-vs-not AUC of xgboost (rows trained on, columns "
                                "tested on)"]
    assert set(matrix) == {"lab_a", "lab_b"} and all(0.5 < v <= 1 for row in matrix.values() for v in row.values())
    assert {"majority: held out lab_b", "logistic: held out lab_a"} <= set(report["results"])
    assert "lens__mean" in report["protocol"]["features that tell the data sets apart (set-up audit by data set)"]
    assert any("Reliability" in f["caption"] for f in report["figures"])
    html = (out / "report.html").read_text()
    assert "held out lab_a" in html and "ECE of P(engaged)" in html
    # one table with --by dataset, or several without it, is refused with a clear line
    assert main(["-q", "evaluate", paths[0], paths[1], "--target", "label", "--out", str(out)]) == 2
    assert any("--by dataset" in r.getMessage() for r in caplog.records)
    model = tmp_path / "model"
    assert main(["-q", "train", *paths, "--target", "label", "--set-map", "lab_b:0=0,1=1,2=1", "--weights", "subject",
                 "--out", str(model)]) == 0
    meta = json.loads((model / "model.meta.json").read_text())
    assert meta["settings"]["pooled"]["datasets"] == {"lab_a": 160, "lab_b": 120}
    assert meta["settings"]["pooled"]["weights"] == "subject"


def test_paired_worst_case_ties_what_the_subjects_cannot_tell_apart(two_sets) -> None:
    """Scored on the same held-out subjects, a copy of a candidate has exactly its paired figures, the best has a
    difference of exactly 0, and a candidate that reads only noise is worse with an interval below 0: no tie."""
    pooled = pool_datasets(two_sets, target="label", label_maps={"lab_b": B_TO_BINARY})
    options = {"classes": [0, 1], "positive": [1]}
    pool = {"good": Candidate("good", "label", "xgboost", ("signal__mean",), "none", options),
            "same": Candidate("same", "label", "logistic", ("signal__mean",), "none", options),
            "noise": Candidate("noise", "label", "logistic", ("noise__std",), "none", options)}
    results = {name: leave_one_dataset_out(pooled, c) for name, c in pool.items()}
    results["copy"] = results["good"]
    pool["copy"] = pool["good"]
    paired = paired_worst_case(results, n_boot=200)
    assert paired["copy"] == paired["good"]
    best = max(paired, key=lambda n: paired[n]["worst_auc"])
    assert paired[best]["diff_ci"] == (0.0, 0.0)
    assert paired["noise"]["diff_ci"][1] < 0 and paired["noise"]["worst_auc"] < 0.65
    rows = [{"name": n, **v} for n, v in paired.items()]
    decision = choose(rows, pool)
    assert "noise" not in decision["ties"]
    assert decision["chosen"] in ("same", "good") and pool[decision["chosen"]].complexity <= pool["good"].complexity
