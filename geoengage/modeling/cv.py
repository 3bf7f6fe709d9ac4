"""Subject-grouped cross-validation with a leakage audit.

The subject is the fold boundary by default: :func:`cross_validate` splits with
:class:`~sklearn.model_selection.StratifiedGroupKFold` (stratified where the classes allow),
refits the whole pipeline on every training fold and predicts the held-out subjects.
A random split (``split="random"``) exists only for comparison; its result is marked.

:func:`audit_leakage` checks what was actually used: subjects on both sides of any split
(must be 0 under grouped splits) and test windows that have a near-duplicate in their
training fold (standardised feature vectors closer than ``near_duplicate_tol``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.neighbors import NearestNeighbors

from ..exceptions import InvalidParameterError, SchemaError
from .estimators import REGRESSORS, make_estimator

__all__ = ["CVResult", "audit_leakage", "cross_validate", "feature_columns", "make_folds", "prediction_table",
           "scorable_windows", "stratified_group_folds", "typed_labels"]


def feature_columns(windows: pd.DataFrame) -> list[str]:
    """The window feature columns (``<signal>__<agg>...``)."""
    return [c for c in windows.columns if "__" in c and pd.api.types.is_numeric_dtype(windows[c])]


@dataclass(frozen=True)
class CVResult:
    """Out-of-fold predictions of one estimator, and how they were made.

    ``predictions`` has one row per window: ``row``, ``fold``, ``group``, ``y_true``, ``y_pred``, ``proba_<class>``
    (classifiers; ``p_engaged``, the positive classes' summed probability, too) or the predicted number
    (regressors). ``decision`` records each fold's decision rule (threshold, tuned parameters).
    """

    predictions: pd.DataFrame
    classes: tuple[object, ...]
    features: tuple[str, ...]
    estimator: str
    split: str
    audit: dict[str, object] = field(default_factory=dict)
    positive: tuple[object, ...] = ()
    decision: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"estimator": self.estimator, "split": self.split, "classes": list(self.classes),
                "positive": list(self.positive), "n_features": len(self.features),
                "n_windows": len(self.predictions), "audit": self.audit, "decision": self.decision}


def _check_groups(windows: pd.DataFrame, *, groups: str, n_splits: int) -> None:
    if groups not in windows.columns:
        raise SchemaError(f"cross_validate: the windows lack the group column {groups!r} (add subject_id).")
    n_groups = windows[groups].nunique()
    if not 2 <= n_splits <= n_groups:
        raise InvalidParameterError(
            f"`n_splits` must be between 2 and the number of distinct {groups!r} values ({n_groups}). "
            f"Got {n_splits} instead. Lower n_splits or add subjects.")


def make_folds(windows: pd.DataFrame, *, target: str, groups: str = "subject_id", n_splits: int = 5,
               split: str = "subject", random_state: int = 0) -> np.ndarray:
    """Fold number (0..n_splits-1) of every window: by subject (default) or at random.

    By subject, seed 0 is :class:`~sklearn.model_selection.StratifiedGroupKFold`'s split; any other seed visits the
    subjects in an order drawn from it (same stratification rule), so repeated CV over seeds 0, 1, ... sees other
    splits. StratifiedGroupKFold alone uses its seed only between subjects whose class counts are alike: on real
    data sets (engagement_wacv, DAiSEE) every seed gave the same split until 2026-12-03."""
    y = pd.factorize(windows[target].astype(str))[0]  # stratify by class, whatever type the labels have
    if split == "subject":
        _check_groups(windows, groups=groups, n_splits=n_splits)
        return stratified_group_folds(y, windows[groups].to_numpy(), n_splits, random_state)
    if split != "random":
        raise InvalidParameterError(f"`split` must be 'subject' or 'random'. Got {split!r} instead.")
    folds = np.full(len(windows), -1)
    parts = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y)
    for fold, (_, test) in enumerate(parts):
        folds[test] = fold
    return folds


def stratified_group_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int) -> np.ndarray:
    """Fold number of each sample, whole groups per fold, class shares as even across folds as the groups allow
    (``y``: class codes 0..k-1). Seed 0: :class:`~sklearn.model_selection.StratifiedGroupKFold`'s split; any other
    seed: :func:`_seeded_group_folds` (StratifiedGroupKFold's seed only breaks ties between groups of equal class
    counts). The outer folds (:func:`make_folds`) and a model's inner folds both come from here."""
    if random_state != 0:
        return _seeded_group_folds(y, groups, n_splits, random_state)
    folds = np.full(len(y), -1)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
        folds[test] = fold
    return folds


def _seeded_group_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int) -> np.ndarray:
    """Fold of each sample for a seed other than 0: whole groups, visited in an order drawn from the seed, each put
    in the fold that keeps every class's share across folds most even (ties: the fold with fewer samples), the
    criterion of StratifiedGroupKFold, which visits groups in one fixed order whatever its seed."""
    names, inverse = np.unique(groups.astype(str), return_inverse=True)
    counts = np.zeros((len(names), int(y.max()) + 1))
    np.add.at(counts, (inverse, y), 1)
    totals = counts.sum(axis=0)
    per_fold = np.zeros((n_splits, counts.shape[1]))
    chosen = np.empty(len(names), dtype=int)
    for group in np.random.default_rng(random_state).permutation(len(names)):
        candidates = per_fold[None, :, :] + np.eye(n_splits)[:, :, None] * counts[group]  # (fold tried, fold, class)
        spread = np.round(np.std(candidates / totals, axis=1).mean(axis=1), 12)
        best = int(np.lexsort((per_fold.sum(axis=1), spread))[0])
        per_fold[best] += counts[group]
        chosen[group] = best
    return chosen[inverse]


def audit_leakage(windows: pd.DataFrame, folds: np.ndarray, *, groups: str = "subject_id",
                  features: list[str] | None = None, near_duplicate_tol: float = 1e-6) -> dict[str, object]:
    """Subjects shared between train and test of any fold, and near-duplicate test windows."""
    features = features or feature_columns(windows)
    values = windows[features].astype(np.float64)
    values = values.fillna(values.median()).fillna(0.0).to_numpy()
    scale = values.std(axis=0)
    values = (values - values.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    shared, duplicates = [], 0
    for fold in np.unique(folds):
        test, train = folds == fold, folds != fold
        if groups in windows.columns:
            shared += sorted(set(windows.loc[test, groups]) & set(windows.loc[train, groups]), key=str)
        if train.any() and test.any():
            distance, _ = NearestNeighbors(n_neighbors=1).fit(values[train]).kneighbors(values[test])
            duplicates += int((distance[:, 0] <= near_duplicate_tol * np.sqrt(values.shape[1])).sum())
    return {"subjects_in_train_and_test": [str(s) for s in dict.fromkeys(shared)],
            "n_subjects_in_train_and_test": len(set(shared)), "n_near_duplicate_test_windows": duplicates,
            "leak_free": not shared}


def cross_validate(
    windows: pd.DataFrame,
    *,
    target: str,
    groups: str = "subject_id",
    estimator: str | object = "xgboost",
    features: list[str] | None = None,
    n_splits: int = 5,
    split: str = "subject",
    folds: np.ndarray | None = None,
    random_state: int = 0,
    classes: list[object] | None = None,
    positive: list[object] | None = None,
    **params: object,
) -> CVResult:
    """Out-of-fold predictions of ``estimator`` for ``target``, grouped by ``groups``.

    Parameters
    ----------
    windows : DataFrame
        One row per window, with the target, the group column and feature columns. Windows without
        enough face (``window_ok`` False) are left out, as scoring leaves them out.
    estimator : str or EngagementModel
        ``"xgboost"``, ``"xgboost_ordinal"``, ``"logistic"``, ``"majority"`` (an :class:`~geoengage.modeling.train.EngagementModel`
        with ``params``: class weights, calibration, decision rule, tuning, all fitted inside each training
        fold), an unfitted ``EngagementModel``, or a regressor name (``"xgboost_regressor"``, ``"ridge"``,
        ``"mean"``).
    classes, positive : list, optional
        Class order and engaged classes (see :mod:`geoengage.modeling.labels`).
    folds : ndarray, optional
        Precomputed fold numbers (to compare estimators or feature sets on the same folds).
    """
    from .labels import canonical_labels, resolve_classes
    from .train import MODEL_ESTIMATORS, EngagementModel

    if target not in windows.columns:
        raise SchemaError(f"cross_validate: the windows lack the target column {target!r}.")
    data = scorable_windows(windows, target)
    features = list(features or feature_columns(data))
    if isinstance(estimator, str) and estimator in REGRESSORS:
        return _cross_validate_regression(data, target=target, groups=groups, estimator=estimator,
                                          features=features, n_splits=n_splits, split=split, folds=folds,
                                          random_state=random_state)
    labels = canonical_labels(data[target].to_numpy())
    data = data.assign(**{target: labels})
    if folds is None:
        folds = make_folds(data, target=target, groups=groups, n_splits=n_splits, split=split,
                           random_state=random_state)
    elif len(folds) != len(data):
        raise InvalidParameterError(f"`folds` must have one entry per labelled window with a face ({len(data)}).")
    order, engaged = resolve_classes(labels, classes=classes, positive=positive)
    if isinstance(estimator, str):
        if estimator not in MODEL_ESTIMATORS:
            raise InvalidParameterError(f"`estimator` must be one of {MODEL_ESTIMATORS + REGRESSORS}. "
                                        f"Got {estimator!r} instead.")
        model = EngagementModel(estimator, random_state=random_state, **params)  # type: ignore[arg-type]
    else:
        model = estimator
    model.set_params(features=features, classes=list(order), positive=list(engaged))
    name = model.estimator
    proba = np.zeros((len(data), len(order)))
    predicted = np.empty(len(data), dtype=object)
    decisions: dict[str, object] = {}
    group_values = data[groups].to_numpy() if groups in data and split == "subject" else None
    for fold in np.unique(folds):
        test, train = folds == fold, folds != fold
        fitted = clone(model).fit(data[train], labels[train], groups=None if group_values is None
                                  else group_values[train])
        proba[test] = fitted.predict_proba(data[test])
        predicted[test] = fitted.classes_[fitted.decide(proba[test])]
        decisions[str(int(fold))] = fitted.decision_record()
    predictions = prediction_table(data, folds, groups, labels, predicted, proba, order, engaged)
    audit = audit_leakage(data, folds, groups=groups, features=features)
    return CVResult(predictions, tuple(order), tuple(features), name, split, audit, tuple(engaged), decisions)


def prediction_table(data: pd.DataFrame, folds: np.ndarray | int, groups: str, labels: np.ndarray,
                     predicted: np.ndarray, proba: np.ndarray, classes: tuple[object, ...],
                     positive: tuple[object, ...]) -> pd.DataFrame:
    """:attr:`CVResult.predictions` for windows ``data``: fold, group, true and predicted class, the probability of
    each class and of the engaged ones together (``p_engaged``)."""
    table = pd.DataFrame({"row": np.arange(len(data)), "fold": folds,
                          "group": data[groups].to_numpy() if groups in data else np.nan,
                          "y_true": typed_labels(labels), "y_pred": typed_labels(predicted)})
    for k, cls in enumerate(classes):
        table[f"proba_{cls}"] = proba[:, k]
    table["p_engaged"] = proba[:, [list(classes).index(c) for c in positive]].sum(axis=1)
    return table


def typed_labels(values: np.ndarray) -> np.ndarray:
    """Canonical labels (object array) as a plain numpy array: integers, floats or text."""
    return np.asarray(values.tolist())


def scorable_windows(windows: pd.DataFrame, target: str) -> pd.DataFrame:
    """The windows with a ``target`` value and enough face (``window_ok``), re-indexed from 0."""
    keep = windows[target].notna()
    if "window_ok" in windows.columns:
        keep &= windows["window_ok"].fillna(False).astype(bool)
    return windows[keep].reset_index(drop=True)


def _cross_validate_regression(data: pd.DataFrame, *, target: str, groups: str, estimator: str, features: list[str],
                               n_splits: int, split: str, folds: np.ndarray | None, random_state: int) -> CVResult:
    """Out-of-fold predictions of a regressor (a numeric engagement score); folds as for classifiers."""
    y = data[target].astype(np.float64).to_numpy()
    if folds is None:
        if split == "subject":
            _check_groups(data, groups=groups, n_splits=n_splits)
            from sklearn.model_selection import GroupKFold

            parts = GroupKFold(n_splits=n_splits).split(np.zeros(len(y)), y, data[groups].to_numpy())
        else:
            from sklearn.model_selection import KFold

            parts = KFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(np.zeros(len(y)))
        folds = np.full(len(y), -1)
        for fold, (_, test) in enumerate(parts):
            folds[test] = fold
    X = data[features].astype(np.float64)
    model = make_estimator(estimator, random_state=random_state)
    predicted = np.full(len(y), np.nan)
    for fold in np.unique(folds):
        test = folds == fold
        predicted[test] = clone(model).fit(X[~test], y[~test]).predict(X[test])
    predictions = pd.DataFrame({"row": np.arange(len(y)), "fold": folds,
                                "group": data[groups].to_numpy() if groups in data else np.nan,
                                "y_true": y, "y_pred": predicted})
    audit = audit_leakage(data, folds, groups=groups, features=features)
    return CVResult(predictions, (), tuple(features), estimator, split, audit)
