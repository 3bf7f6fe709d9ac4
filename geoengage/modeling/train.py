"""Windows -> a fitted engagement model with named classes, saved without pickle.

:class:`EngagementModel` is a scikit-learn classifier (``fit``, ``predict``, ``predict_proba``,
``classes_``) over window tables. What it adds to the bare pipeline (median imputer + XGBoost):

- **Named classes** (:mod:`geoengage.modeling.labels`): ``classes_`` in a stated order (numbers in
  numeric order, never string order) and ``positive_``, the classes that count as engaged;
  :meth:`EngagementModel.engagement_probability` is the sum of their probabilities.
- **Imbalance**: the decision rule below (and, optionally, ``class_weight="balanced"``, which weights every class
  equally in training).
- **Calibration and decisions chosen inside the training data**: an inner subject-grouped split of the
  training windows gives out-of-fold probabilities; a multinomial logistic map on their log-probabilities
  calibrates them (undoing the class weights' pull), and the decision rule is fitted on them:
  for two classes, the threshold on P(positive) with the best balanced accuracy; for more, the most
  probable class after dividing by the training prior (the rule that maximises balanced accuracy).
  Inside :func:`geoengage.modeling.cv.cross_validate` this all happens within each training fold.
- **Nested tuning** (``tune=True``): the XGBoost depth and number of trees are chosen by the same inner
  grouped split (log-loss), never on test subjects.
- **Train/serve parity**: ``settings_`` (feature set, cleaning, window and extraction settings of the
  training table) and ``feature_ranges_`` (each feature's training minimum and maximum) are saved;
  :func:`geoengage.predict.score_windows` refuses tables made with other settings and flags values outside
  the training range (by more than :data:`RANGE_MARGIN`, 5%, of it).

:meth:`EngagementModel.save` writes ``model.json`` (XGBoost's JSON) and ``model.meta.json`` (everything
else, plain JSON). :func:`load_tabular_model` reads them back (schema ``geoengage.model/2``; models written by
geoengage's first schema load with numeric classes and no calibration).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_array, check_is_fitted

from .._version import __version__
from ..exceptions import InvalidParameterError, ModelFileError, SchemaError
from ..geometry.registry import feature_specs
from ..recipe import Recipe, recipe_from_settings
from ..schema import float_columns
from ..windows import FeatureSet, parse_feature_name
from .estimators import make_estimator
from .folds import feature_columns, stratified_group_folds
from .labels import canonical_labels, classes_ordered, resolve_classes

__all__ = ["DEFAULT_MODEL_DIR", "MODEL_ESTIMATORS", "MODEL_SCHEMA_VERSION", "EngagementModel", "fit_model",
           "load_default_model", "load_tabular_model"]

logger = logging.getLogger(__name__)
MODEL_SCHEMA_VERSION = "geoengage.model/2"
#: The engagement model shipped inside the package (models/train.py --ship; card: models/MODEL_CARD_engagement.md).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "engagement_default"
#: XGBoost settings tried by ``tune=True`` (the rest as in :func:`geoengage.modeling.estimators.make_estimator`).
#: Learners of :class:`EngagementModel`: XGBoost classes, XGBoost on the class position (ordinal: the classes'
#: order is used, probabilities come from a calibration map of the regressed position), and two baselines.
MODEL_ESTIMATORS = ("xgboost", "xgboost_ordinal", "logistic", "majority")
#: Learners whose fitted model can be saved (as JSON, never pickled).
SAVABLE = ("xgboost", "xgboost_ordinal", "logistic")
#: A window's feature counts as outside the training range (``out_of_range``) only beyond the training minimum or
#: maximum by more than this share of the range: counting any excess would flag every confident expression
#: (probabilities of 1e-11 against a training minimum of 1e-8) as an extrapolation.
RANGE_MARGIN = 0.05
#: A scored window is flagged ``uncertain`` where the model was measured weak on data sets it never saw
#: (benchmarks/engagement_selection.py): a feature outside the training range (on WACV held out, engaged-vs-not AUC
#: 0.57 on those 2.3% of windows against 0.75 on the rest), a face in under this share of the window's frames, or a
#: predicted class that was under :data:`UNCERTAIN_RARE_CLASS` of the training windows.
UNCERTAIN_MIN_COVERAGE = 0.8
UNCERTAIN_RARE_CLASS = 0.05

TUNING_GRID = ({"max_depth": 2, "n_estimators": 200}, {"max_depth": 3, "n_estimators": 300},
               {"max_depth": 4, "n_estimators": 300}, {"max_depth": 3, "n_estimators": 600, "learning_rate": 0.025})


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def as_windows(X: Any) -> pd.DataFrame:
    """A window table from ``X``: a DataFrame with ``<signal>__<agg>`` columns as it is; any other 2-D input
    (scikit-learn's array convention) checked as numbers (NaN allowed: the model fills it; inf, sparse, complex or
    empty input is refused) and named ``x0__value``, ``x1__value``..."""
    if isinstance(X, pd.DataFrame) and any("__" in str(c) for c in X.columns):
        return X
    array = check_array(X, ensure_all_finite="allow-nan", dtype=np.float64)
    return pd.DataFrame(array, columns=[f"x{j}__value" for j in range(array.shape[1])])


class EngagementModel(ClassifierMixin, BaseEstimator):
    """A classifier over window features with named classes, calibrated probabilities and a decision rule.

    Parameters
    ----------
    estimator : {"xgboost", "xgboost_ordinal", "logistic", "majority"}
        The learner. ``"xgboost_ordinal"`` regresses the class position (for ordered classes such as engagement
        levels) and maps it to class probabilities with a multinomial logistic calibration fitted on inner
        out-of-fold positions. Only XGBoost models can be saved.
    features : list of str, optional
        Window feature columns to use (default: every ``<signal>__<agg>`` column of the training table).
    classes : list, optional
        Class order, least to most engaged (default: numeric order for numbers; names need ``positive``).
    positive : list, optional
        Classes that count as engaged (default: every class but the first).
    class_weight : {None, "balanced"}
        ``"balanced"`` weights classes equally in training. Off by default: on engagement_wacv and DAiSEE it
        lowered AUC (0.859 -> 0.839 and 0.60 -> 0.52 on DAiSEE validation), while the calibrated decision rule
        below gives the minority class its recall without it.
    calibrate : bool
        Calibrate probabilities on inner out-of-fold predictions (needs at least 2 groups).
    decision : {"balanced", "argmax"}
        How a class is chosen: for balanced accuracy (threshold or prior-corrected, see the module
        docstring) or the most probable class.
    threshold : float, optional
        For two classes, a fixed threshold on P(positive) instead of the fitted one.
    tune : bool
        Choose XGBoost's depth and trees on the inner grouped split (nested inside any outer CV).
    inner_splits : int
        Folds of the inner split.
    random_state : int
    """

    def __init__(self, estimator: str = "xgboost", *, features: list[str] | None = None,
                 classes: list[object] | None = None, positive: list[object] | None = None,
                 class_weight: str | None = None, calibrate: bool = True, decision: str = "balanced",
                 threshold: float | None = None, tune: bool = False, inner_splits: int = 3,
                 random_state: int = 0) -> None:
        self.estimator = estimator
        self.features = features
        self.classes = classes
        self.positive = positive
        self.class_weight = class_weight
        self.calibrate = calibrate
        self.decision = decision
        self.threshold = threshold
        self.tune = tune
        self.inner_splits = inner_splits
        self.random_state = random_state

    # --- fitting -------------------------------------------------------------------------------------------
    @property
    def _ordinal(self) -> bool:
        return self.estimator == "xgboost_ordinal"

    def _pipeline(self, params: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
        kind = "xgboost_regressor" if self._ordinal else self.estimator
        pipeline = make_estimator(kind, random_state=self.random_state)
        if params:
            pipeline.set_params(**{f"model__{k}": v for k, v in params.items()})
        return pipeline

    def _fit_codes(self, X: np.ndarray, codes: np.ndarray, params: dict[str, Any] | None,
                   weight: np.ndarray | None = None):  # type: ignore[no-untyped-def]
        """A pipeline fitted on ``codes``, renumbered to the classes present (XGBoost needs 0..m-1); the ordinal
        model regresses the class position itself. ``weight``: per-window sample weights (``fit``'s
        ``sample_weight``), multiplied by the class weights."""
        present = np.unique(codes)
        compact = np.searchsorted(present, codes)
        pipeline = self._pipeline(params)
        fit_params = {}
        if weight is not None:
            fit_params["model__sample_weight"] = np.asarray(weight, dtype=np.float64)
        if self.class_weight == "balanced" and self.estimator != "majority":
            counts = np.bincount(compact)
            balanced = (len(compact) / (len(present) * counts))[compact]
            fit_params["model__sample_weight"] = balanced * fit_params.get("model__sample_weight", 1.0)
        if self._ordinal:
            pipeline.fit(X, codes.astype(np.float64), **fit_params)
            return pipeline, np.arange(len(self.classes_))
        pipeline.fit(X, compact, **fit_params)
        return pipeline, present

    def _raw(self, pipeline, present: np.ndarray, X: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
        """The learner's own output: class probabilities (n, classes) or, ordinal, the regressed position (n, 1)."""
        if self._ordinal:
            return pipeline.predict(X)[:, None]
        proba = np.zeros((len(X), len(self.classes_)))
        proba[:, present] = pipeline.predict_proba(X)
        return proba

    def _inner_folds(self, codes: np.ndarray, groups: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
        if groups is not None and len(pd.unique(groups)) >= self.inner_splits:
            folds = stratified_group_folds(codes, np.asarray(groups), self.inner_splits, self.random_state)
            return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(self.inner_splits)]
        if groups is not None:
            return []  # too few subjects for an honest inner split
        smallest = np.bincount(codes).min()
        if smallest < 2:
            return []
        splitter = StratifiedKFold(n_splits=min(self.inner_splits, int(smallest)), shuffle=True,
                                   random_state=self.random_state)
        return list(splitter.split(np.zeros(len(codes)), codes))

    def _out_of_fold(self, X: np.ndarray, codes: np.ndarray, folds: list, params: dict[str, Any] | None,
                     weight: np.ndarray | None = None) -> np.ndarray:
        raw = np.zeros((len(codes), 1 if self._ordinal else len(self.classes_)))
        for train, test in folds:
            pipeline, present = self._fit_codes(X[train], codes[train], params,
                                                None if weight is None else weight[train])
            raw[test] = self._raw(pipeline, present, X[test])
        return raw

    def fit(self, X: pd.DataFrame, y: Any, *, groups: Any = None, settings: dict[str, Any] | None = None,
            sample_weight: Any = None) -> EngagementModel:
        """Fit on the windows ``X`` with labels ``y``; ``groups`` (default ``X["subject_id"]``) for the inner split.

        ``sample_weight`` (one non-negative number per window, e.g. from
        :func:`geoengage.modeling.selection.pool_weights`) weights every fit: the learner's, the inner folds' and
        so the calibration and decision rule fitted on them.

        ``settings`` (feature set, cleaning, windows, extraction) default to ``X.attrs["geoengage"]``, which
        :func:`geoengage.dataset.read_windows` and :func:`geoengage.windows.make_windows` fill in.
        """
        if self.estimator not in MODEL_ESTIMATORS:
            raise InvalidParameterError(f"`estimator` must be one of {MODEL_ESTIMATORS}. Got {self.estimator!r} instead.")
        if self.decision not in ("balanced", "argmax"):
            raise InvalidParameterError(f"`decision` must be 'balanced' or 'argmax'. Got {self.decision!r} instead.")
        if y is None:
            raise InvalidParameterError("EngagementModel requires y to be passed, but the target y is None.")
        X = as_windows(X)
        if len(X) == 0:
            raise InvalidParameterError("no windows to learn from (0 samples).")
        y = np.asarray(y, dtype=object)
        if y.ndim == 2 and y.shape[1] == 1:
            from sklearn.exceptions import DataConversionWarning

            warnings.warn("A column-vector y was passed when a 1d array was expected: raveled (one label per "
                          "window).", DataConversionWarning, stacklevel=2)
            y = y.ravel()
        if y.ndim != 1:
            raise InvalidParameterError(f"`y` must hold one label per window. Got shape {y.shape}.")
        labels = canonical_labels(y)
        if len(labels) != len(X):
            raise InvalidParameterError(f"`y` has {len(labels)} labels for {len(X)} windows.")
        keep = np.array([v is not None for v in labels])
        if "window_ok" in X.columns:  # scoring never scores a window without enough face; training does not learn one
            keep &= X["window_ok"].fillna(False).to_numpy(dtype=bool)
        if groups is None and "subject_id" in X.columns and X["subject_id"].notna().any():
            groups = X["subject_id"].to_numpy()
        groups = None if groups is None else np.asarray(groups, dtype=object)[keep]
        weight = None
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype=np.float64)
            if weight.shape != (len(X),) or not np.all(np.isfinite(weight)) or (weight < 0).any():
                raise InvalidParameterError(f"`sample_weight` must hold one finite non-negative number per window "
                                            f"({len(X)}). Got shape {weight.shape}.")
            weight = weight[keep]
            if not weight.sum() > 0:
                raise InvalidParameterError("`sample_weight`: all weights are zero; nothing to learn from.")
        data, labels = X.loc[keep], labels[keep]
        self.classes_, self.positive_ = (np.asarray(v, dtype=object) for v in resolve_classes(
            labels, classes=self.classes, positive=self.positive))
        self.classes_ordered_ = classes_ordered(labels, classes=self.classes)
        if self._ordinal and not self.classes_ordered_:
            raise InvalidParameterError(
                f"the ordinal model learns along the classes' order, and the labels are names "
                f"{sorted(map(str, self.classes_))} without one: give it from least to most engaged "
                "(classes=[...], CLI --classes a,b,c), or choose another estimator.")
        if len(np.unique(labels)) < 2:
            raise InvalidParameterError(f"the labels must have at least two classes to learn; one class given: "
                                        f"{sorted(set(labels), key=str)}.")
        self.features_ = list(self.features or feature_columns(data))
        if not self.features_:
            raise SchemaError("the windows have no feature columns (<signal>__<agg>).")
        missing = [f for f in self.features_ if f not in data.columns]
        if missing:
            raise SchemaError(f"the windows lack the features {missing[:5]}.")
        matrix = data[self.features_].astype(np.float64).to_numpy()
        codes = np.array([list(self.classes_).index(v) for v in labels])
        folds = self._inner_folds(codes, groups) if self.estimator != "majority" else []
        tunable = self.tune and self.estimator in ("xgboost", "xgboost_ordinal")
        self.best_params_ = self._tune(matrix, codes, folds, weight) if tunable else {}
        self.calibration_ = None
        self.threshold_ = None if self.threshold is None else float(self.threshold)
        calibrate = self.calibrate or self._ordinal  # the ordinal model's probabilities come from its calibration
        if folds and (calibrate or self.decision == "balanced"):
            oof = self._out_of_fold(matrix, codes, folds, self.best_params_, weight)
            if calibrate and len(np.unique(codes)) == len(self.classes_):
                self.calibration_ = self._fit_calibration(oof, codes)
            oof = self._apply_calibration(oof)
            if self.decision == "balanced" and len(self.classes_) == 2 and self.threshold is None:
                self.threshold_ = _balanced_threshold(oof[:, 1], codes == 1)
        self.priors_ = np.bincount(codes, minlength=len(self.classes_)) / len(codes)
        pipeline, present = self._fit_codes(matrix, codes, self.best_params_, weight)
        if len(present) != len(self.classes_) or len(np.unique(codes)) != len(self.classes_):
            raise InvalidParameterError(f"the training labels lack the classes "
                                        f"{[c for k, c in enumerate(self.classes_) if k not in codes]}.")
        self.pipeline_ = pipeline
        if self._ordinal and self.calibration_ is None:  # no inner split: map positions to classes in-sample
            self.calibration_ = self._fit_calibration(self._raw(pipeline, present, matrix), codes)
        imputer = pipeline.named_steps["impute"]
        self.medians_ = [float(v) if np.isfinite(v) else 0.0 for v in imputer.statistics_]
        finite = np.where(np.isfinite(matrix), matrix, np.nan)
        with warnings.catch_warnings():  # an all-missing feature has no range
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)
        self.feature_ranges_ = {f: [float(a), float(b)] for f, a, b in zip(self.features_, low, high, strict=True)
                                if np.isfinite(a)}
        self.settings_ = dict(settings if settings is not None else data.attrs.get("geoengage", {}))
        self.training_ = {
            "n_windows": len(data), "class_counts": {str(c): int((codes == k).sum()) for k, c in enumerate(self.classes_)},
            "n_subjects": None if groups is None else len(pd.unique(groups)), "inner_splits": len(folds)}
        self.n_features_in_ = len(self.features_)
        return self

    def _tune(self, X: np.ndarray, codes: np.ndarray, folds: list, weight: np.ndarray | None = None
              ) -> dict[str, Any]:
        if not folds:
            return {}
        losses = []
        for params in TUNING_GRID:
            raw = self._out_of_fold(X, codes, folds, params, weight)
            if self._ordinal:  # squared error of the regressed class position
                losses.append(float(np.mean((raw[:, 0] - codes) ** 2)))
                continue
            proba = np.clip(raw, 1e-6, 1)
            proba /= proba.sum(axis=1, keepdims=True)
            losses.append(float(-np.mean(np.log(proba[np.arange(len(codes)), codes]))))
        best = dict(TUNING_GRID[int(np.argmin(losses))])
        logger.info("tuning: inner-fold loss %s -> %s", [round(v, 4) for v in losses], best)
        return best

    def _calibration_input(self, raw: np.ndarray) -> np.ndarray:
        """What the calibration map reads: log-probabilities (two classes: their difference) or the position."""
        if self._ordinal:
            return raw
        z = np.log(np.clip(raw, 1e-6, 1))
        return z[:, [1]] - z[:, [0]] if raw.shape[1] == 2 else z

    def _fit_calibration(self, raw: np.ndarray, codes: np.ndarray) -> dict[str, list]:
        from sklearn.linear_model import LogisticRegression

        fitted = LogisticRegression(C=1.0, max_iter=1000).fit(self._calibration_input(raw), codes)
        return {"coef": fitted.coef_.tolist(), "intercept": fitted.intercept_.tolist()}

    def _apply_calibration(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities from the learner's raw output."""
        if self.calibration_ is None:
            if self._ordinal:
                raise SchemaError("this ordinal model has no calibration map: it cannot give class probabilities.")
            return raw
        coef, intercept = np.asarray(self.calibration_["coef"]), np.asarray(self.calibration_["intercept"])
        z = self._calibration_input(raw)
        if len(self.classes_) == 2:
            p1 = 1 / (1 + np.exp(-(z @ coef.T + intercept)))
            return np.hstack([1 - p1, p1])
        return _softmax(z @ coef.T + intercept)

    # --- predicting ----------------------------------------------------------------------------------------
    def _matrix(self, windows: pd.DataFrame) -> np.ndarray:
        """The feature matrix of ``windows`` with missing values replaced by the training medians."""
        present = set(windows.columns.tolist())
        missing = [f for f in self.features_ if f not in present]
        if missing:
            raise SchemaError(f"the windows lack {len(missing)} features this model was trained on, e.g. "
                              f"{missing[:5]}: make them with the same feature set "
                              f"({(self.settings_.get('windows') or {}).get('feature_set', 'unknown')}).")
        X = float_columns(windows, self.features_)
        return np.where(np.isnan(X), np.asarray(self.medians_), X)

    @property
    def booster(self):  # type: ignore[no-untyped-def]
        """The fitted learner (for XGBoost: the ``XGBClassifier`` that SHAP explains)."""
        return self.pipeline_.named_steps["model"]

    def raw_output(self, windows: pd.DataFrame) -> np.ndarray:
        """The learner's output before calibration (what SHAP explains): probabilities, or the ordinal position."""
        check_is_fitted(self, "pipeline_")
        table = as_windows(windows)
        if table is not windows and table.shape[1] != self.n_features_in_:
            raise InvalidParameterError(f"X has {table.shape[1]} features, but EngagementModel is expecting "
                                        f"{self.n_features_in_} features as input.")
        return self._raw(self.pipeline_[1:], np.arange(len(self.classes_)), self._matrix(table))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated class probabilities, ``(n, len(classes_))`` in ``classes_`` order."""
        return self._apply_calibration(self.raw_output(X))

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing features are filled with the training medians
        return tags

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Class index per row of ``proba`` by the fitted decision rule."""
        if len(self.classes_) == 2 and self.threshold_ is not None:
            return (proba[:, 1] >= self.threshold_).astype(int)
        if self.decision == "balanced":
            return (proba / np.maximum(self.priors_, 1e-9)).argmax(axis=1)
        return proba.argmax(axis=1)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The class of each window (names from ``classes_``: an integer, float or text array)."""
        decided = self.decide(self.predict_proba(X))
        return np.asarray(self.classes_[decided].tolist())

    def score(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of :meth:`predict` against ``y`` (labels compared as canonical labels, so "1" equals 1)."""
        truth = canonical_labels(np.asarray(y, dtype=object))
        predicted = self.predict(X).astype(object)
        weights = np.ones(len(truth)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        return float(np.sum(weights * (truth == predicted)) / np.sum(weights))

    def engagement_probability(self, X: pd.DataFrame) -> np.ndarray:
        """P(any positive class) per window: the sum of the engaged classes' probabilities."""
        return self.engaged(self.predict_proba(X))

    def engaged(self, proba: np.ndarray) -> np.ndarray:
        """The engaged classes' summed probability, per row of ``proba`` (columns in ``classes_`` order)."""
        return proba[:, np.isin(self.classes_, self.positive_)].sum(axis=1)

    def decision_record(self) -> dict[str, object]:
        """The fitted decision rule, as reports record it per fold: threshold, tuned parameters, calibration."""
        return {"threshold": self.threshold_, "best_params": self.best_params_,
                "calibrated": self.calibration_ is not None}

    def proba_frame(self, windows: pd.DataFrame) -> pd.DataFrame:
        """Probabilities as a DataFrame, columns ``proba_<class>``, indexed like ``windows``."""
        return pd.DataFrame(self.predict_proba(windows), columns=[f"proba_{c}" for c in self.classes_],
                            index=windows.index)

    def out_of_range(self, windows: pd.DataFrame) -> list[list[str]]:
        """Per window, the features whose value lies outside the training minimum-maximum by more than
        :data:`RANGE_MARGIN` of that range (a confident face's disgust probability of 1e-12 where training saw
        1e-9 at least is no extrapolation)."""
        present = set(windows.columns.tolist())
        names = [f for f in self.features_ if f in self.feature_ranges_ and f in present]
        if not names:
            return [[] for _ in range(len(windows))]
        values = float_columns(windows, names)
        low = np.array([self.feature_ranges_[f][0] for f in names])
        high = np.array([self.feature_ranges_[f][1] for f in names])
        margin = RANGE_MARGIN * (high - low)
        outside = (values < low - margin) | (values > high + margin)
        return [[names[j] for j in np.flatnonzero(row)] for row in outside]

    def uncertainty(self, windows: pd.DataFrame, decided: np.ndarray,
                    outside: list[list[str]] | None = None) -> list[list[str]]:
        """Per window, why its score is less sure than the held-out figures say (empty: no reason): features outside
        the training range, a face in under :data:`UNCERTAIN_MIN_COVERAGE` of the window, or a predicted class
        (``decided``: class positions) that was under :data:`UNCERTAIN_RARE_CLASS` of the training windows."""
        outside = self.out_of_range(windows) if outside is None else outside
        coverage = (windows["coverage"].to_numpy(np.float64) if "coverage" in windows.columns
                    else np.ones(len(windows)))
        reasons: list[list[str]] = []
        for names, cover, k in zip(outside, coverage, np.asarray(decided), strict=True):
            found = []
            if names:
                found.append(f"{len(names)} feature(s) outside the training range")
            if cover < UNCERTAIN_MIN_COVERAGE:
                found.append(f"face in {cover:.0%} of the window")
            if self.priors_[k] < UNCERTAIN_RARE_CLASS:
                found.append(f"predicted class {self.classes_[k]} was {self.priors_[k]:.1%} of training")
            reasons.append(found)
        return reasons

    @property
    def target(self) -> str:
        return str(self.training_.get("target", "engagement"))

    def describe(self) -> dict[str, Any]:
        """What was fitted, as plain values: feature count, classes, the engaged ones, threshold, training record."""
        return {"features": len(self.features_), "classes": self.classes_.tolist(), "positive": self.positive_.tolist(),
                "threshold": self.threshold_, "training": self.training_}

    @property
    def recipe(self) -> Recipe:
        """How new windows must be made for this model: its training table's cleaning, window length, step and
        coverage rule (:func:`geoengage.recipe.recipe_from_settings`) and its features."""
        return recipe_from_settings(self.settings_ or {},
                                    FeatureSet("model", tuple(parse_feature_name(f) for f in self.features_)))

    # --- saving --------------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``model.json`` (XGBoost's JSON; for logistic regression, its scaler and coefficients as JSON) and
        ``model.meta.json`` into ``folder``."""
        if self.estimator not in SAVABLE:
            raise InvalidParameterError(f"models of {SAVABLE} can be saved; this one is {self.estimator!r}.")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / "model.json.tmp.json"  # XGBoost picks the format from the suffix: JSON
        if self.estimator == "logistic":
            scaler, linear = self.pipeline_.named_steps["scale"], self.booster
            staged.write_text(json.dumps({"kind": "logistic", "scale_mean": scaler.mean_.tolist(),
                                          "scale": scaler.scale_.tolist(), "coef": linear.coef_.tolist(),
                                          "intercept": linear.intercept_.tolist(),
                                          "classes": linear.classes_.tolist()}))
        else:
            self.booster.save_model(staged)
        digest = hashlib.sha256(staged.read_bytes()).hexdigest()
        specs = {s.name: s for s in feature_specs()}
        described = []
        for name in self.features_:
            parsed = parse_feature_name(name)
            described.append({"name": name, "signal": parsed.signal, "agg": parsed.agg, "param": parsed.param,
                              "unit": specs[parsed.signal].unit if parsed.signal in specs else ""})
        meta = {"schema": MODEL_SCHEMA_VERSION, "geoengage": __version__, "params": self.get_params(),
                "classes": self.classes_.tolist(), "positive": self.positive_.tolist(),
                "classes_ordered": bool(getattr(self, "classes_ordered_", True)),
                "priors": self.priors_.tolist(), "threshold": self.threshold_, "calibration": self.calibration_,
                "best_params": self.best_params_, "features": described, "imputer_medians": self.medians_,
                "feature_ranges": self.feature_ranges_, "settings": self.settings_, "training": self.training_,
                "model_sha256": digest}
        (folder / "model.meta.json.tmp").write_text(json.dumps(meta, indent=2, default=str))
        os.replace(staged, folder / "model.json")  # both written in full first: no half-written model is left
        os.replace(folder / "model.meta.json.tmp", folder / "model.meta.json")
        return folder


def _balanced_threshold(p_positive: np.ndarray, truth: np.ndarray) -> float:
    """The threshold on P(positive) with the best balanced accuracy (midpoint of the best plateau's edges)."""
    if truth.all() or not truth.any():
        return 0.5
    candidates = np.unique(np.round(p_positive, 4))
    best, score = 0.5, -1.0
    for t in candidates:
        predicted = p_positive >= t
        value = (np.mean(predicted[truth]) + np.mean(~predicted[~truth])) / 2
        if value > score + 1e-12:
            best, score = float(t), value
    return best


def fit_model(windows: pd.DataFrame, *, target: str, features: list[str] | None = None, random_state: int = 0,
              settings: dict[str, Any] | None = None, sample_weight: Any = None, **params: Any) -> EngagementModel:
    """Fit an :class:`EngagementModel` (XGBoost unless ``estimator=``) on every labelled window of ``windows``."""
    if target not in windows.columns:
        raise SchemaError(f"fit_model: the windows lack the target column {target!r}.")
    model = EngagementModel(features=features, random_state=random_state, **params)
    model.fit(windows, windows[target].to_numpy(), settings=settings, sample_weight=sample_weight)
    model.training_["target"] = target
    return model


def load_tabular_model(folder: str | Path) -> EngagementModel:
    """Read a model written by :meth:`EngagementModel.save` (XGBoost JSON and plain JSON, never pickle); models of
    either kind: :func:`geoengage.modeling.protocol.load_model`."""
    from xgboost import XGBClassifier, XGBRegressor

    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.meta.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InvalidParameterError(f"{folder}: not a geoengage model folder ({err}).") from err
    schema = meta.get("schema")
    if schema not in (MODEL_SCHEMA_VERSION, "geoengage.model/1"):
        raise SchemaError(f"{folder}: model schema {schema!r}; this geoengage reads {MODEL_SCHEMA_VERSION!r}. "
                          "Retrain it with `geoengage train`.")
    expected = meta.get("model_sha256")  # models saved before it was recorded are not checked
    if expected is not None:
        try:
            actual = hashlib.sha256((folder / "model.json").read_bytes()).hexdigest()
        except OSError as err:
            raise ModelFileError(f"{folder / 'model.json'}: cannot be read ({err.strerror or err}).") from err
        if actual != expected:
            raise ModelFileError(f"{folder / 'model.json'}: damaged or altered model file: SHA-256 {actual[:16]}..., "
                                 f"expected {expected} (recorded in model.meta.json); save or reinstall it again.")
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    estimator = meta.get("params", {}).get("estimator")
    if estimator == "logistic":
        steps = _linear_steps(folder / "model.json")
    else:
        booster = XGBRegressor() if estimator == "xgboost_ordinal" else XGBClassifier()
        try:
            booster.load_model(folder / "model.json")
        except Exception as err:  # xgboost raises its own XGBoostError for a bad file
            raise SchemaError(f"{folder / 'model.json'}: not an XGBoost JSON model ({err}).") from err
        steps = [("model", booster)]

    if schema == "geoengage.model/1":  # classes stored as text, no calibration, first class = not engaged
        classes = canonical_labels(meta["classes"])
        meta = {**meta, "params": {"calibrate": False, "decision": "argmax"}, "classes": classes.tolist(),
                "positive": classes[1:].tolist(), "priors": [1 / len(classes)] * len(classes), "threshold": None,
                "calibration": None, "best_params": {}, "feature_ranges": {},
                "settings": {}, "training": {**meta.get("training", {}), "target": meta.get("target")}}
    model = EngagementModel(**{k: v for k, v in meta["params"].items() if k in EngagementModel().get_params()})
    model.classes_ = np.asarray(meta["classes"], dtype=object)
    model.classes_ordered_ = bool(meta.get("classes_ordered", True))  # files written before it: ordered
    model.positive_ = np.asarray(meta["positive"], dtype=object)
    model.priors_ = np.asarray(meta["priors"])
    model.threshold_ = meta["threshold"]
    model.calibration_ = meta["calibration"]
    model.best_params_ = meta["best_params"]
    model.features_ = [f["name"] for f in meta["features"]]
    model.medians_ = meta["imputer_medians"]
    model.feature_ranges_ = meta["feature_ranges"]
    model.settings_ = meta["settings"]
    model.training_ = meta["training"]
    model.n_features_in_ = len(model.features_)
    model.pipeline_ = Pipeline([("impute", SimpleImputer()), *steps])
    return model


def _linear_steps(path: Path) -> list[tuple[str, Any]]:
    """The fitted scaler and logistic regression a logistic model's ``model.json`` holds (plain JSON numbers)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    try:
        saved = json.loads(path.read_text())
        mean, scale = np.asarray(saved["scale_mean"], float), np.asarray(saved["scale"], float)
        coef, intercept = np.asarray(saved["coef"], float), np.asarray(saved["intercept"], float)
        classes = np.asarray(saved["classes"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SchemaError(f"{path}: not a geoengage logistic model ({err}).") from err
    if coef.ndim != 2 or coef.shape[1] != len(mean) or len(scale) != len(mean):
        raise SchemaError(f"{path}: the scaler and coefficients do not fit together ({coef.shape}, {len(mean)}).")
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = mean, scale, scale**2
    scaler.n_features_in_, scaler.n_samples_seen_ = len(mean), 0
    linear = LogisticRegression()
    linear.coef_, linear.intercept_, linear.classes_, linear.n_features_in_ = coef, intercept, classes, len(mean)
    return [("scale", scaler), ("model", linear)]


@lru_cache(maxsize=1)
def load_default_model() -> EngagementModel:
    """The engagement model shipped with geoengage (see models/MODEL_CARD_engagement.md), loaded once per process."""
    return load_tabular_model(DEFAULT_MODEL_DIR)
