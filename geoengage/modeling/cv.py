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
from sklearn.neighbors import NearestNeighbors

from ..exceptions import InvalidParameterError, SchemaError
from .estimators import REGRESSORS, make_estimator
from .folds import (
    check_groups,
    feature_columns,
    make_folds,
    prediction_table,
    scorable_windows,
    stratified_group_folds,
    typed_labels,
)
from .labels import canonical_labels, resolve_classes
from .train import MODEL_ESTIMATORS, EngagementModel

__all__ = ["CVResult", "audit_leakage", "cross_validate", "feature_columns", "make_folds", "prediction_table",
           "scorable_windows", "stratified_group_folds", "typed_labels"]


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


def _cross_validate_regression(data: pd.DataFrame, *, target: str, groups: str, estimator: str, features: list[str],
                               n_splits: int, split: str, folds: np.ndarray | None, random_state: int) -> CVResult:
    """Out-of-fold predictions of a regressor (a numeric engagement score); folds as for classifiers."""
    y = data[target].astype(np.float64).to_numpy()
    if folds is None:
        if split == "subject":
            check_groups(data, groups=groups, n_splits=n_splits)
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
