"""Per-frame table -> cleaned per-frame table: measurement errors masked, short gaps filled.

Cleaning removes **bad measurements, not rare behaviour**. A look-away, a blink or a yawn is
what the features exist to measure, so nothing is masked for being unusual; a value is masked
only when there is evidence that it was measured badly. Stateless and per face track
(:data:`~geoengage.schema.TRACK_KEYS`): nothing is fitted across subjects, so it cannot leak
between cross-validation folds, and a recording is cleaned the same alone or in a batch.

Rules (``CleanConfig.rules``; each masked value keeps its reason, counted in
:attr:`CleanResult.masked` and in the report's data-quality section):

===========  ==============================================================================================
``quality``  the landmark fit of the row is poor: pose fit residual above ``max_residual_iod`` of the
             inter-ocular distance, fewer than ``min_landmarks_in_frame`` of the 68 landmarks inside
             the frame, or an inter-ocular distance below ``min_iod_px``. Every feature of the row is
             masked (they all come from those landmarks or the crop they place).
``range``    a value outside its feature's physical limits (the registry's ranges; ``geoengage
             features`` lists them, and *typical* ranges are never used).
``jump``     a physically impossible excursion of the head pose or position: per track, robust z-scores
             (median/MAD) of the rate of change (frame-to-frame difference / frame interval); an
             extreme jump that is undone by an extreme jump back within ``max_spike_s`` marks the
             samples between as a spike (e.g. a one-frame 35 deg yaw). A move that stays (a
             look-away) is kept. The gaze direction and on-screen estimate of a masked pose are masked too.
``level``    opt-in (``z_max`` set): the classic robust z-score on the *level* of every feature, per
             recording or subject; values with ``|z| > z_max`` are masked or clipped (``action``).
             It treats rare as wrong: a 0.4 s look-away in 10 s or a blink's eye aspect ratio is
             flagged, so it is off by default.
===========  ==============================================================================================

Then **short gaps**: within each face track, runs of missing values lasting at most ``max_gap_s``
are interpolated linearly in time; longer runs and runs at either end stay NaN, and a gap is never
bridged across a detected event: a run inside a blink, or one across which the signal changes
at an extreme rate (the ``jump`` rule's test). Rows where a value was filled have
``interpolated=True``; ``n_masked`` and ``clean_reason`` say what was masked in each row.

Last, an optional **baseline** (``baseline="subject_median"``): every feature minus the subject's
own median, so features read as changes from that person's usual value.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .exceptions import InvalidParameterError
from .geometry.registry import feature_specs
from .schema import FRAMES, TRACK_KEYS, group_rows, validate, with_columns

__all__ = [
    "RULES",
    "CleanConfig",
    "CleanResult",
    "clean_frames",
    "feature_columns_in",
    "fill_short_gaps",
    "robust_z",
    "spike_mask",
]

#: Flags and counts are not cleaned: an outlier rule on a 0/1 column makes no sense.
_NOT_CLEANED = frozenset({"blink", "on_screen", "on_screen_cnn", "ear_baseline_population", "landmarks_ok",
                          "gaze_cnn_in_range"})

RULES = ("quality", "range", "jump", "level")

#: Signals the jump rule watches, with the smallest rate of change (units per second) that can count
#: as impossible whatever the track's own spread: a head turns at up to a few hundred degrees per second.
JUMP_SIGNALS: dict[str, float] = {"yaw_deg": 150.0, "pitch_deg": 150.0, "roll_deg": 150.0,
                                  "head_x_mm": 500.0, "head_y_mm": 500.0, "head_z_mm": 1000.0}
#: Features computed from the head pose: masked with it (``on_screen``, a flag, is set unknown with it).
_POSE_DEPENDENTS = ("gaze_yaw_deg", "gaze_pitch_deg", "eye_yaw_deg", "eye_pitch_deg", "screen_x_mm", "screen_y_mm",
                    "gaze_cnn_yaw_deg", "gaze_cnn_pitch_deg", "screen_cnn_x_mm", "screen_cnn_y_mm")
#: 0/1 flags computed from the head pose: unknown where the pose was masked.
_POSE_FLAGS = ("on_screen", "on_screen_cnn")


@dataclass(frozen=True, kw_only=True)
class CleanConfig:
    """Cleaning settings (see the module docstring).

    Parameters
    ----------
    rules : tuple of {"quality", "range", "jump"}
        Measurement-error rules applied (all three by default).
    max_residual_iod, min_landmarks_in_frame, min_iod_px : float
        Thresholds of the ``quality`` rule (good dlib fits: residual 0.04-0.13 IOD).
    jump_z_max : float
        Robust z-score of a frame-to-frame rate above which a jump is extreme (``jump`` rule).
    max_spike_s : float
        Longest excursion (seconds) that counts as a spike rather than a real movement.
    z_max : float or None
        Opt-in ``level`` rule: robust z-score of the value itself; ``None`` (default) is off.
    action : {"mask", "clip"}
        What the ``level`` rule does to a flagged value.
    scope : {"recording", "subject"}
        Over what the ``level`` rule takes the median and MAD.
    max_gap_s : float
        Longest run of missing values that is interpolated (seconds).
    baseline : {"none", "subject_median"}
    """

    rules: tuple[str, ...] = ("quality", "range", "jump")
    max_residual_iod: float = 0.2
    min_landmarks_in_frame: float = 0.8
    min_iod_px: float = 15.0
    jump_z_max: float = 8.0
    max_spike_s: float = 0.1
    z_max: float | None = None
    action: str = "mask"
    scope: str = "recording"
    max_gap_s: float = 0.25
    baseline: str = "none"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))  # a list from TOML
        unknown = sorted(set(self.rules) - {"quality", "range", "jump"})
        if unknown:
            raise InvalidParameterError(
                f"`rules` must be drawn from ('quality', 'range', 'jump'). Got {unknown!r} instead. "
                "The level rule is turned on with `z_max`.")
        if self.z_max is not None and not self.z_max > 0:
            raise InvalidParameterError(f"`z_max` must be None (level rule off) or > 0. Got {self.z_max!r} instead.")
        for name in ("jump_z_max", "max_spike_s", "max_residual_iod"):
            if not getattr(self, name) > 0:
                raise InvalidParameterError(f"`{name}` must be > 0. Got {getattr(self, name)!r} instead.")
        if not 0 <= self.min_landmarks_in_frame <= 1:
            raise InvalidParameterError(
                f"`min_landmarks_in_frame` must be between 0 and 1. Got {self.min_landmarks_in_frame!r} instead.")
        if not self.min_iod_px >= 0:
            raise InvalidParameterError(f"`min_iod_px` must be >= 0. Got {self.min_iod_px!r} instead.")
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
    """The cleaned table and what cleaning did.

    Attributes
    ----------
    frames : DataFrame
        The cleaned table, same rows, order and index as the input, plus ``interpolated``,
        ``n_masked`` and ``clean_reason``.
    masked : DataFrame
        Values masked (or clipped), one row per rule (``quality``, ``range``, ``jump``, ``level``),
        one column per feature.
    filled : Series
        Values interpolated per feature.
    reasons : DataFrame
        Per value, the rule that masked it (NA where nothing was), aligned with ``frames``.
    reason_codes : ndarray
        The same as an object array (None where nothing was masked).
    """

    frames: pd.DataFrame
    masked: pd.DataFrame
    filled: pd.Series
    #: the rule per value, (rows, features) object array in the input's row order, made into ``reasons`` on first use
    reason_codes: np.ndarray = dataclasses.field(repr=False)

    @functools.cached_property
    def reasons(self) -> pd.DataFrame:
        """Per value, the rule that masked it (NA where nothing was), aligned with ``frames`` (built on first use:
        a string table of every feature costs milliseconds that scoring does not need)."""
        return pd.DataFrame(self.reason_codes, columns=self.masked.columns, index=self.frames.index, dtype="string")

    @property
    def outliers(self) -> pd.Series:
        """Values masked per feature, all rules together."""
        return self.masked.sum(axis=0).astype(np.int64)

    def to_dict(self) -> dict[str, object]:
        by_reason = {rule: {k: int(v) for k, v in row.items() if v} for rule, row in self.masked.iterrows()}
        return {"masked": {rule: counts for rule, counts in by_reason.items() if counts},
                "masked_by_reason": {rule: int(row.sum()) for rule, row in self.masked.iterrows() if row.sum()},
                "outliers": {k: int(v) for k, v in self.outliers.items() if v},
                "filled": {k: int(v) for k, v in self.filled.items() if v},
                "n_rows": len(self.frames)}


def robust_z(values: pd.Series) -> pd.Series:
    """``0.6745 (x - median) / MAD``; all NaN when the MAD is 0, so a constant signal is never flagged."""
    deviation = values - values.median()
    mad = deviation.abs().median()
    return 0.6745 * deviation / mad if mad > 0 else values * np.nan


def _extreme_rates(values: np.ndarray, times: np.ndarray, *, z_max: float, min_rate: float) -> np.ndarray:
    """Whether each rate of change between consecutive samples is extreme, shape (n - 1,)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.diff(values) / np.diff(times)
    deviation = rate - np.median(rate)
    mad = np.median(np.abs(deviation))
    z = 0.6745 * np.abs(deviation) / mad if mad > 0 else np.where(np.abs(deviation) > 0, np.inf, 0.0)
    return (z > z_max) & (np.abs(rate) > min_rate)


def spike_mask(values: np.ndarray, times: np.ndarray, *, z_max: float = 8.0, min_rate: float = 0.0,
               max_spike_s: float = 0.1) -> np.ndarray:
    """Samples of one track's signal that are spikes: an extreme jump away, undone within ``max_spike_s``.

    Parameters
    ----------
    values, times : ndarray of shape (n,)
        The signal (NaN allowed, skipped) and its times in seconds, in time order.
    z_max : float
        Robust z-score of the rate of change above which a jump is extreme.
    min_rate : float
        An extreme jump must also be faster than this (units per second).
    max_spike_s : float
        Longest excursion that is a spike.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    mask = np.zeros(len(values), dtype=bool)
    ok = np.flatnonzero(np.isfinite(values))
    if len(ok) < 4:
        return mask
    v, t = values[ok], times[ok]
    jumps = np.flatnonzero(_extreme_rates(v, t, z_max=z_max, min_rate=min_rate))
    period = float(np.median(np.diff(t)))
    for j in jumps:
        if mask[ok[j + 1]]:
            continue
        for k in jumps[jumps > j]:
            if t[k] - t[j + 1] + period > max_spike_s + 1e-9:
                break
            step_out, step_back = v[j + 1] - v[j], v[k + 1] - v[k]
            returned = abs(v[k + 1] - v[j]) <= 0.5 * abs(step_out)
            if np.sign(step_out) != np.sign(step_back) and returned:
                mask[ok[j + 1 : k + 1]] = True
                break
    return mask


def fill_short_gaps(values: pd.Series, time_s: pd.Series, *, max_gap_s: float,
                    keep: np.ndarray | None = None) -> pd.Series:
    """Interpolate (in time) runs of missing values whose span is at most ``max_gap_s``; edges stay NaN.

    A run's span is the time from its first to its last missing frame plus one frame period,
    so ``max_gap_s = 0.1`` at 30 fps fills runs of up to 3 frames. A run that contains a row of
    ``keep`` (boolean, aligned with ``values``: a detected event) is never filled.
    """
    filled = _fill_gaps(values.to_numpy(dtype=np.float64, na_value=np.nan), time_s.to_numpy(dtype=np.float64),
                        max_gap_s=max_gap_s, keep=keep)
    if filled is None:
        return values
    out = values.copy()
    out.iloc[:] = filled
    return out


def _fill_gaps(values: np.ndarray, times: np.ndarray, *, max_gap_s: float,
               keep: np.ndarray | None = None) -> np.ndarray | None:
    """:func:`fill_short_gaps` on arrays: the filled copy of ``values``, or None when nothing is filled."""
    missing = np.isnan(values)
    if not missing.any() or missing.all():
        return None
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    run_id = np.cumsum(np.r_[True, missing[1:] != missing[:-1]])
    fill = np.zeros(len(values), dtype=bool)
    for run in np.unique(run_id[missing]):
        rows = np.flatnonzero(run_id == run)
        inside = rows[0] > 0 and rows[-1] < len(values) - 1
        if keep is not None and keep[rows].any():
            continue
        if inside and times[rows[-1]] - times[rows[0]] + period <= max_gap_s + 1e-9:
            fill[rows] = True
    if not fill.any():
        return None
    known = ~missing
    filled = values.copy()
    filled[fill] = np.interp(times[fill], times[known], values[known])
    return filled


def feature_columns_in(frames: pd.DataFrame) -> list[str]:
    """The numeric feature columns of a per-frame table: the registry's, plus imported ones (``au*``, ``expr_*``)."""
    names = frames.columns.tolist()  # plain strings: membership and iteration ~10x faster than on the Index
    present = set(names)
    registry = [s.name for s in feature_specs() if s.name in present and s.name not in _NOT_CLEANED]
    dtypes = frames.dtypes
    imported = [c for c in names if c.startswith(("au", "expr_")) and pd.api.types.is_float_dtype(dtypes[c])]
    return registry + [c for c in imported if c not in registry]


def _quality_rows(table: pd.DataFrame, config: CleanConfig) -> np.ndarray:
    bad = np.zeros(len(table), dtype=bool)
    for column, test in (("pose_residual_iod", lambda v: v > config.max_residual_iod),
                         ("landmarks_in_frame", lambda v: v < config.min_landmarks_in_frame),
                         ("iod_px", lambda v: v < config.min_iod_px)):
        if column in table:
            values = table[column].to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                bad |= np.isfinite(values) & test(values)
    return bad


def _level_rule(values: pd.DataFrame, groups: pd.Series, config: CleanConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(flags, values after masking or clipping) of the opt-in robust z-score on levels."""
    median = values.groupby(groups, sort=False).transform("median")
    deviation = values - median
    mad = deviation.abs().groupby(groups, sort=False).transform("median")
    z = 0.6745 * deviation / mad.where(mad > 0)  # MAD 0 (constant signal): z is NaN, never flagged
    flagged = z.abs() > config.z_max
    if config.action == "mask":
        return flagged, values.mask(flagged)
    bound = config.z_max * mad / 0.6745
    return flagged, values.mask(flagged, values.clip(median - bound, median + bound))


def clean_frames(frames: pd.DataFrame, *, config: CleanConfig | None = None) -> CleanResult:
    """Mask measurement errors, fill short gaps and optionally subtract subject baselines.

    Parameters
    ----------
    frames : DataFrame
        Per-frame table (from ``extract_frames`` or an importer); not modified. Any index.
    config : CleanConfig, optional

    Returns
    -------
    CleanResult
    """
    config = config or CleanConfig()
    validate(frames, FRAMES, where="clean_frames")
    per_subject = (config.z_max is not None and config.scope == "subject") or config.baseline == "subject_median"
    if per_subject and "subject_id" not in frames.columns:
        raise InvalidParameterError(
            "`scope='subject'` and `baseline='subject_median'` need a 'subject_id' column "
            "(add it in the manifest).")
    columns = feature_columns_in(frames)
    # positions, not labels: a repeated or unsorted index changes nothing
    table = frames.reset_index(drop=True)
    order = np.lexsort((table["time_s"].to_numpy(dtype=np.float64), table["track_id"].to_numpy(),
                        table["video_id"].astype(str).to_numpy()))
    table = table.iloc[order].reset_index(drop=True)
    # the rules work on one float array (pandas' per-column machinery costs ~30 ms even for a one-row table)
    values = np.array(table[columns].to_numpy(dtype=np.float64, na_value=np.nan), copy=True)
    reason = np.full(values.shape, None, dtype=object)
    col = {c: i for i, c in enumerate(columns)}

    def mark(rows: np.ndarray, cols: list[int], rule: str) -> None:
        """Give ``rule`` as the reason of these values, unless an earlier rule already masked them."""
        block = reason[np.ix_(rows, cols)]
        block[pd.isna(block)] = rule
        reason[np.ix_(rows, cols)] = block

    known = np.isfinite(values)
    if "quality" in config.rules:
        bad = np.flatnonzero(_quality_rows(table, config))
        if len(bad):
            mark(bad, list(range(len(columns))), "quality")
    if "range" in config.rules:
        for spec in feature_specs():
            if spec.hard_range and spec.name in col:
                v = values[:, col[spec.name]]
                with np.errstate(invalid="ignore"):
                    out = np.flatnonzero(np.isfinite(v) & ((v < spec.low) | (v > spec.high)))
                if len(out):
                    mark(out, [col[spec.name]], "range")
    track_rows = list(group_rows(table, TRACK_KEYS).values())
    times_all = table["time_s"].to_numpy(dtype=np.float64)
    if "jump" in config.rules:
        dependents = [col[c] for c in _POSE_DEPENDENTS if c in col]
        for rows in track_rows:
            for signal, min_rate in JUMP_SIGNALS.items():
                if signal not in col:
                    continue
                v = values[rows, col[signal]]
                spikes = rows[spike_mask(v, times_all[rows], z_max=config.jump_z_max, min_rate=min_rate,
                                         max_spike_s=config.max_spike_s)]
                if len(spikes):
                    mark(spikes, [col[signal]] + (dependents if signal.endswith("_deg") else []), "jump")
    masked_any = pd.notna(reason) & known  # only values that were there count as masked
    reason[~masked_any] = None
    values[masked_any] = np.nan
    if config.z_max is not None:
        groups = table["subject_id"] if config.scope == "subject" else table["video_id"]
        level_flags, level_values = _level_rule(pd.DataFrame(values, columns=columns), groups, config)
        values = np.array(level_values.to_numpy(dtype=np.float64), copy=True)
        level = level_flags.to_numpy() & known & ~masked_any
        reason[level] = "level"
    # a 0/1 flag is not cleaned itself, but it is unknown where its pose was masked
    new_columns: dict[str, object] = {}
    pose = [col[c] for c in ("yaw_deg", "pitch_deg", "roll_deg") if c in col]
    flags = [c for c in _POSE_FLAGS if c in table]
    if pose and flags:
        unknown = pd.notna(reason[:, pose]).any(axis=1)
        for flag in flags:
            flag_values = np.array(table[flag].to_numpy(dtype=np.float64, na_value=np.nan), copy=True)
            flag_values[unknown] = np.nan
            new_columns[flag] = flag_values

    # short gaps, per track, never across a blink or an extreme change
    missing = np.isnan(values)
    blink = table["blink"].to_numpy(dtype=np.float64) if "blink" in table else np.zeros(len(table))
    for rows in track_rows:
        if len(rows) < 3:
            continue
        gaps = missing[rows]
        times = times_all[rows]
        in_blink = np.nan_to_num(blink[rows]) >= 0.5
        for k in np.flatnonzero(gaps.any(axis=0) & ~gaps.all(axis=0)):
            series = values[rows, k]
            keep = in_blink | _event_edges(series, times, columns[k], config)
            filled = _fill_gaps(series, times, max_gap_s=config.max_gap_s, keep=keep)
            if filled is not None:
                values[rows, k] = filled
    filled_mask = missing & ~np.isnan(values)
    n_masked = pd.notna(reason).sum(axis=1).astype(np.int64)
    row_reason = np.full(len(table), None, dtype=object)
    for i in np.flatnonzero(n_masked > 0):
        row_reason[i] = ",".join(sorted({r for r in reason[i] if r is not None}))
    kept = table.drop(columns=[*columns, *new_columns])
    table = pd.concat([kept, pd.DataFrame(values, columns=columns), pd.DataFrame(new_columns)], axis=1)[
        [*frames.columns]]  # the cleaned block in one piece, in the input's column order
    table = with_columns(table, {"interpolated": filled_mask.any(axis=1), "n_masked": n_masked,
                                 "clean_reason": pd.array(row_reason, dtype="string")})

    if config.baseline == "subject_median":
        table[columns] = table[columns] - table.groupby("subject_id")[columns].transform("median")

    counts = pd.DataFrame(np.stack([(reason == rule).sum(axis=0) for rule in RULES]).astype(np.int64)
                          if len(columns) else np.zeros((len(RULES), 0), np.int64), index=list(RULES), columns=columns)
    # back to the caller's row order and index
    back = np.argsort(order, kind="stable")
    cleaned = table.iloc[back]
    cleaned.index = frames.index
    cleaned.attrs["geoengage"] = {**frames.attrs.get("geoengage", {}), "clean": dataclasses.asdict(config)}
    return CleanResult(cleaned, counts, pd.Series(filled_mask.sum(axis=0).astype(np.int64), index=columns),
                       reason[back].reshape(len(frames), len(columns)))


def _event_edges(values: np.ndarray, times: np.ndarray, column: str, config: CleanConfig) -> np.ndarray:
    """Missing rows of a gap across which ``column`` changes at an extreme rate (a transition, not noise)."""
    keep = np.zeros(len(values), dtype=bool)
    ok = np.flatnonzero(np.isfinite(values))
    if len(ok) < 4:
        return keep
    extreme = _extreme_rates(values[ok], times[ok], z_max=config.jump_z_max, min_rate=JUMP_SIGNALS.get(column, 0.0))
    for j in np.flatnonzero(extreme & (np.diff(ok) > 1)):  # an extreme step over missing rows
        keep[ok[j] + 1 : ok[j + 1]] = True
    return keep
