"""Windows -> a fitted model of either kind: the one protocol window (tabular) and recording (sequence) models share.

geoengage has two kinds of engagement model:

- **tabular** (:class:`~geoengage.modeling.train.EngagementModel`): one prediction per window, from that window's
  features (XGBoost, its ordinal variant or logistic regression);
- **sequence** (:class:`~geoengage.modeling.sequence.SequenceModel`, ``"gru"`` or ``"lstm"``): one prediction per
  recording, from its windows in order (and, scoring with time, one per window from the windows so far).

Both answer the same calls (the :class:`Model` protocol):

==============================================  =================================================================
call                                            meaning
==============================================  =================================================================
``fit(windows, y, *, groups, settings)``        learn from a window table; ``groups`` keep subjects together in
                                                every inner split, ``settings`` say how the table was made
``predict(windows)``, ``predict_proba``         a class (or an intensity) per window / per recording
``classes_``, ``features_``, ``settings_``      the class order (empty for intensities), the window features
                                                read, how the training table was made
``recipe``                                      the :class:`~geoengage.recipe.Recipe` new windows must be made
                                                with (cleaning, window length and step, coverage, features)
``describe()``                                  what was fitted, as plain values (printed by ``geoengage train``)
``save(folder)``                                weights and a meta file (JSON with the weights' SHA-256; never
                                                a pickle); :func:`load_model` reads either kind back
==============================================  =================================================================

So :func:`train` (``ge.train``, ``geoengage train``), :func:`load_model` (``ge.load_model``),
:func:`geoengage.predict.score` (``ge.score``, ``geoengage score``) and :func:`geoengage.evaluation.evaluate`
(``ge.evaluate``, ``geoengage evaluate``) take either kind by the same arguments: ``model="tabular"`` (default),
``"gru"`` or ``"lstm"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..dataset import read_windows
from ..exceptions import InvalidParameterError, SchemaError
from ..recipe import Recipe
from .folds import scorable_windows
from .pooling import DATASET, pool_datasets, pool_weights
from .sequence import SequenceModel, load_sequence_model
from .train import fit_model, load_tabular_model

__all__ = ["MODEL_KINDS", "Model", "check_kind", "default_task", "labelled_table", "load_model", "model_kind",
           "train"]

#: The kinds of model :func:`train` fits: window models (XGBoost and its baselines) and the two recurrent cells.
MODEL_KINDS = ("tabular", "gru", "lstm")


@runtime_checkable
class Model(Protocol):
    """What every geoengage engagement model answers (see the module docstring)."""

    classes_: np.ndarray
    features_: list[str]
    settings_: dict[str, Any]

    def fit(self, windows: pd.DataFrame, y: Any, *, groups: Any = None,
            settings: dict[str, Any] | None = None) -> Model: ...

    def predict(self, windows: pd.DataFrame) -> np.ndarray: ...

    def predict_proba(self, windows: pd.DataFrame) -> np.ndarray: ...

    @property
    def recipe(self) -> Recipe: ...

    def describe(self) -> dict[str, Any]: ...

    def save(self, folder: str | Path) -> Path: ...


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`MODEL_KINDS`, else an :class:`InvalidParameterError` listing them."""
    if kind not in MODEL_KINDS:
        raise InvalidParameterError(f"`model` must be one of {MODEL_KINDS}. Got {kind!r} instead.")
    return kind


def model_kind(model: Model) -> str:
    """``"tabular"`` for a window model, the recurrent cell (``"gru"``, ``"lstm"``) for a sequence model."""
    return model.cell if isinstance(model, SequenceModel) else "tabular"


def labelled_table(windows: pd.DataFrame | str | Path, target: str, *, where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A window table (read from ``windows.parquet`` if a path) and its windows a model learns from: labelled, with
    enough face (:func:`~geoengage.modeling.folds.scorable_windows`); a :class:`SchemaError` naming ``where`` when
    the table has no ``target`` column."""
    table = read_windows(windows) if isinstance(windows, (str, Path)) else windows
    if target not in table.columns:
        raise SchemaError(f"{where}: the windows lack the target column {target!r}.")
    return table, scorable_windows(table, target)


def default_task(data: pd.DataFrame, target: str) -> str:
    """A sequence model's task when none is given: ``"regression"`` for numeric labels, else ``"classification"``."""
    return "regression" if pd.api.types.is_numeric_dtype(data[target]) else "classification"


def train(windows: pd.DataFrame | str | Path | Mapping[str, pd.DataFrame | str | Path], *, target: str,
          model: str = "tabular", out: str | Path | None = None, features: list[str] | None = None,
          classes: list[object] | None = None, random_state: int = 0, task: str | None = None,
          label_maps: Mapping[str, Mapping[object, object]] | None = None, weights: str = "none",
          **params: Any) -> Model:
    """Fit a model of kind ``model`` on a window table (or ``windows.parquet``) and save it into ``out`` if given.

    The model records how the table was made (its ``windows.meta.json``, or the table's ``attrs``) for the parity
    check when it scores. ``windows`` may also map several data sets' names to their tables (window models):
    they are pooled onto one label coding (``label_maps``, see :func:`geoengage.modeling.selection.pool_datasets`)
    and weighted by ``weights`` (:func:`~geoengage.modeling.selection.pool_weights`); the settings recorded are the
    first set's, with every set's name, label map and the weights.

    ``params`` are the kind's options: :class:`~geoengage.modeling.train.EngagementModel`'s (``estimator``,
    ``positive``, ``class_weight``, ``calibrate``, ``decision``, ``threshold``, ``tune``...) or
    :class:`~geoengage.modeling.sequence.SequenceModel`'s (``hidden``, ``max_epochs``, ``n_seeds``...; ``task``
    defaults to regression for numeric labels, else classification).
    """
    check_kind(model)
    weight = None
    if isinstance(windows, Mapping):
        if model != "tabular":
            raise InvalidParameterError(f"{len(windows)} window tables given: sequence models read the recordings of "
                                        "one data set; pool data sets with the window (tabular) models.")
        read = {name: read_windows(t) if isinstance(t, (str, Path)) else t for name, t in windows.items()}
        table = scorable_windows(pool_datasets(read, target=target, label_maps=label_maps), target)
        weight = pool_weights(table, weights)
        maps = {k: {str(a): b for a, b in v.items()} for k, v in (label_maps or {}).items()}
        settings = {**next(iter(read.values())).attrs.get("geoengage", {}),
                    "pooled": {"datasets": {name: int((table[DATASET] == name).sum()) for name in read},
                               "label_maps": maps, "weights": weights}}
    else:
        table, data = labelled_table(windows, target, where="train")
        settings = dict(table.attrs.get("geoengage", {}))
    fitted: Model
    if model == "tabular":
        fitted = fit_model(table, target=target, features=features, classes=classes, random_state=random_state,
                           settings=settings, sample_weight=weight, **params)
    else:  # a sequence model learns from the labelled windows with a face (one table: pooling was refused above)
        fitted = SequenceModel(task or default_task(data, target), cell=model, features=features, classes=classes,
                               random_state=random_state, **params).fit(data, target, settings=settings)
    if out is not None:
        fitted.save(out)
    return fitted


def load_model(folder: str | Path) -> Model:
    """Read back a model of either kind saved by its ``save`` (the meta file in ``folder`` says which)."""
    folder = Path(folder)
    if (folder / "sequence.meta.json").is_file():
        return load_sequence_model(folder)
    return load_tabular_model(folder)
