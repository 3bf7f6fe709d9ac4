"""Per-frame rows -> windows in one step: the recipe, and the one function every entry point calls.

A :class:`Recipe` says how a per-frame table becomes windows: the cleaning (:class:`~geoengage.clean.CleanConfig`),
the window length and step, the face coverage a window needs to be scored, and the features each window gets
(:class:`~geoengage.windows.FeatureSet`). :func:`frames_to_windows` applies it: :func:`~geoengage.clean.clean_frames`,
then :func:`~geoengage.windows.make_windows`. ``geoengage extract`` (:func:`geoengage.dataset.build_dataset`),
``geoengage import`` (:func:`geoengage.dataset.import_dataset`), scoring a recording
(:func:`geoengage.predict.predict_frames`, the service) and live mode all call it, so a table is windowed the same
way wherever it is made.

A trained model carries the recipe of its training table (its ``settings_``, saved beside its weights); its
``recipe`` property (:func:`recipe_from_settings`) reads it back, and scoring refuses a table made with another one
(:func:`geoengage.predict.check_settings`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .clean import CleanConfig, CleanResult, clean_frames
from .config import check_setting, config_from_dict
from .windows import FeatureSet, make_windows

__all__ = ["Recipe", "WindowChanges", "Windowed", "frames_to_windows", "recipe_from_settings"]


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """How a per-frame table becomes windows.

    Parameters
    ----------
    clean : CleanConfig
        The cleaning rules (:mod:`geoengage.clean`).
    window_s, step_s : float
        Window length and the step between window starts, seconds.
    min_coverage : float
        Share of a window's frames that must have the face for the window to be scored (``window_ok``).
    features : FeatureSet or str
        The window features: a :class:`~geoengage.windows.FeatureSet`, or the name or TOML file of one
        (:func:`geoengage.windows.load_feature_set`: ``"default"``, ``"audit_clean"``, ...).
    """

    clean: CleanConfig = field(default_factory=CleanConfig)
    window_s: float = 10.0
    step_s: float = 5.0
    min_coverage: float = 0.6
    features: FeatureSet | str = "default"

    def __post_init__(self) -> None:
        check_setting(self.window_s > 0 and self.step_s > 0, "window_s and step_s", "> 0",
                      (self.window_s, self.step_s))
        check_setting(0 <= self.min_coverage <= 1, "min_coverage", "between 0 and 1", self.min_coverage)

    def with_windows(self, changes: WindowChanges) -> Recipe:
        """The same recipe with the window length, step or coverage rule ``changes`` sets (None keeps this one's)."""
        changed: dict[str, Any] = {k: v for k, v in dataclasses.asdict(changes).items() if v is not None}
        return dataclasses.replace(self, **changed) if changed else self


@dataclass(frozen=True, kw_only=True)
class WindowChanges:
    """Windows other than a model's own, asked for where a recording is scored
    (:class:`geoengage.predict.PredictConfig`, the service's :class:`~geoengage.serve.config.ServeConfig`, live
    mode's :class:`~geoengage.live.LiveConfig`): each setting left ``None`` keeps the model's recipe's. Scoring logs a
    changed length or step, since the model learnt from windows of its own.

    Parameters
    ----------
    window_s, step_s : float or None
        Window length and step in seconds (a still image is one window whatever these are).
    min_coverage : float or None
        Share of a window's frames that must have the face for the window to be scored.
    """

    window_s: float | None = None
    step_s: float | None = None
    min_coverage: float | None = None

    def __post_init__(self) -> None:
        check_setting(all(v is None or v > 0 for v in (self.window_s, self.step_s)), "window_s and step_s",
                      "None or > 0", (self.window_s, self.step_s))
        check_setting(self.min_coverage is None or 0 <= self.min_coverage <= 1, "min_coverage",
                      "None or between 0 and 1", self.min_coverage)


@dataclass(frozen=True)
class Windowed:
    """What :func:`frames_to_windows` made: the windows, and the cleaning's account (what it masked, and why)."""

    windows: pd.DataFrame
    cleaning: CleanResult


def frames_to_windows(frames: pd.DataFrame, recipe: Recipe) -> Windowed:
    """Clean a per-frame table and aggregate it into windows, as ``recipe`` says."""
    cleaned = clean_frames(frames, config=recipe.clean)
    windows = make_windows(cleaned.frames, window_s=recipe.window_s, step_s=recipe.step_s,
                           min_coverage=recipe.min_coverage, feature_set=recipe.features)
    return Windowed(windows, cleaned)


def recipe_from_settings(settings: dict[str, Any], features: FeatureSet) -> Recipe:
    """The recipe a model's recorded ``settings`` (its training table's: ``windows`` and ``clean``) describe, with
    the model's ``features``; :class:`Recipe`'s defaults where a setting was not recorded."""
    windows = settings.get("windows") or {}
    return Recipe(window_s=float(windows.get("window_s", Recipe.window_s)),
                  step_s=float(windows.get("step_s", Recipe.step_s)),
                  min_coverage=float(windows.get("min_coverage", Recipe.min_coverage)),
                  clean=config_from_dict(settings.get("clean") or {}, CleanConfig,
                                         where="the model's cleaning settings"),
                  features=features)
