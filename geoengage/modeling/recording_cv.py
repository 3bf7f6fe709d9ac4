"""Recordings -> recording-level evaluation: subject-grouped CV of a sequence model beside recording baselines, and
permutation importance over features and over time.

:func:`cross_validate_recordings` runs the sequence model (:class:`~geoengage.modeling.sequence.SequenceModel`)
beside ridge / logistic regression, XGBoost on the per-recording aggregates
(:func:`~geoengage.modeling.recordings.recording_table`) and the mean / majority baseline on the same subject-grouped
folds, returning :class:`~geoengage.modeling.cv.CVResult` objects the report understands. :func:`feature_importance`
and :func:`time_importance` measure what a fitted sequence model reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..exceptions import InvalidParameterError, SchemaError
from .cv import CVResult, audit_leakage, feature_columns, make_folds, prediction_table, scorable_windows
from .estimators import xgboost_estimator
from .labels import canonical_labels
from .recordings import RECORDING_KEYS, aggregate_sequences, recording_sequences, signed_log
from .sequence import SequenceModel

__all__ = ["RECORDING_BASELINES", "cross_validate_recordings", "feature_importance", "recording_baseline",
           "time_importance"]

#: The estimators :func:`cross_validate_recordings` runs on the same folds (sequence model first).
RECORDING_BASELINES = {"regression": ("ridge", "xgboost", "mean"), "classification": ("logistic", "xgboost",
                                                                                     "majority")}


def feature_importance(model: SequenceModel, windows: pd.DataFrame, target: str, *, n_repeats: int = 3,
                       seed: int = 0) -> pd.Series:
    """Permutation importance over features: the rise in error (MSE, or log-loss for classes) when one feature's
    sequences are shuffled across recordings, averaged over ``n_repeats``; largest first."""
    sequences = recording_sequences(windows, model.features_, target=target)
    truth = sequences.keys[target].to_numpy()
    base = model.error(sequences.values, truth)
    rng = np.random.default_rng(seed)
    rises = {}
    for j, name in enumerate(model.features_):
        total = 0.0
        for _ in range(n_repeats):
            donors = rng.permutation(len(sequences.values))
            shuffled = []
            for i, values in enumerate(sequences.values):
                donor = sequences.values[donors[i]][:, j]
                copy = values.copy()
                copy[:, j] = np.resize(donor, len(values))
                shuffled.append(copy)
            total += model.error(shuffled, truth) - base
        rises[name] = total / n_repeats
    return pd.Series(rises).sort_values(ascending=False)


def time_importance(model: SequenceModel, windows: pd.DataFrame, target: str) -> pd.Series:
    """Importance over time: the rise in error when window position ``k`` of every recording is blanked (all its
    features missing), for each position; index = window position."""
    sequences = recording_sequences(windows, model.features_, target=target)
    truth = sequences.keys[target].to_numpy()
    base = model.error(sequences.values, truth)
    longest = max(len(v) for v in sequences.values)
    rises = {}
    for k in range(longest):
        blanked = []
        for values in sequences.values:
            copy = values.copy()
            if k < len(copy):
                copy[k] = np.nan
            blanked.append(copy)
        rises[k] = model.error(blanked, truth) - base
    return pd.Series(rises, name="error_rise")


def recording_baseline(name: str, task: str, seed: int):  # type: ignore[no-untyped-def]
    """The recording-level baseline ``name`` (:data:`RECORDING_BASELINES`) as an unfitted pipeline: median
    imputation, then the learner (ridge and logistic regression on signed-log, standardised inputs)."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler


    log = FunctionTransformer(signed_log)
    # the penalties are chosen inside the training fold (RidgeCV: leave-one-out; LogisticRegressionCV: 3 folds)
    steps = {"ridge": [("log", log), ("scale", StandardScaler()),
                       ("model", RidgeCV(alphas=np.logspace(-1, 4, 11)))],
             "logistic": [("log", log), ("scale", StandardScaler()),
                          ("model", LogisticRegressionCV(Cs=np.logspace(-3, 1, 5).tolist(), max_iter=5000))],
             "xgboost": [("model", xgboost_estimator("XGBRegressor" if task == "regression" else "XGBClassifier",
                                                     seed))],
             "mean": [("model", DummyRegressor(strategy="mean"))],
             "majority": [("model", DummyClassifier(strategy="prior"))]}[name]
    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)), *steps])


def cross_validate_recordings(windows: pd.DataFrame, *, target: str, groups: str = "subject_id",
                              task: str = "regression", n_splits: int = 5, folds: np.ndarray | None = None,
                              features: list[str] | None = None, seed: int = 0, model: SequenceModel | None = None,
                              baselines: tuple[str, ...] | None = None) -> dict[str, CVResult]:
    """Subject-grouped CV at the recording level: the sequence model and the recording-level baselines on the same
    folds (``folds``: one fold number per recording in :func:`recording_sequences` order). Returns name ->
    :class:`~geoengage.modeling.cv.CVResult` (one prediction per recording)."""
    data = scorable_windows(windows, target)
    if groups not in data.columns:
        raise SchemaError(f"cross_validate_recordings: the windows lack the group column {groups!r}.")
    chosen = list(features or feature_columns(data))
    model = clone(model).set_params(task=task, features=chosen) if model is not None else SequenceModel(
        task, features=chosen, random_state=seed)  # the caller's model is left as it was
    sequences = recording_sequences(data, chosen, target=target, groups=groups)
    aggregated = aggregate_sequences(sequences, chosen)
    truth = aggregated[target].to_numpy()
    if folds is None:
        folds = make_folds(aggregated, target=target, groups=groups, n_splits=n_splits, random_state=seed)
    elif len(folds) != len(aggregated):
        raise InvalidParameterError(f"`folds` must have one entry per recording ({len(aggregated)}).")
    window_fold = np.empty(len(data), dtype=int)
    for rows, fold in zip(sequences.rows, folds, strict=True):
        window_fold[rows] = fold
    aggregate_columns = [c for c in aggregated.columns if "__rec_" in c]
    names = (f"{model.cell}", *(baselines if baselines is not None else RECORDING_BASELINES[task]))
    results = {}
    classes: tuple[object, ...] = ()
    if task == "classification":
        truth = canonical_labels(truth)
        classes = tuple(sorted(set(truth.tolist()), key=lambda v: (isinstance(v, str), v)))
    audit = audit_leakage(aggregated, folds, groups=groups, features=aggregate_columns)
    for name in names:
        predicted = np.empty(len(truth), dtype=object if task == "classification" else np.float64)
        proba = np.zeros((len(truth), len(classes)))
        decision: dict[str, object] = {}
        for fold in np.unique(folds):
            test, train = folds == fold, folds != fold
            if name == model.cell:
                fitted = clone(model).fit(data[window_fold != fold], data.loc[window_fold != fold, target].to_numpy())
                table = fitted.predict_recordings(data[window_fold == fold])
                order = table.set_index([k for k in RECORDING_KEYS if k in table.columns]).index
                mine = aggregated[test].set_index([k for k in RECORDING_KEYS if k in aggregated.columns]).index
                table = table.set_index(order).loc[mine]
                decision[str(int(fold))] = {"epochs": fitted.epochs_}
                if task == "regression":
                    predicted[test] = table["prediction"].to_numpy(np.float64)
                else:
                    proba[test] = table[[f"proba_{c}" for c in fitted.classes_]].to_numpy()
                    predicted[test] = table["prediction"].to_numpy()
            else:
                estimator = recording_baseline(name, task, seed)
                X = aggregated[aggregate_columns].to_numpy(np.float64)
                if task == "regression":
                    predicted[test] = estimator.fit(X[train], truth[train].astype(np.float64)).predict(X[test])
                else:
                    codes = np.array([classes.index(v) for v in truth.tolist()])
                    estimator.fit(X[train], codes[train])
                    p = np.zeros((int(test.sum()), len(classes)))
                    p[:, estimator.classes_] = estimator.predict_proba(X[test])
                    proba[test] = p
                    predicted[test] = np.array(classes, dtype=object)[p.argmax(axis=1)]
        if task == "regression":
            predictions = pd.DataFrame({"row": np.arange(len(truth)), "fold": folds,
                                        "group": aggregated[groups].to_numpy(), "y_true": truth.astype(np.float64),
                                        "y_pred": predicted})
            results[name] = CVResult(predictions, (), tuple(chosen), name, "subject", audit, (), decision)
        else:
            positive = classes[1:]
            predictions = prediction_table(aggregated, folds, groups, truth, predicted, proba, classes, positive)
            results[name] = CVResult(predictions, classes, tuple(chosen), name, "subject", audit, positive, decision)
    return results
