"""Per-frame table -> one row per (recording, time window): the modelling table.

Windows start at the recording's first frame and advance by ``step_s``; each spans
``window_s``. A recording spanning ``D = t_last - t_first + frame period`` seconds has

    n = floor((D - window_s) / step_s) + 1   windows when D >= window_s, else 1

(the single window of a short recording, e.g. a still image, is marked ``window_complete=False``).

Windows are made per face track (:data:`~geoengage.schema.TRACK_KEYS`: ``video_id``, ``track_id``)
over the recording's own timeline: every frame of the recording counts, and a frame where the
track has no face counts as missing, whatever other recordings are in the table. A recording
without any face gives one track, ``track_id`` -1, whose windows have coverage 0.

Each window row has the keys (``video_id``, ``track_id``, ``window_idx``, ``start_s``, ``end_s``),
every column that is constant within the recording (``subject_id``, ``label``, ...), ``n_frames``,
``coverage`` (fraction of the recording's frames in the window where the track has a face),
``window_ok`` (``coverage >= min_coverage``), and one column per
(signal, aggregation) of the feature set, named ``<signal>__<agg>[__<param>]``
(``yaw_deg__median``, ``eye_closure__above__0.5``); :func:`parse_feature_name` inverts a name.

Aggregations (:data:`AGGREGATIONS`): ``mean``, ``std``, ``median``, ``p10``, ``p90``, ``slope``
(units per second, least squares), ``frac`` (share of face frames where a 0/1 flag is 1),
``above`` (share of face frames with value >= param; PERCLOS is ``eye_closure__above__0.5``),
``rate`` (rising edges of a 0/1 flag per minute of face time, each counted in the windows holding its
first frame (:func:`onsets`); the blink rate is ``blink__rate``),
``value`` (a per-window value another tool computed, imported by :mod:`geoengage.window_tables`).
Missing values are ignored; a window whose frames all lack a signal gets NaN.
"""

from __future__ import annotations

import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import GeoEngageWarning, InvalidParameterError, SchemaError
from .schema import FRAMES, TRACK_KEYS, track_keys, validate

__all__ = ["AGGREGATIONS", "AGGREGATION_VERSION", "BASELINE_METHODS", "FeatureName", "FeatureSet", "join_labels",
           "load_feature_set", "make_windows", "n_windows", "onsets", "parse_feature_name", "relative_to_baseline"]

FEATURE_SETS_DIR = Path(__file__).resolve().parent / "feature_sets"
#: Version of the window aggregations' computation, recorded in a table's metadata and raised whenever the same
#: frames give other window values, so a model refuses windows its features were not computed like
#: (:func:`geoengage.predict.settings_differences`). 2 (2026-12-03): ``rate`` counts a flag's rises over the track's
#: whole timeline, each in the windows holding its first frame (before: a flag already up at a window's first frame
#: counted there too, so overlapping windows counted blinks twice). Tables without it are version 1.
AGGREGATION_VERSION = 2


def _slope(t: np.ndarray, v: np.ndarray, _: float | None) -> float:
    ok = np.isfinite(v)
    if ok.sum() < 2 or np.ptp(t[ok]) == 0:
        return float("nan")
    return float(np.polyfit(t[ok], v[ok], 1)[0])


def _finite(v: np.ndarray) -> np.ndarray:
    return v[np.isfinite(v)]


def onsets(flags: np.ndarray) -> np.ndarray:
    """1.0 where a 0/1 flag rises (>= 0.5 after a finite sample below it: the frame before, or across frames
    without a value), 0.0 elsewhere, NaN where the flag is missing; a flag already up at the first finite sample
    has no observed rise. :func:`make_windows` takes it over a track's whole timeline, so a blink under way
    when a window starts is the window's before it, not counted in both."""
    out = np.full(len(flags), np.nan)
    ok = np.flatnonzero(np.isfinite(flags))
    up = flags[ok] >= 0.5
    out[ok] = np.r_[False, up[1:] & ~up[:-1]].astype(float)
    return out


def _rate(t: np.ndarray, v: np.ndarray, _: float | None) -> float:
    """Rises per minute of face time; ``v`` holds :func:`onsets` of the flag (make_windows prepares them)."""
    ok = np.isfinite(v)
    if ok.sum() < 2:
        return float("nan")
    period = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    minutes = ok.sum() * period / 60.0
    return float(np.sum(v[ok])) / minutes if minutes > 0 else float("nan")


def _on_finite(func: Callable[[np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray, float | None], float]:
    def aggregate(t: np.ndarray, v: np.ndarray, param: float | None) -> float:
        values = _finite(v)
        return float(func(values)) if len(values) else float("nan")

    return aggregate


#: name -> (function(times, values, param), needs a param, doc); "rate" is given the flag's :func:`onsets`
AGGREGATIONS: dict[str, tuple[Callable[[np.ndarray, np.ndarray, float | None], float], bool, str]] = {
    "mean": (_on_finite(np.mean), False, "mean"),
    "std": (_on_finite(lambda v: np.std(v, ddof=1) if len(v) > 1 else np.nan), False, "sample standard deviation"),
    "median": (_on_finite(np.median), False, "median"),
    "p10": (_on_finite(lambda v: np.percentile(v, 10)), False, "10th percentile"),
    "p90": (_on_finite(lambda v: np.percentile(v, 90)), False, "90th percentile"),
    "slope": (_slope, False, "least-squares slope, units per second"),
    "frac": (_on_finite(lambda v: np.mean(v >= 0.5)), False, "share of face frames where a 0/1 flag is 1"),
    "above": (lambda t, v, p: _on_finite(lambda x: np.mean(x >= p))(t, v, p), True,
              "share of face frames with value >= param"),
    "rate": (_rate, False, "rising edges of a 0/1 flag per minute of face time"),
    "value": (_on_finite(np.mean), False,
              "a per-window value imported as is (geoengage.window_tables); over frames, their mean"),
}


@dataclass(frozen=True)
class FeatureName:
    """A window feature name split into its parts."""

    signal: str
    agg: str
    param: float | None = None

    def __str__(self) -> str:
        return f"{self.signal}__{self.agg}" + ("" if self.param is None else f"__{self.param:g}")


def parse_feature_name(name: str) -> FeatureName:
    """``"yaw_deg__median"`` -> ``FeatureName("yaw_deg", "median")``; the inverse of ``str()``."""
    parts = name.split("__")
    if len(parts) not in (2, 3) or not parts[0] or parts[1] not in AGGREGATIONS:
        raise InvalidParameterError(
            f"`name` must be '<signal>__<agg>[__<param>]' with agg in {sorted(AGGREGATIONS)}. Got {name!r} instead.")
    needs_param = AGGREGATIONS[parts[1]][1]
    if needs_param != (len(parts) == 3):
        raise InvalidParameterError(f"aggregation {parts[1]!r} {'needs' if needs_param else 'takes no'} parameter "
                                    f"in {name!r}.")
    return FeatureName(parts[0], parts[1], float(parts[2]) if len(parts) == 3 else None)


@dataclass(frozen=True)
class FeatureSet:
    """Which aggregations of which signals make the window features."""

    name: str
    features: tuple[FeatureName, ...]

    @property
    def columns(self) -> list[str]:
        return [str(f) for f in self.features]


def load_feature_set(spec: str | Path | FeatureSet = "default") -> FeatureSet:
    """A feature set by name (``"default"``, ``"minimal"``: shipped TOML files) or from a TOML path.

    The TOML has a ``[signals]`` table mapping each signal to a list of aggregation names,
    with parameters as ``"above__0.5"``, and optionally ``extends = "<another set>"`` (or a list of sets):
    their features first, then these.
    """
    if isinstance(spec, FeatureSet):
        return spec
    path = Path(spec)
    if not path.suffix:
        path = FEATURE_SETS_DIR / f"{spec}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in FEATURE_SETS_DIR.glob("*.toml"))
        raise InvalidParameterError(f"`feature_set` must be one of {known} or a TOML file. Got {str(spec)!r} instead.")
    data = tomllib.loads(path.read_text())
    features = tuple(parse_feature_name(f"{signal}__{agg}")
                     for signal, aggs in data.get("signals", {}).items() for agg in aggs)
    bases = data.get("extends", [])
    for base_name in reversed([bases] if isinstance(bases, str) else bases):
        if base_name == data.get("name", path.stem):
            raise InvalidParameterError(f"{path}: a feature set cannot extend itself.")
        base = load_feature_set(base_name).features
        features = base + tuple(f for f in features if f not in base)
    return FeatureSet(data.get("name", path.stem), features)


def n_windows(span_s: float, *, window_s: float, step_s: float) -> int:
    """How many windows a recording spanning ``span_s`` seconds gives (the formula in the module docstring)."""
    if span_s < window_s:
        return 1
    return int(np.floor((span_s - window_s) / step_s + 1e-9)) + 1


_WINDOW_COLUMNS = ("window_idx", "start_s", "end_s", "window_complete", "n_frames", "coverage")
_NOT_CARRIED = frozenset({"interpolated", "clean_reason", "n_masked"})


def _constant_values(table: pd.DataFrame, starts: np.ndarray) -> list[dict[str, object]]:
    """For each recording (a slice of ``table`` from each of ``starts``), its non-float columns that hold one value
    throughout it (``subject_id``, ``label``, ...) and that value: decided per recording, never across them."""
    skip = {c.name for c in FRAMES} | set(TRACK_KEYS) | _NOT_CARRIED
    dtypes = table.dtypes  # not table[c]: each column access deep-copies the table's attrs
    candidates = [c for c in table.columns.tolist() if c not in skip and not pd.api.types.is_float_dtype(dtypes[c])]
    if not candidates:
        return [{} for _ in starts]
    recording = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(table)]))
    constant = table[candidates].groupby(recording, sort=True).nunique(dropna=False).to_numpy() <= 1
    first = table[candidates].iloc[starts].to_numpy(dtype=object)
    return [{c: first[r, k] for k, c in enumerate(candidates) if constant[r, k]} for r in range(len(starts))]


def make_windows(
    frames: pd.DataFrame,
    *,
    window_s: float = 10.0,
    step_s: float = 5.0,
    feature_set: str | Path | FeatureSet = "default",
    min_coverage: float = 0.6,
) -> pd.DataFrame:
    """Aggregate a (cleaned) per-frame table into one row per recording and time window.

    Parameters
    ----------
    frames : DataFrame
        Per-frame table with features (not modified).
    window_s, step_s : float
        Window length and step, seconds.
    feature_set : str, Path or FeatureSet
        ``"default"``, ``"minimal"``, or a TOML file (see :func:`load_feature_set`).
    min_coverage : float
        Windows with a smaller share of face frames get ``window_ok=False`` (and a warning).

    Returns
    -------
    DataFrame
        One row per window (see the module docstring for its columns).
    """
    if not (window_s > 0 and step_s > 0):
        raise InvalidParameterError(f"`window_s` and `step_s` must be > 0. Got {window_s!r} and {step_s!r} instead.")
    if not 0 <= min_coverage <= 1:
        raise InvalidParameterError(f"`min_coverage` must be between 0 and 1. Got {min_coverage!r} instead.")
    validate(frames, FRAMES, where="make_windows")
    fset = load_feature_set(feature_set)
    missing = sorted({f.signal for f in fset.features} - set(frames.columns.tolist()))
    if missing:
        raise SchemaError(f"make_windows: feature set {fset.name!r} needs signals {missing} that the table lacks.")
    keys = track_keys()
    signals = sorted({f.signal for f in fset.features})
    rate_signals = sorted({signals.index(f.signal) for f in fset.features if f.agg == "rate"})
    # numpy arrays sorted once by (recording, time); each recording is a slice of them
    table = frames.reset_index(drop=True)
    videos = table["video_id"].astype(str).to_numpy()
    order = np.lexsort((table["time_s"].to_numpy(dtype=np.float64), videos))
    videos, table = videos[order], table.iloc[order].reset_index(drop=True)
    time_all = table["time_s"].to_numpy(dtype=np.float64)
    frame_all = table["frame_idx"].to_numpy(dtype=np.int64)
    track_all = table["track_id"].to_numpy(dtype=np.int64)
    face_all = table["face_found"].to_numpy(dtype=bool) & (track_all >= 0)
    value_all = table[signals].to_numpy(dtype=np.float64) if signals else np.empty((len(table), 0))
    starts = np.flatnonzero(np.r_[True, videos[1:] != videos[:-1]])
    constants = _constant_values(table, starts)
    rows = []
    for r, lo_row in enumerate(starts):
        hi_row = starts[r + 1] if r + 1 < len(starts) else len(table)
        frame_idx = frame_all[lo_row:hi_row]
        # the recording's own timeline: every frame it has, with or without a face
        _, first_of_frame = np.unique(frame_idx, return_index=True)
        timeline = np.sort(first_of_frame)  # positions in the slice, in time order
        times = time_all[lo_row:hi_row][timeline]
        timeline_frames = frame_idx[timeline]
        frame_order = np.argsort(timeline_frames, kind="stable")
        period = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        span = times[-1] - times[0] + period
        faces = face_all[lo_row:hi_row]
        tracks = np.unique(track_all[lo_row:hi_row][faces]).tolist() or [-1]  # no face at all: one faceless track
        for track in tracks:
            mine = np.flatnonzero(faces & (track_all[lo_row:hi_row] == track))
            mine = mine[np.unique(frame_idx[mine], return_index=True)[1]]  # one row per frame
            at = frame_order[np.searchsorted(timeline_frames[frame_order], frame_idx[mine])]
            found = np.zeros(len(times), dtype=bool)
            found[at] = True
            values = np.full((len(times), len(signals)), np.nan)
            values[at] = value_all[lo_row + mine]
            rising = {j: onsets(values[:, j]) for j in rate_signals}  # over the track's timeline, not per window
            for k in range(n_windows(span, window_s=window_s, step_s=step_s)):
                start = times[0] + k * step_s
                end = start + window_s if span >= window_s else times[0] + span
                lo, hi = np.searchsorted(times, start - 1e-9), np.searchsorted(times, end - 1e-9)
                hi = max(hi, lo + 1) if span < window_s else hi
                t, face = times[lo:hi], found[lo:hi]
                row = {"video_id": videos[lo_row], "track_id": int(track), **constants[r],
                       "window_idx": k, "start_s": start, "end_s": end, "window_complete": span >= window_s,
                       "n_frames": hi - lo, "coverage": float(face.mean()) if hi > lo else 0.0}
                row["window_ok"] = row["coverage"] >= min_coverage
                for feature in fset.features:
                    func, j = AGGREGATIONS[feature.agg][0], signals.index(feature.signal)
                    column = rising[j] if feature.agg == "rate" else values[:, j]
                    row[str(feature)] = func(t, column[lo:hi], feature.param)
                rows.append(row)
    carried = dict.fromkeys(c for values in constants for c in values)  # in first-seen order
    windows = pd.DataFrame(rows, columns=[*keys, *carried, *_WINDOW_COLUMNS, "window_ok", *fset.columns])
    windows["window_ok"] = windows["window_ok"].astype(bool)  # (an empty table has no rows to type it)
    low = ~windows["window_ok"].to_numpy(dtype=bool)
    single = windows["n_frames"].to_numpy() <= 1  # a photo's window: it has a face or it has none
    if (low & ~single).any():
        warnings.warn(f"{int((low & ~single).sum())} of {int((~single).sum())} video windows have face coverage below "
                      f"{min_coverage:.0%}; they are kept with window_ok=False.", GeoEngageWarning, stacklevel=2)
    if (low & single).any():
        warnings.warn(f"{int((low & single).sum())} of {int(single.sum())} images have no face; they are kept with "
                      "window_ok=False.", GeoEngageWarning, stacklevel=2)
    # how the table was made, for train/serve parity (geoengage.predict.check_settings)
    windows.attrs["geoengage"] = {
        **frames.attrs.get("geoengage", {}),
        "windows": {"window_s": float(window_s), "step_s": float(step_s), "feature_set": fset.name,
                    "min_coverage": float(min_coverage), "aggregation_version": AGGREGATION_VERSION}}
    return windows


#: How :func:`relative_to_baseline` finds a recording's baseline.
BASELINE_METHODS = ("first", "running")


def relative_to_baseline(windows: pd.DataFrame, *, features: list[str] | None = None, method: str = "first",
                         baseline_s: float | None = None, baseline_windows: int | None = None,
                         keys: list[str] | None = None, order: str | None = None) -> pd.DataFrame:
    """Each track's window features as differences from that track's own baseline, read from its features alone.

    Parameters
    ----------
    features : list of str, optional
        Columns made relative (default every ``<signal>__<agg>`` column); the others are kept as they are.
    method : {"first", "running"}
        ``"first"``: the baseline is the median of the track's windows that start in its first ``baseline_s``
        seconds (default 120) or its first ``baseline_windows`` windows; ``"running"``: the median of the track's windows up to
        and including this one (causal: usable live).
    keys : list of str, optional
        Columns that identify a track (default ``video_id`` and ``track_id`` where present).
    order : str, optional
        Column that orders a track's windows (default ``start_s``, else ``window_idx``).

    Labels, subjects and every other column are never read: the baseline is the person's own behaviour, so the
    same rule applies to a new person without fitting anything.
    """
    if method not in BASELINE_METHODS:
        raise InvalidParameterError(f"`method` must be one of {BASELINE_METHODS}. Got {method!r} instead.")
    if baseline_s is not None and baseline_windows is not None:
        raise InvalidParameterError("give `baseline_s` or `baseline_windows`, not both.")
    if baseline_s is None and baseline_windows is None:
        baseline_s = 120.0
    keys = keys or [k for k in TRACK_KEYS if k in windows.columns]
    order = order or next((c for c in ("start_s", "window_idx") if c in windows.columns), None)
    if not keys or order is None:
        raise SchemaError("relative_to_baseline needs the track keys (video_id) and an order column (start_s or "
                          "window_idx) in the windows.")
    columns = list(features) if features is not None else [c for c in windows.columns if "__" in c and
                                                          pd.api.types.is_numeric_dtype(windows[c])]
    out = windows.copy()
    ranked = windows.sort_values([*keys, order], kind="stable")
    values = ranked[columns].astype(np.float64)
    grouped = values.groupby([ranked[k] for k in keys], sort=False, dropna=False)
    if method == "running":
        baseline = grouped.expanding().median().reset_index(level=list(range(len(keys))), drop=True)
    else:
        position = ranked.groupby(keys, sort=False, dropna=False).cumcount()
        start = ranked[order] - ranked.groupby(keys, sort=False, dropna=False)[order].transform("min")
        early = position < baseline_windows if baseline_windows is not None else start < baseline_s
        baseline = values.where(early).groupby([ranked[k] for k in keys], sort=False, dropna=False
                                               ).transform("median")
    out.loc[ranked.index, columns] = (values - baseline.loc[ranked.index]).to_numpy()
    return out


def join_labels(windows: pd.DataFrame, labels: pd.DataFrame, *, label: str = "label",
                straddle: str = "drop") -> pd.DataFrame:
    """Give each window the label of the time interval it lies in.

    Parameters
    ----------
    windows : DataFrame
        From :func:`make_windows`.
    labels : DataFrame
        Columns ``video_id``, ``start_s``, ``end_s`` and ``label`` (intervals of one label).
    straddle : {"drop", "mark"}
        A window overlapping two different labels is dropped, or kept with the label that
        covers most of it and ``label_straddles=True``.
    """
    if straddle not in ("drop", "mark"):
        raise InvalidParameterError(f"`straddle` must be 'drop' or 'mark'. Got {straddle!r} instead.")
    needed = {"video_id", "start_s", "end_s", label}
    if not needed <= set(labels.columns):
        raise SchemaError(f"join_labels: labels need columns {sorted(needed)}; they have {list(labels.columns)}.")
    out = windows.copy()
    values, straddles = [], []
    by_video = {v: g for v, g in labels.groupby("video_id")}
    for video, start, end in zip(out["video_id"], out["start_s"], out["end_s"], strict=True):
        intervals = by_video.get(video)
        overlap: dict[object, float] = {}
        if intervals is not None:
            for lab, s, e in zip(intervals[label], intervals["start_s"], intervals["end_s"], strict=True):
                amount = min(end, e) - max(start, s)
                if amount > 0 or (start == end and s <= start < e):
                    overlap[lab] = overlap.get(lab, 0.0) + max(amount, 1e-12)
        values.append(max(overlap, key=overlap.get) if overlap else np.nan)
        straddles.append(len(overlap) > 1)
    out[label] = values
    out["label_straddles"] = straddles
    if straddle == "drop":
        out = out[~out["label_straddles"]].drop(columns="label_straddles").reset_index(drop=True)
    return out
