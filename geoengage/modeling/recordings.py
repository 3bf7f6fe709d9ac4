"""Windows -> recordings: a window table grouped into each recording's windows in order, and per-recording aggregates.

A recording (``video_id``, ``track_id``) is the sequence of its windows in ``window_idx`` order; its label is the
label its windows share (a recording whose windows disagree is an error: use the window models for window labels).
:func:`recording_sequences` gives the sequences the sequence models read (:mod:`geoengage.modeling.sequence`);
:func:`recording_table` gives the recording-level tabular baseline's inputs (per feature: median, standard deviation
and slope over the windows).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import SchemaError
from ..windows import AGGREGATIONS

__all__ = ["RECORDING_KEYS", "RecordingSequences", "aggregate_sequences", "recording_keys", "recording_sequences",
           "recording_table", "signed_log"]

#: Columns that name a recording in the windows table.
RECORDING_KEYS = ("video_id", "track_id")


def signed_log(values: np.ndarray) -> np.ndarray:
    """``sign(x) * log(1 + |x|)``: compresses long tails, keeps the sign and zero (the sequence models' and the
    recording baselines' first step)."""
    return np.sign(values) * np.log1p(np.abs(values))


@dataclass(frozen=True)
class RecordingSequences:
    """Windows grouped into recordings: ``values[i]`` is recording ``i``'s (T_i x F) feature matrix in window order;
    ``rows[i]`` the positions of its windows in the input table; ``keys`` one row per recording (the recording
    keys, the group column and the label when asked for)."""

    values: list[np.ndarray]
    rows: list[np.ndarray]
    keys: pd.DataFrame


def recording_keys(windows: pd.DataFrame) -> list[str]:
    """The recording columns (:data:`RECORDING_KEYS`) the table has; ``video_id`` is required."""
    keys = [k for k in RECORDING_KEYS if k in windows.columns]
    if "video_id" not in keys:
        raise SchemaError("sequence models need the recording column 'video_id' in the windows table.")
    return keys


def recording_sequences(windows: pd.DataFrame, features: list[str], *, target: str | None = None,
                        groups: str | None = None) -> RecordingSequences:
    """Group ``windows`` into recordings (see :class:`RecordingSequences`); the label must be one per recording."""
    missing = [f for f in features if f not in windows.columns]
    if missing:
        raise SchemaError(f"the windows lack {len(missing)} of the model's features, e.g. {missing[:5]}.")
    keys = recording_keys(windows)
    table = windows.reset_index(drop=True)
    order = "window_idx" if "window_idx" in table.columns else None
    index = pd.MultiIndex.from_frame(table[keys].astype(str)) if len(keys) > 1 else table[keys[0]].astype(str)
    codes = pd.factorize(index, sort=False)[0]
    sort_by = np.lexsort(((table[order].to_numpy() if order else np.arange(len(table))), codes))
    bounds = np.flatnonzero(np.r_[True, codes[sort_by][1:] != codes[sort_by][:-1], True])
    data = table[features].to_numpy(dtype=np.float64)
    values, rows, records = [], [], []
    for lo, hi in itertools.pairwise(bounds):
        at = sort_by[lo:hi]
        values.append(data[at])
        rows.append(at)
        first = table.iloc[at[0]]
        record = {k: first[k] for k in keys}
        if groups is not None:
            record[groups] = first[groups] if groups in table.columns else np.nan
        if target is not None:
            labels = table[target].iloc[at].dropna()
            if labels.astype(str).nunique() > 1:
                raise SchemaError(f"recording {record['video_id']!r} has windows with different {target!r} labels "
                                  f"({sorted(labels.astype(str).unique())[:4]}); sequence models predict one label "
                                  "per recording (use the window models for window labels).")
            record[target] = labels.iloc[0] if len(labels) else np.nan
        record["n_windows"] = hi - lo
        records.append(record)
    return RecordingSequences(values, rows, pd.DataFrame(records))


def aggregate_sequences(sequences: RecordingSequences, features: list[str]) -> pd.DataFrame:
    """The recording-level table of already grouped ``sequences`` (see :func:`recording_table`)."""
    import warnings


    slope = AGGREGATIONS["slope"][0]  # least squares against the window position, as the window aggregation
    stats = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature missing in every window of a recording: NaN
        for values in sequences.values:
            position = np.arange(len(values), dtype=np.float64)
            median = np.nanmedian(values, axis=0)
            std = np.nanstd(values, axis=0, ddof=1) if len(values) > 1 else np.full(values.shape[1], np.nan)
            slopes = [slope(position, values[:, j], None) for j in range(values.shape[1])]
            stats.append(np.concatenate([median, std, slopes]))
    columns = ([f"{f}__rec_median" for f in features] + [f"{f}__rec_std" for f in features]
               + [f"{f}__rec_slope" for f in features])
    return pd.concat([sequences.keys, pd.DataFrame(np.vstack(stats), columns=columns)], axis=1)


def recording_table(windows: pd.DataFrame, features: list[str], *, target: str | None = None,
                    groups: str | None = None) -> pd.DataFrame:
    """One row per recording: the keys, ``n_windows`` and per feature its ``__rec_median``, ``__rec_std`` and
    ``__rec_slope`` (per window) over the recording's windows (the recording-level tabular baseline's inputs)."""
    return aggregate_sequences(recording_sequences(windows, features, target=target, groups=groups), features)
