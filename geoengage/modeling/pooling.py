"""Several data sets' window tables -> one table on one label coding, with weights per data set or subject.

Pooled table schema: the windows' columns (only the feature columns every set has), plus ``dataset`` (str, the
set's name) and the mapped target; ``subject_id`` is ``"<dataset>/<subject_id>"``, so people of different labs
never share an id. :mod:`geoengage.modeling.selection` measures models trained on such tables; ``ge.train`` fits
one on them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..exceptions import InvalidParameterError, SchemaError
from .folds import feature_columns
from .labels import map_labels

__all__ = ["DATASET", "WEIGHT_SCHEMES", "pool_datasets", "pool_weights"]

#: The pooled table's data set column.
DATASET = "dataset"
#: :func:`pool_weights`' schemes, simplest first.
WEIGHT_SCHEMES = ("none", "dataset", "subject")

def pool_datasets(tables: Mapping[str, pd.DataFrame], *, target: str,
                  label_maps: Mapping[str, Mapping[object, object]] | None = None, out_target: str | None = None,
                  groups: str = "subject_id") -> pd.DataFrame:
    """One window table from several data sets' tables (name -> windows), on one label coding.

    Parameters
    ----------
    tables : mapping
        Data set name -> its windows (with ``target`` and ``groups`` columns).
    target : str
        The label column every table has.
    label_maps : mapping, optional
        Data set name -> {its label: pooled label}. A set without a map keeps its labels; a label its map does not
        name becomes missing (the window is not used). One documented coding for all sets is the caller's choice:
        e.g. engaged vs not with WACV 0 -> 0, 1-2 -> 1 and DAiSEE 0-1 -> 0, 2-3 -> 1.
    out_target : str, optional
        Name of the mapped label column (default ``target``, replaced).
    """
    if len(tables) < 2:
        raise InvalidParameterError(f"pool_datasets needs at least two data sets. Got {len(tables)}.")
    label_maps = dict(label_maps or {})
    unknown = sorted(set(label_maps) - set(tables))
    if unknown:
        raise InvalidParameterError(f"label maps for unknown data sets {unknown}; the sets are {sorted(tables)}.")
    shared: list[str] | None = None
    for name, table in tables.items():
        for column in (target, groups):
            if column not in table.columns:
                raise SchemaError(f"data set {name!r}: the windows lack the column {column!r}.")
        columns = feature_columns(table)
        shared = columns if shared is None else [c for c in shared if c in set(columns)]
    if not shared:
        raise SchemaError(f"the data sets {sorted(tables)} share no feature column.")
    parts = []
    for name, table in tables.items():
        part = table.copy()
        part[out_target or target] = map_labels(part[target], label_maps.get(name))
        part[groups] = [None if pd.isna(s) else f"{name}/{s}" for s in part[groups]]
        part[DATASET] = name
        drop = [c for c in feature_columns(part) if c not in set(shared)]
        parts.append(part.drop(columns=drop))
    pooled = pd.concat(parts, ignore_index=True)
    pooled.attrs = {}
    return pooled


def pool_weights(pooled: pd.DataFrame, scheme: str = "none", *, groups: str = "subject_id") -> np.ndarray:
    """Per-window sample weights of a pooled table, with mean 1 over its windows.

    ``"none"``: every window 1. ``"dataset"``: every data set's windows together weigh the same (a set of 10 000
    windows counts as much as one of 1 000). ``"subject"``: every subject's windows together weigh the same,
    whatever the set (a person seen in 600 windows counts as much as one seen in 20).
    """
    if scheme not in WEIGHT_SCHEMES:
        raise InvalidParameterError(f"`weights` must be one of {WEIGHT_SCHEMES}. Got {scheme!r} instead.")
    if scheme == "none":
        return np.ones(len(pooled))
    column = DATASET if scheme == "dataset" else groups
    if column not in pooled.columns or pooled[column].isna().any():
        raise SchemaError(f"weights by {scheme} need a {column!r} value on every window.")
    keys = pooled[column].astype(str)
    sizes = keys.map(keys.value_counts()).to_numpy(np.float64)
    return len(pooled) / (keys.nunique() * sizes)
