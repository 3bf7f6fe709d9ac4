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
from sklearn.pipeline import Pipeline

from ..exceptions import InvalidParameterError, SchemaError
from .estimators import REGRESSORS, make_estimator

__all__ = ["CVResult", "audit_leakage", "cross_validate", "feature_columns"]


def feature_columns(windows: pd.DataFrame) -> list[str]:
    """The window feature columns (``<signal>__<agg>...``)."""
    return [c for c in windows.columns if "__" in c and pd.api.types.is_numeric_dtype(windows[c])]


@dataclass(frozen=True)
class CVResult:
    """Out-of-fold predictions of one estimator, and how they were made."""

    predictions: pd.DataFrame  # row, fold, group, y_true, y_pred, proba_<class>...
    classes: tuple[object, ...]
    features: tuple[str, ...]
    estimator: str
    split: str
    audit: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"estimator": self.estimator, "split": self.split, "classes": list(self.classes),
                "n_features": len(self.features), "n_windows": len(self.predictions), "audit": self.audit}


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
    """Fold number (0..n_splits-1) of every window: by subject (default) or at random."""
    y = windows[target].to_numpy()
    folds = np.full(len(windows), -1)
    if split == "subject":
        _check_groups(windows, groups=groups, n_splits=n_splits)
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        parts = splitter.split(np.zeros(len(y)), y, windows[groups].to_numpy())
    elif split == "random":
        parts = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y)
    else:
        raise InvalidParameterError(f"`split` must be 'subject' or 'random'. Got {split!r} instead.")
    for fold, (_, test) in enumerate(parts):
        folds[test] = fold
    return folds


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
    estimator: str | Pipeline = "xgboost",
    features: list[str] | None = None,
    n_splits: int = 5,
    split: str = "subject",
    folds: np.ndarray | None = None,
    random_state: int = 0,
) -> CVResult:
    """Out-of-fold predictions of ``estimator`` for ``target``, grouped by ``groups``.

    Parameters
    ----------
    windows : DataFrame
        One row per window, with the target, the group column and feature columns.
    estimator : str or Pipeline
        ``"xgboost"``, ``"logistic"``, ``"majority"`` or any sklearn classifier pipeline.
    folds : ndarray, optional
        Precomputed fold numbers (to compare estimators or feature sets on the same folds).
    """
    if target not in windows.columns:
        raise SchemaError(f"cross_validate: the windows lack the target column {target!r}.")
    data = windows[windows[target].notna()].reset_index(drop=True)
    features = list(features or feature_columns(data))
    if isinstance(estimator, str) and estimator in REGRESSORS:
        return _cross_validate_regression(data, target=target, groups=groups, estimator=estimator,
                                          features=features, n_splits=n_splits, split=split, folds=folds,
                                          random_state=random_state)
    if folds is None:
        folds = make_folds(data, target=target, groups=groups, n_splits=n_splits, split=split,
                           random_state=random_state)
    elif len(folds) != len(data):
        raise InvalidParameterError(f"`folds` must have one entry per labelled window ({len(data)}).")
    classes = np.unique(data[target].to_numpy())
    codes = np.searchsorted(classes, data[target].to_numpy())
    X = data[features].astype(np.float64)
    name = estimator if isinstance(estimator, str) else type(estimator).__name__
    model = make_estimator(estimator, random_state=random_state) if isinstance(estimator, str) else estimator
    proba = np.full((len(data), len(classes)), np.nan)
    for fold in np.unique(folds):
        test, train = folds == fold, folds != fold
        fitted = clone(model).fit(X[train], codes[train])
        fold_proba = fitted.predict_proba(X[test])
        proba[np.ix_(test, np.asarray(fitted.classes_, dtype=int))] = fold_proba
    proba = np.nan_to_num(proba, nan=0.0)
    predictions = pd.DataFrame({"row": np.arange(len(data)), "fold": folds,
                                "group": data[groups].to_numpy() if groups in data else np.nan,
                                "y_true": data[target].to_numpy(), "y_pred": classes[proba.argmax(axis=1)]})
    for k, cls in enumerate(classes):
        predictions[f"proba_{cls}"] = proba[:, k]
    audit = audit_leakage(data, folds, groups=groups, features=features)
    return CVResult(predictions, tuple(classes.tolist()), tuple(features), name, split, audit)


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
