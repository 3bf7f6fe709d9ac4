"""Windows -> a fitted engagement model, saved without pickle.

:func:`fit_model` fits the XGBoost pipeline on every labelled window. :class:`EngagementModel`
saves itself as a folder of plain files: ``model.json`` (XGBoost's own JSON format) and
``model.meta.json`` (feature names with their signal, aggregation and unit, the imputer's
medians, the classes, the schema version and a summary of the training data). Loading
checks the schema version, and predicting checks that the windows have every feature the
model was trained on, naming the missing ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..exceptions import InvalidParameterError, SchemaError
from ..geometry.registry import feature_specs
from ..windows import parse_feature_name
from .cv import feature_columns
from .estimators import make_estimator

__all__ = ["DEFAULT_MODEL_DIR", "EngagementModel", "MODEL_SCHEMA_VERSION", "fit_model", "load_default_model",
           "load_model"]

MODEL_SCHEMA_VERSION = "geoengage.model/1"
#: The engagement model shipped inside the package (models/train.py --ship; card: models/MODEL_CARD_engagement.md).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "engagement_default"


@dataclass
class EngagementModel:
    """A fitted XGBoost classifier over window features, with what it needs to be used safely."""

    booster: object  # xgboost.XGBClassifier
    features: list[str]
    medians: list[float]
    classes: list[object]
    target: str
    training: dict[str, object] = field(default_factory=dict)

    def _matrix(self, windows: pd.DataFrame) -> np.ndarray:
        missing = [f for f in self.features if f not in windows.columns]
        if missing:
            raise SchemaError(f"the windows lack {len(missing)} features this model was trained on, e.g. "
                              f"{missing[:5]}: make them with the same feature set ({self.training.get('feature_set')}).")
        X = windows[self.features].astype(np.float64).to_numpy()
        return np.where(np.isnan(X), np.asarray(self.medians), X)

    def predict_proba(self, windows: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities per window, columns ``proba_<class>``."""
        proba = self.booster.predict_proba(self._matrix(windows))  # type: ignore[attr-defined]
        return pd.DataFrame(proba, columns=[f"proba_{c}" for c in self.classes], index=windows.index)

    def predict(self, windows: pd.DataFrame) -> pd.Series:
        proba = self.predict_proba(windows).to_numpy()
        return pd.Series(np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)], index=windows.index,
                         name=f"{self.target}_pred")

    def save(self, folder: str | Path) -> Path:
        """Write ``model.json`` and ``model.meta.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(folder / "model.json")  # type: ignore[attr-defined]
        specs = {s.name: s for s in feature_specs()}
        described = []
        for name in self.features:
            parsed = parse_feature_name(name)
            unit = specs[parsed.signal].unit if parsed.signal in specs else ""
            described.append({"name": name, "signal": parsed.signal, "agg": parsed.agg, "param": parsed.param,
                              "unit": unit})
        meta = {"schema": MODEL_SCHEMA_VERSION, "geoengage": __version__, "target": self.target,
                "classes": self.classes, "features": described, "imputer_medians": self.medians,
                "training": self.training}
        (folder / "model.meta.json").write_text(json.dumps(meta, indent=2, default=str))
        return folder


def fit_model(windows: pd.DataFrame, *, target: str, features: list[str] | None = None, random_state: int = 0,
              feature_set: str = "default") -> EngagementModel:
    """Fit the XGBoost pipeline on every window with a ``target`` value."""
    if target not in windows.columns:
        raise SchemaError(f"fit_model: the windows lack the target column {target!r}.")
    data = windows[windows[target].notna()]
    if "window_ok" in data.columns:
        data = data[data["window_ok"]]
    features = list(features or feature_columns(data))
    classes = np.unique(data[target].to_numpy())
    if len(classes) < 2:
        raise InvalidParameterError(f"`{target}` must have at least two classes to learn. Got {classes.tolist()}.")
    pipeline = make_estimator("xgboost", random_state=random_state)
    X = data[features].astype(np.float64)
    pipeline.fit(X, np.searchsorted(classes, data[target].to_numpy()))
    medians = [float(v) if np.isfinite(v) else 0.0 for v in pipeline.named_steps["impute"].statistics_]
    training = {"n_windows": len(data), "class_counts": {str(k): int(v) for k, v in
                                                        data[target].value_counts().sort_index().items()},
                "n_subjects": int(data["subject_id"].nunique()) if "subject_id" in data else None,
                "feature_set": feature_set}
    return EngagementModel(pipeline.named_steps["model"], features, medians, classes.tolist(), target, training)


def load_model(folder: str | Path) -> EngagementModel:
    """Read a model written by :meth:`EngagementModel.save` (XGBoost JSON, never pickle)."""
    from xgboost import XGBClassifier

    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.meta.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InvalidParameterError(f"{folder}: not a geoengage model folder ({err}).") from err
    if meta.get("schema") != MODEL_SCHEMA_VERSION:
        raise SchemaError(f"{folder}: model schema {meta.get('schema')!r}; this geoengage reads "
                          f"{MODEL_SCHEMA_VERSION!r}. Retrain it with `geoengage train`.")
    booster = XGBClassifier()
    booster.load_model(folder / "model.json")
    return EngagementModel(booster, [f["name"] for f in meta["features"]], meta["imputer_medians"],
                           meta["classes"], meta["target"], meta.get("training", {}))


def load_default_model() -> EngagementModel:
    """The engagement model shipped with geoengage (3 classes: 0 not, 1 nominally, 2 very engaged)."""
    return load_model(DEFAULT_MODEL_DIR)
