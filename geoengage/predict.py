"""Windows -> scores: engagement probability per named class, the reasons behind it, and parity checks.

This is the stage the ``geoengage score`` command, the demo, the ``predict`` service and live mode share.
:func:`score` applies a saved model to a window table; :func:`predict_frames` runs the stages after
extraction on one recording (or image) with **the model's own cleaning and window settings**.

Scored windows are the window table (:func:`geoengage.windows.make_windows`) plus:

==========================  ===========  ===============================================================
column                      unit         meaning
==========================  ===========  ===============================================================
``engagement_<class>``      probability  calibrated probability of each class, by the model's class names
``engagement_pred``         class        the class the model's decision rule picks (its threshold or
                                         prior-corrected rule, see :mod:`geoengage.modeling.train`)
``engagement_probability``  probability  probability of being engaged: the sum over the model's engaged
                                         (``positive``) classes, whatever their position
``n_out_of_range``          count        features outside the range seen in training by > 5% of it (extrapolation)
``out_of_range``            list         their names
``uncertain``               bool         the window lies where the model was weak on held-out data sets: a
                                         feature out of range, face in under 80% of the window, or a
                                         predicted class under 5% of training (``EngagementModel.uncertainty``)
``uncertain_why``           text         those reasons, ``"; "``-separated (empty when not uncertain)
``reasons``                 list         up to ``top_reasons`` dicts ``{feature, value, text,
                                         contribution}`` pushing towards the predicted class (SHAP)
``reason_text``             text         the same in words (``"predicted engaged: gaze on screen ..."``)
==========================  ===========  ===============================================================

A window without enough face (``window_ok`` False: coverage below ``min_coverage``) is **not scored**:
its probabilities and ``engagement_probability`` are NaN, ``engagement_pred`` is missing and it has
no reasons. A score there would come from filled-in values, not from a face.

**Train/serve parity.** A model records how its training table was made (``settings_``: windows, cleaning,
extraction). :func:`check_settings` refuses a table whose window length, step or cleaning differ
(:class:`~geoengage.exceptions.SchemaError` naming each difference); a table or model that does not say how
it was made is scored with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .clean import CleanConfig, CleanResult
from .config import ExtractConfig, check_setting
from .dataset import read_windows
from .exceptions import GeoEngageWarning, SchemaError
from .extract import extract_frames
from .modeling.protocol import Model, load_model, model_kind
from .modeling.sequence import SequenceModel
from .modeling.train import EngagementModel, load_default_model
from .recipe import WindowChanges, frames_to_windows
from .report.explain import explain_model, reasons_in_words
from .report.explain import top_reasons as reasons_of
from .schema import with_columns

__all__ = ["PredictConfig", "Prediction", "check_settings", "predict_frames",
           "predict_media", "score", "score_sequence", "score_windows", "scoring_model", "sequence_windows"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PredictConfig:
    """How a recording's frames become scored windows.

    The cleaning, windows and features are the model's own (its :attr:`recipe`); ``windows`` changes its window
    length, step or coverage rule.

    Parameters
    ----------
    windows : WindowChanges
        Windows other than the model's (e.g. short windows in the demo); by default none: the model's training
        settings.
    top_reasons : int
        Reasons (features pushing towards the predicted class) kept per window; 0 skips SHAP.
    """

    windows: WindowChanges = field(default_factory=WindowChanges)
    top_reasons: int = 3

    def __post_init__(self) -> None:
        check_setting(0 <= self.top_reasons <= 20, "top_reasons", "between 0 and 20", self.top_reasons)


@dataclass(frozen=True)
class Prediction:
    """What :func:`predict_frames` produced: the per-frame table, cleaning counts, scored windows."""

    frames: pd.DataFrame
    cleaning: CleanResult
    windows: pd.DataFrame


def _comparable(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def settings_differences(trained: dict, table: dict, features: Sequence[str] = ()) -> list[str]:
    """What differs between a model's training settings and a table's (window length and step, cleaning, the
    landmark and expression model files behind the features, and the version of the features' computation; for a
    model with ``rate`` features among ``features``, the version of the window aggregations)."""
    problems = []
    mine, theirs = trained.get("windows") or {}, table.get("windows") or {}
    for key in ("window_s", "step_s"):
        if key in mine and key in theirs and float(mine[key]) != float(theirs[key]):
            problems.append(f"windows.{key}: model {mine[key]}, table {theirs[key]}")
    rates = [f for f in features if f.split("__")[1:2] == ["rate"]]
    version = theirs.get("aggregation_version", 1)  # tables made before it was recorded: version 1
    if rates and "aggregation_version" in mine and version != mine["aggregation_version"]:
        problems.append(f"windows.aggregation_version: the table's {rates[0]} was computed by other geoengage code "
                        f"(version {version} vs the model's {mine['aggregation_version']}): make the windows again")
    mine, theirs = trained.get("clean") or {}, table.get("clean") or {}
    for key in sorted(set(mine) & set(theirs)):
        if _comparable(mine[key]) != _comparable(theirs[key]):
            problems.append(f"clean.{key}: model {mine[key]}, table {theirs[key]}")
    mine, theirs = trained.get("feature_models") or {}, table.get("feature_models") or {}
    for key in sorted(set(mine) & set(theirs)):
        if mine[key] != theirs[key]:
            problems.append(f"feature_models.{key}: the table's features come from other {key} model weights "
                            f"({str(theirs[key])[:12]} vs the model's {str(mine[key])[:12]})")
    # the features' computation (geoengage.geometry.registry.FEATURES_VERSION); a table made by build_dataset before
    # it was recorded (it has feature_models but no version) came from earlier code
    mine, theirs = trained.get("features_version"), table.get("features_version")
    if mine is not None and (theirs is not None or table.get("feature_models")) and theirs != mine:
        made = "before 2" if theirs is None else theirs
        problems.append(f"features_version: the table's features were computed by other geoengage code (version "
                        f"{made} vs the model's {mine}): extract the media again")
    return problems


def check_settings(model: Model, windows: pd.DataFrame) -> None:
    """Refuse ``windows`` made with other window or cleaning settings than ``model``'s training table."""
    trained, table = model.settings_ or {}, windows.attrs.get("geoengage") or {}
    if not trained or not table:
        warnings.warn("the model or the windows do not record how they were made (window length, cleaning); "
                      "they are scored without the parity check.", GeoEngageWarning, stacklevel=3)
        return
    problems = settings_differences(trained, table, model.features_)
    if problems:
        raise SchemaError("these windows were made with other settings than the model's training data: "
                          + "; ".join(problems) + ". Make them again with the model's settings "
                          "(geoengage extract --window-s/--step-s, cleaning options) or retrain the model.")


def score_windows(windows: pd.DataFrame, *, model: EngagementModel | None = None, top_reasons: int = 3) -> pd.DataFrame:
    """A copy of ``windows`` with the engagement columns described in the module docstring (no parity check)."""
    model = model or load_default_model()
    attrs = dict(windows.attrs)
    windows = windows.reset_index(drop=True)
    ok = windows["window_ok"].to_numpy(dtype=bool) if "window_ok" in windows else np.ones(len(windows), dtype=bool)
    columns = {f"engagement_{c}": np.full(len(windows), np.nan) for c in model.classes_}
    engaged = np.full(len(windows), np.nan)
    pred = pd.Series(pd.NA, index=windows.index, dtype="object")
    reasons: list[list[dict]] = [[] for _ in range(len(windows))]
    texts = [""] * len(windows)
    outside: list[list[str]] = [[] for _ in range(len(windows))]
    doubts = [""] * len(windows)
    rows = np.flatnonzero(ok)
    if len(rows):
        scorable = windows.iloc[rows]
        proba = model.predict_proba(scorable)
        for k, c in enumerate(model.classes_):
            columns[f"engagement_{c}"][rows] = proba[:, k]
        engaged[rows] = model.engaged(proba)
        decided = model.decide(proba)
        pred.iloc[rows] = model.classes_[decided]
        for row, names in zip(rows, model.out_of_range(scorable), strict=True):
            outside[row] = names
        for row, found in zip(rows, model.uncertainty(scorable, decided, [outside[r] for r in rows]), strict=True):
            doubts[row] = "; ".join(found)
        if top_reasons:
            explained = reasons_of(explain_model(model, scorable), top=top_reasons, predicted=decided)
            for row, (label, found) in zip(rows, explained, strict=True):
                reasons[row] = found
                texts[row] = reasons_in_words(label, found, contributions=False)
    n_outside = np.array([len(v) for v in outside])
    if n_outside.any():
        logger.warning("%d of %d scored windows have features outside the training range (see out_of_range); "
                       "their scores extrapolate.", int((n_outside > 0).sum()), len(rows))
    scored = with_columns(windows, {**columns, "engagement_pred": pred, "engagement_probability": engaged,
                                    "n_out_of_range": n_outside, "out_of_range": outside,
                                    "uncertain": np.array([bool(d) for d in doubts]), "uncertain_why": doubts,
                                    "reasons": reasons,
                                    "reason_text": texts})
    scored.attrs.update(attrs)
    return scored


def scoring_model(model: Model | str | Path | None = None) -> Model:
    """The model :func:`score` applies: ``model`` itself when fitted, read from a saved model's folder, or the shipped
    default when None."""
    return load_default_model() if model is None else load_model(model) if isinstance(model, (str, Path)) else model


def score(windows: pd.DataFrame | str | Path, *, model: Model | str | Path | None = None,
          top_reasons: int = 3) -> pd.DataFrame:
    """Apply a model of either kind (a fitted one, a saved one's folder, or the shipped default unless given) to a
    window table or ``windows.parquet``: :func:`score_windows` for a window model, :func:`score_sequence` for a
    sequence model (``top_reasons`` applies to window models).

    The table must have been made with the model's window and cleaning settings (:func:`check_settings`).
    """

    table = read_windows(windows) if isinstance(windows, (str, Path)) else windows
    fitted = scoring_model(model)
    check_settings(fitted, table)
    if model_kind(fitted) == "tabular":
        return score_windows(table, model=fitted, top_reasons=top_reasons)  # type: ignore[arg-type]
    return score_sequence(table, model=fitted)  # type: ignore[arg-type]


def score_sequence(windows: pd.DataFrame, *, model: SequenceModel) -> pd.DataFrame:
    """Scoring with time: a copy of ``windows`` where each window gets the sequence model's prediction from its
    recording's windows so far (``engagement_so_far``: intensity or class; ``engagement_so_far_<class>``: class
    probabilities) and the whole recording's (``engagement_recording``). Windows without enough face are left out of
    the sequence (their columns are NaN)."""

    attrs = dict(windows.attrs)
    table = windows.reset_index(drop=True)
    ok = table["window_ok"].to_numpy(dtype=bool) if "window_ok" in table else np.ones(len(table), dtype=bool)
    out = table.copy()
    out["engagement_so_far"] = np.nan if model.task == "regression" else None
    out["engagement_recording"] = out["engagement_so_far"]
    if ok.any():
        scorable = table[ok].reset_index(drop=True)
        so_far = model.predict_so_far(scorable)
        rows = np.flatnonzero(ok)
        out.loc[rows, "engagement_so_far"] = so_far["prediction_so_far"].to_numpy()
        for c in model.classes_:
            out.loc[rows, f"engagement_so_far_{c}"] = so_far[f"proba_so_far_{c}"].to_numpy()
        final = model.predict_recordings(scorable)
        keys = [k for k in ("video_id", "track_id") if k in final.columns]
        lookup = final.set_index(keys)["prediction"]
        index = pd.MultiIndex.from_frame(scorable[keys]) if len(keys) > 1 else pd.Index(scorable[keys[0]])
        out.loc[rows, "engagement_recording"] = lookup.reindex(index).to_numpy()
    out.attrs = attrs
    return out


def sequence_windows(frames: pd.DataFrame, model: SequenceModel, *, clean: CleanConfig | None = None
                     ) -> pd.DataFrame:
    """A recording's per-frame table -> windows made as the sequence model's recipe says (its window settings and
    features, geoengage's own names; ``clean``: the cleaning, by default its own, e.g. the engagement model's so that
    both read the same cleaned frames) -> :func:`score_sequence` (the prediction from the windows so far)."""
    recipe = model.recipe if clean is None else dataclasses.replace(model.recipe, clean=clean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeoEngageWarning)
        windows = frames_to_windows(frames, recipe).windows
    return score_sequence(windows, model=model)


def predict_frames(frames: pd.DataFrame, *, config: PredictConfig | None = None,
                   model: EngagementModel | None = None) -> Prediction:
    """Clean one recording's per-frame table, window it and score every window."""
    config = config or PredictConfig()
    model = model or load_default_model()
    made = model.recipe
    recipe = made.with_windows(config.windows)
    if (recipe.window_s, recipe.step_s) != (made.window_s, made.step_s):
        logger.info("windows of %g s every %g s; the model learnt from windows of %g s every %g s",
                    recipe.window_s, recipe.step_s, made.window_s, made.step_s)
    done = frames_to_windows(frames, recipe)
    return Prediction(frames, done.cleaning, score_windows(done.windows, model=model, top_reasons=config.top_reasons))


def predict_media(source: str | int | Path, *, extract: ExtractConfig | None = None,
                  config: PredictConfig | None = None, model: EngagementModel | None = None,
                  video_id: str | None = None) -> Prediction:
    """Extract one image, video or stream and score it (:func:`extract_frames`, then :func:`predict_frames`)."""
    frames = extract_frames(source, config=extract, video_id=video_id)
    return predict_frames(frames, config=config, model=model)
