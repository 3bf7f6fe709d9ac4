"""Per-frame table -> scored windows: engagement probability and the reasons behind it.

This is the stage the demo, the ``predict`` service and live mode share. It runs the
stages after extraction on one recording (or image): cleaning, windows, the engagement
model (the shipped default unless another is given) and SHAP reasons per window.

Scored windows are the window table (:func:`geoengage.windows.make_windows`) plus:

=========================  ===========  ===============================================================
column                     unit         meaning
=========================  ===========  ===============================================================
``engagement_<class>``     probability  model probability of each class (default model: 0, 1, 2)
``engagement_pred``        class        most probable class
``engagement_probability`` probability  probability of being engaged at all: 1 - P(first class)
``reasons``                list         up to ``top_reasons`` dicts ``{feature, value, text,
                                        contribution}`` pushing towards the predicted class (SHAP)
``reason_text``            text         the same in words (``"predicted 0: gaze on screen in 40% ..."``)
=========================  ===========  ===============================================================

A window without enough face (``window_ok`` False: coverage below ``min_coverage``) is **not scored**:
its probabilities and ``engagement_probability`` are NaN, ``engagement_pred`` is missing and it has
no reasons. A score there would come from filled-in values, not from a face.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .clean import CleanConfig, CleanResult, clean_frames
from .config import ExtractConfig, _check
from .extract import extract_frames
from .modeling.train import EngagementModel, load_default_model
from .windows import make_windows

__all__ = ["PredictConfig", "Prediction", "predict_frames", "predict_media", "score_windows"]


@dataclass(frozen=True, kw_only=True)
class PredictConfig:
    """How a recording's frames become scored windows.

    Parameters
    ----------
    window_s, step_s : float
        Window length and step in seconds (a still image is one window whatever these are).
    min_coverage : float
        Windows with a smaller share of face frames get ``window_ok=False`` and no score.
    top_reasons : int
        Reasons (features pushing towards the predicted class) kept per window; 0 skips SHAP.
    """

    window_s: float = 1.0
    step_s: float = 0.5
    min_coverage: float = 0.6
    top_reasons: int = 3

    def __post_init__(self) -> None:
        _check(self.window_s > 0, "window_s", "> 0", self.window_s)
        _check(self.step_s > 0, "step_s", "> 0", self.step_s)
        _check(0 <= self.min_coverage <= 1, "min_coverage", "between 0 and 1", self.min_coverage)
        _check(0 <= self.top_reasons <= 20, "top_reasons", "between 0 and 20", self.top_reasons)


@dataclass(frozen=True)
class Prediction:
    """What :func:`predict_frames` produced: the per-frame table, cleaning counts, scored windows."""

    frames: pd.DataFrame
    cleaning: CleanResult
    windows: pd.DataFrame


def score_windows(windows: pd.DataFrame, *, model: EngagementModel | None = None, top_reasons: int = 3) -> pd.DataFrame:
    """A copy of ``windows`` with the engagement columns described in the module docstring."""
    model = model or load_default_model()
    windows = windows.reset_index(drop=True)
    ok = windows["window_ok"].to_numpy(dtype=bool) if "window_ok" in windows else np.ones(len(windows), dtype=bool)
    columns = {f"engagement_{c}": np.full(len(windows), np.nan) for c in model.classes}
    pred = pd.Series(pd.NA, index=windows.index, dtype="object")
    reasons: list[list[dict]] = [[] for _ in range(len(windows))]
    texts = [""] * len(windows)
    rows = np.flatnonzero(ok)
    if len(rows):
        scorable = windows.iloc[rows]
        proba = model.predict_proba(scorable)
        for c in model.classes:
            columns[f"engagement_{c}"][rows] = proba[f"proba_{c}"].to_numpy()
        pred.iloc[rows] = np.asarray(model.predict(scorable), dtype=object)
        if top_reasons:
            from .report.explain import explain_model, reasons_in_words, top_reasons as reasons_of

            explained = reasons_of(explain_model(model, scorable), top=top_reasons)
            for row, (label, found) in zip(rows, explained, strict=True):
                reasons[row] = found
                texts[row] = reasons_in_words(label, found, contributions=False)
    return windows.assign(**columns, engagement_pred=pred,
                          engagement_probability=1.0 - columns[f"engagement_{model.classes[0]}"],
                          reasons=reasons, reason_text=texts)


def predict_frames(frames: pd.DataFrame, *, config: PredictConfig | None = None,
                   model: EngagementModel | None = None) -> Prediction:
    """Clean one recording's per-frame table, window it and score every window."""
    config = config or PredictConfig()
    cleaned = clean_frames(frames, config=CleanConfig())
    windows = make_windows(cleaned.frames, window_s=config.window_s, step_s=config.step_s,
                           min_coverage=config.min_coverage)
    return Prediction(frames, cleaned, score_windows(windows, model=model, top_reasons=config.top_reasons))


def predict_media(source: str | int | Path, *, extract: ExtractConfig | None = None,
                  config: PredictConfig | None = None, model: EngagementModel | None = None,
                  video_id: str | None = None) -> Prediction:
    """Extract one image, video or stream and score it (:func:`extract_frames`, then :func:`predict_frames`)."""
    frames = extract_frames(source, config=extract, video_id=video_id)
    return predict_frames(frames, config=config, model=model)
