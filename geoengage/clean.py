"""Per-frame table -> cleaned per-frame table: outliers, short gaps, subject baselines.

Stateless and per recording (or per subject): nothing here is fitted across subjects, so
it cannot leak between cross-validation folds. In order:

1. **Outliers**: the robust z-score ``0.6745 (x - median) / MAD`` of every feature column,
   per recording (``scope="recording"``) or per subject (``scope="subject"``); values with
   ``|z| > z_max`` are masked (set to NaN, ``action="mask"``) or clipped to the threshold
   (``action="clip"``). A constant signal (MAD = 0) is never flagged; NaN stays NaN.
2. **Short gaps**: within each face track of a recording, runs of missing values lasting at
   most ``max_gap_s`` (no face, a masked outlier, a closed eye's gaze) are interpolated
   linearly in time; longer runs and runs at either end stay NaN. ``face_found`` is not
   changed; the ``interpolated`` column marks rows where any value was filled.
3. **Baseline** (optional, ``baseline="subject_median"``): every feature minus the subject's
   own median, so features read as changes from that person's usual value.

:func:`clean_frames` returns a :class:`CleanResult` whose counts (outliers and filled
values per feature) go into the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .exceptions import InvalidParameterError
from .geometry.registry import feature_specs
from .schema import FRAMES, track_keys, validate

__all__ = ["CleanConfig", "CleanResult", "clean_frames", "feature_columns_in", "fill_short_gaps", "robust_z"]

#: Flags and counts are not cleaned: an outlier rule on a 0/1 column makes no sense.
_NOT_CLEANED = frozenset({"blink", "on_screen"})


@dataclass(frozen=True, kw_only=True)
class CleanConfig:
    """Cleaning settings (see the module docstring)."""

    z_max: float = 3.5
    action: str = "mask"
    scope: str = "recording"
    max_gap_s: float = 0.25
    baseline: str = "none"

    def __post_init__(self) -> None:
        if not self.z_max > 0:
            raise InvalidParameterError(f"`z_max` must be > 0. Got {self.z_max!r} instead.")
        if self.action not in ("mask", "clip"):
            raise InvalidParameterError(f"`action` must be 'mask' or 'clip'. Got {self.action!r} instead.")
        if self.scope not in ("recording", "subject"):
            raise InvalidParameterError(f"`scope` must be 'recording' or 'subject'. Got {self.scope!r} instead.")
        if not self.max_gap_s >= 0:
            raise InvalidParameterError(f"`max_gap_s` must be >= 0. Got {self.max_gap_s!r} instead.")
        if self.baseline not in ("none", "subject_median"):
            raise InvalidParameterError(
                f"`baseline` must be 'none' or 'subject_median'. Got {self.baseline!r} instead.")


@dataclass(frozen=True)
class CleanResult:
    """The cleaned table and what cleaning did: per-feature counts of outliers and filled values."""

    frames: pd.DataFrame
    outliers: pd.Series
    filled: pd.Series

    def to_dict(self) -> dict[str, object]:
        return {"outliers": {k: int(v) for k, v in self.outliers.items() if v},
                "filled": {k: int(v) for k, v in self.filled.items() if v},
                "n_rows": len(self.frames)}


def robust_z(values: pd.Series) -> pd.Series:
    """``0.6745 (x - median) / MAD``; all NaN when the MAD is 0, so a constant signal is never flagged."""
    deviation = values - values.median()
    mad = deviation.abs().median()
    return 0.6745 * deviation / mad if mad > 0 else values * np.nan


def fill_short_gaps(values: pd.Series, time_s: pd.Series, *, max_gap_s: float) -> pd.Series:
    """Interpolate (in time) runs of missing values whose span is at most ``max_gap_s``; edges stay NaN.

    A run's span is the time from its first to its last missing frame plus one frame period,
    so ``max_gap_s = 0.1`` at 30 fps fills runs of up to 3 frames.
    """
    missing = values.isna().to_numpy()
    if not missing.any() or missing.all():
        return values
    times = time_s.to_numpy(dtype=np.float64)
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    run_id = np.cumsum(np.r_[True, missing[1:] != missing[:-1]])
    fill = np.zeros(len(values), dtype=bool)
    for run in np.unique(run_id[missing]):
        rows = np.flatnonzero(run_id == run)
        inside = rows[0] > 0 and rows[-1] < len(values) - 1
        if inside and times[rows[-1]] - times[rows[0]] + period <= max_gap_s + 1e-9:
            fill[rows] = True
    if not fill.any():
        return values
    known = ~missing
    filled = values.copy()
    filled.iloc[fill] = np.interp(times[fill], times[known], values.to_numpy(dtype=np.float64)[known])
    return filled


def feature_columns_in(frames: pd.DataFrame) -> list[str]:
    """The numeric feature columns of a per-frame table: the registry's, plus imported ones (``au*``, ``expr_*``)."""
    registry = [s.name for s in feature_specs() if s.name in frames.columns and s.name not in _NOT_CLEANED]
    imported = [c for c in frames.columns if c.startswith(("au", "expr_")) and pd.api.types.is_float_dtype(frames[c])]
    return registry + [c for c in imported if c not in registry]


def clean_frames(frames: pd.DataFrame, *, config: CleanConfig | None = None) -> CleanResult:
    """Mask or clip outliers, fill short gaps and optionally subtract subject baselines.

    Parameters
    ----------
    frames : DataFrame
        Per-frame table (from ``extract_frames`` or an importer); not modified.
    config : CleanConfig, optional

    Returns
    -------
    CleanResult
    """
    config = config or CleanConfig()
    validate(frames, FRAMES, where="clean_frames")
    if config.scope == "subject" or config.baseline == "subject_median":
        if "subject_id" not in frames.columns:
            raise InvalidParameterError(
                "`scope='subject'` and `baseline='subject_median'` need a 'subject_id' column "
                "(add it in the manifest).")
    columns = feature_columns_in(frames)
    table = frames.sort_values(["video_id", "time_s", "track_id"], kind="stable").copy()
    scope = "subject_id" if config.scope == "subject" else "video_id"

    values = table[columns].astype(np.float64)
    groups = table[scope]
    median = values.groupby(groups, sort=False).transform("median")
    deviation = values - median
    mad = deviation.abs().groupby(groups, sort=False).transform("median")
    z = 0.6745 * deviation / mad.where(mad > 0)  # MAD 0 (constant signal): z is NaN, never flagged
    flagged = z.abs() > config.z_max
    outliers = flagged.sum().astype(np.int64)
    if config.action == "mask":
        values = values.mask(flagged)
    else:
        bound = config.z_max * mad / 0.6745
        values = values.mask(flagged, values.clip(median - bound, median + bound))
    table[columns] = values

    before = table[columns].isna()
    positions = [table.columns.get_loc(c) for c in columns]
    missing = before.to_numpy()
    for rows in table.groupby(track_keys(table), sort=False).indices.values():  # rows are in time order: the table is sorted
        if len(rows) < 3:
            continue
        gaps = missing[rows]
        times = table["time_s"].iloc[rows]
        for k in np.flatnonzero(gaps.any(axis=0) & ~gaps.all(axis=0)):
            values_k = table.iloc[rows, positions[k]]
            table.iloc[rows, positions[k]] = fill_short_gaps(values_k, times, max_gap_s=config.max_gap_s).to_numpy()
    filled_mask = before & table[columns].notna()
    table["interpolated"] = filled_mask.any(axis=1).to_numpy()

    if config.baseline == "subject_median":
        table[columns] = table[columns] - table.groupby("subject_id")[columns].transform("median")
    return CleanResult(table.loc[frames.index], outliers, filled_mask.sum().astype(np.int64))
