"""Estimators for window features: XGBoost and the baselines every run reports beside it.

Each is a scikit-learn :class:`~sklearn.pipeline.Pipeline` whose fitted steps (the median
imputer, the scaler) live inside it, so cross-validation refits them on each training fold
and nothing learnt from test subjects leaks into the model. xgboost is imported lazily.
"""

from __future__ import annotations

from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..exceptions import InvalidParameterError, MissingDependencyError

__all__ = ["ESTIMATORS", "REGRESSORS", "make_estimator", "xgboost_estimator"]

ESTIMATORS = ("xgboost", "logistic", "majority", "xgboost_regressor", "ridge", "mean")
#: Estimators that predict a number (engagement scores) rather than a class.
REGRESSORS = ("xgboost_regressor", "ridge", "mean")


def xgboost_estimator(name: str, random_state: int):  # type: ignore[no-untyped-def]
    """XGBClassifier or XGBRegressor with geoengage's settings (shallow trees, slow learning, one thread)."""
    try:
        import xgboost
    except ImportError as err:
        raise MissingDependencyError("the XGBoost model needs xgboost: pip install xgboost.") from err
    return getattr(xgboost, name)(n_estimators=300, max_depth=3, learning_rate=0.05, subsample=0.8,
                                  colsample_bytree=0.8, min_child_weight=2, reg_lambda=1.0, n_jobs=1,
                                  random_state=random_state, tree_method="hist")


def make_estimator(kind: str = "xgboost", *, random_state: int = 0) -> Pipeline:
    """A pipeline: classifiers ``"xgboost"``, ``"logistic"``, ``"majority"``; regressors ``"xgboost_regressor"``,
    ``"ridge"``, ``"mean"`` (the last of each group is the baseline that always answers the same)."""
    impute = ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
    models = {
        "xgboost": lambda: [("model", xgboost_estimator("XGBClassifier", random_state))],
        "logistic": lambda: [("scale", StandardScaler()),
                             ("model", LogisticRegression(max_iter=5000, C=0.1))],
        "majority": lambda: [("model", DummyClassifier(strategy="most_frequent"))],
        "xgboost_regressor": lambda: [("model", xgboost_estimator("XGBRegressor", random_state))],
        "ridge": lambda: [("scale", StandardScaler()), ("model", Ridge(alpha=10.0))],
        "mean": lambda: [("model", DummyRegressor(strategy="mean"))],
    }
    if kind not in models:
        raise InvalidParameterError(f"`kind` must be one of {ESTIMATORS}. Got {kind!r} instead.")
    return Pipeline([impute, *models[kind]()])
