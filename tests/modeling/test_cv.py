"""modeling/cv.py and report/metrics.py: grouped folds, a leakage audit that catches leaks, right metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from geoengage.exceptions import InvalidParameterError
from geoengage.modeling.cv import audit_leakage, cross_validate, make_folds
from geoengage.report.metrics import bootstrap_ci, classification_metrics, summarize
from geoengage.testing import synthetic_windows


def test_grouped_folds_never_share_a_subject(rng) -> None:
    windows = synthetic_windows(rng)
    folds = make_folds(windows, target="label", n_splits=4)
    for fold in range(4):
        assert not set(windows.subject_id[folds == fold]) & set(windows.subject_id[folds != fold])
    assert audit_leakage(windows, folds)["leak_free"]


def _partition(windows: pd.DataFrame, folds: np.ndarray) -> frozenset:
    return frozenset(frozenset(windows.subject_id[folds == k]) for k in np.unique(folds))


def test_the_seed_changes_the_subject_folds(rng) -> None:
    """Other seeds give other subject-grouped splits (repeated CV), each stratified and whole-subject; seed 0 keeps
    StratifiedGroupKFold's split. sklearn's StratifiedGroupKFold uses its seed only between subjects with the same
    class counts, so with subjects of distinct counts (every real data set) every seed gave one split."""
    from sklearn.model_selection import StratifiedGroupKFold

    # subject s: 5 + s windows of class 0 and 20 + 3s of class 1, so no two subjects' class counts (or their
    # spread, which StratifiedGroupKFold sorts by) are alike
    labels = [(f"s{s}", label) for s in range(15) for label in [0] * (5 + s) + [1] * (20 + 3 * s)]
    windows = pd.DataFrame(labels, columns=["subject_id", "label"])
    windows["signal__mean"] = windows["label"] + rng.normal(0, 0.6, len(windows))
    splits = {seed: make_folds(windows, target="label", n_splits=5, random_state=seed) for seed in range(4)}
    assert len({_partition(windows, f) for f in splits.values()}) == 4
    for folds in splits.values():
        assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
        assert all(windows.subject_id[folds == k].nunique() >= 2 for k in range(5))
        assert all(windows.label[folds == k].nunique() == 2 for k in range(5))  # both classes in every fold
        assert all(not set(windows.subject_id[folds == k]) & set(windows.subject_id[folds != k]) for k in range(5))
    again = make_folds(windows, target="label", n_splits=5, random_state=2)
    assert np.array_equal(again, splits[2])  # reproducible
    sklearn_split = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0).split(
        np.zeros(len(windows)), windows.label, windows.subject_id)
    expected = np.empty(len(windows), int)
    for k, (_, test) in enumerate(sklearn_split):
        expected[test] = k
    assert np.array_equal(splits[0], expected)


def test_the_models_seed_changes_its_inner_subject_folds() -> None:
    """The inner folds that calibrate, set the threshold and tune follow the model's seed too (seed 0: as before)."""
    from sklearn.model_selection import StratifiedGroupKFold

    from geoengage.modeling.train import EngagementModel

    groups = np.repeat([f"s{s}" for s in range(9)], [25 + 3 * s for s in range(9)])
    codes = np.concatenate([[0] * (5 + s) + [1] * (20 + 2 * s) for s in range(9)])
    def partition(folds: list) -> frozenset:
        return frozenset(frozenset(groups[test]) for _, test in folds)

    inner = {seed: EngagementModel(random_state=seed)._inner_folds(codes, groups) for seed in range(3)}
    assert len({partition(f) for f in inner.values()}) == 3
    assert all(len(f) == 3 and all(len(set(groups[test])) >= 2 for _, test in f) for f in inner.values())
    expected = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=0).split(np.zeros(len(codes)), codes, groups)
    assert partition(inner[0]) == partition(list(expected))


def test_audit_catches_a_planted_leak(rng) -> None:
    windows = synthetic_windows(rng)
    folds = make_folds(windows, target="label", n_splits=4)
    leaked = folds.copy()
    leaked[np.flatnonzero(windows.subject_id == "s3")[:5]] = (folds[windows.subject_id == "s3"][0] + 1) % 4
    audit = audit_leakage(windows, leaked)
    assert not audit["leak_free"] and audit["subjects_in_train_and_test"] == ["s3"]
    duplicated = pd.concat([windows, windows.iloc[:10]], ignore_index=True)
    dup_folds = np.r_[folds, (folds[:10] + 1) % 4]  # exact copies of 10 windows in other folds
    assert audit_leakage(duplicated, dup_folds)["n_near_duplicate_test_windows"] >= 10


def test_random_split_leaks_and_grouped_does_not(rng) -> None:
    windows = synthetic_windows(rng)
    grouped = cross_validate(windows, target="label", estimator="logistic", n_splits=4)
    random = cross_validate(windows, target="label", estimator="logistic", n_splits=4, split="random")
    assert grouped.audit["leak_free"] and not random.audit["leak_free"]
    assert random.split == "random"


@pytest.mark.parametrize("estimator", ["xgboost", "logistic", "majority"])
def test_estimators_learn_the_signal_beside_the_majority_baseline(rng, estimator: str) -> None:
    windows = synthetic_windows(rng, classes=3)
    result = cross_validate(windows, target="label", estimator=estimator, n_splits=4)
    metrics = classification_metrics(result)
    if estimator == "majority":
        assert metrics["balanced_accuracy"] == pytest.approx(1 / 3)
    else:
        assert metrics["balanced_accuracy"] > 0.6 and metrics["auc_roc"] > 0.8
    assert len(result.predictions) == len(windows)
    assert np.allclose(result.predictions.filter(like="proba_").sum(axis=1), 1.0)


def test_metrics_match_sklearn_and_intervals_cover_them(rng) -> None:
    windows = synthetic_windows(rng)
    result = cross_validate(windows, target="label", estimator="logistic", n_splits=4)
    p = result.predictions
    summary = summarize(result, n_boot=200)
    metrics = summary["metrics"]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(p.y_true, p.y_pred))
    assert metrics["f1_macro"] == pytest.approx(f1_score(p.y_true, p.y_pred, average="macro"))
    assert metrics["auc_roc"] == pytest.approx(roc_auc_score(p.y_true, p.proba_1))
    assert metrics["precision_macro"] == pytest.approx(precision_score(p.y_true, p.y_pred, average="macro"))
    assert metrics["recall_weighted"] == pytest.approx(recall_score(p.y_true, p.y_pred, average="weighted"))
    assert np.array(metrics["confusion_matrix"]).sum() == len(windows)
    for name in ("accuracy", "auc_roc", "f1_macro"):
        low, high = metrics["ci95"][name]
        assert low <= metrics[name] <= high and high - low < 0.3
    assert bootstrap_ci(result, "accuracy", n_boot=50, seed=1) == bootstrap_ci(result, "accuracy", n_boot=50, seed=1)


def test_bad_parameters(rng) -> None:
    windows = synthetic_windows(rng, n_subjects=3)
    with pytest.raises(InvalidParameterError, match="`n_splits` must be between 2 and the number of distinct"):
        cross_validate(windows, target="label", n_splits=5)
    with pytest.raises(InvalidParameterError, match="`estimator` must be one of"):
        cross_validate(windows, target="label", estimator="forest", n_splits=3)


def test_calibration_of_a_perfectly_confident_and_a_hedging_model(rng) -> None:
    from geoengage.report.metrics import calibration

    windows = synthetic_windows(rng)
    result = cross_validate(windows, target="label", estimator="majority", n_splits=4)
    cal = calibration(result)
    share = (result.predictions.y_true == result.predictions.y_pred).mean()
    confidence = result.predictions.filter(like="proba_").max(axis=1).mean()
    assert cal["ece"] == pytest.approx(abs(share - confidence), abs=0.02)  # one bin: |accuracy - confidence|
    assert 0 <= cal["brier"] <= 2 and sum(b["n"] for b in cal["bins"]) == len(windows)


def test_regression_beats_the_mean_baseline(rng) -> None:
    windows = synthetic_windows(rng, classes=3)
    windows["score"] = windows["label"] * 0.5 + rng.normal(0, 0.1, len(windows))
    results = {name: summarize(cross_validate(windows, target="score", estimator=name, n_splits=4), n_boot=100)
               for name in ("xgboost_regressor", "ridge", "mean")}
    assert results["mean"]["metrics"]["r2"] <= 0.0
    for name in ("xgboost_regressor", "ridge"):
        metrics = results[name]["metrics"]
        assert metrics["r2"] > 0.5 and metrics["spearman"] > 0.7
        low, high = metrics["ci95"]["mae"]
        assert low <= metrics["mae"] <= high
    assert results["ridge"]["audit"]["leak_free"]
