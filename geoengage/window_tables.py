"""Another tool's or lab's per-window feature table -> geoengage's windows table.

``geoengage import table FILE --recording video_id --order segment_idx --subject subject_id --target engagement``
(and :func:`read_window_table`) turns a parquet or CSV table with one row per (recording, window) into the
table :func:`geoengage.windows.make_windows` writes, so features made elsewhere enter the same models,
subject-grouped cross-validation, report and scoring.

Output columns (the windows schema):

- keys: ``video_id`` (the ``recording`` column, as text), ``track_id`` (0), ``window_idx`` (0, 1, ... in the order of
  the ``order`` column within each recording), ``start_s`` and ``end_s`` (the ``start``/``end`` columns when given,
  else the window's position: ``start_s = window_idx``, ``end_s = window_idx + 1``);
- ``subject_id`` (the ``subject`` column; the recording when none is given, and the summary says so: folds are then
  grouped by recording, not by person) and the ``target`` column under its own name;
- ``window_complete`` (True), ``n_frames`` (NaN: unknown), ``coverage`` (share of the row's features that are
  present), ``window_ok`` (at least one feature present);
- one feature column per numeric input column, named ``<column>__value`` (aggregation ``value``: a per-window value
  imported as is; see :data:`geoengage.windows.AGGREGATIONS`). Columns named in ``drop`` and the key columns are not
  features; text columns other than the keys are an error unless dropped (a feature must be a number).

Bad files get one clear error naming the file and the problem: unreadable or empty, a missing key/target column, a
non-numeric feature column, duplicated (recording, order) keys, missing recording or order values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import MediaReadError, SchemaError

__all__ = ["WindowTableImport", "read_window_table"]

IMPORT_SCHEMA = "geoengage.window_table/1"


@dataclass(frozen=True)
class WindowTableImport:
    """The windows table from :func:`read_window_table` and its account of what was read."""

    windows: pd.DataFrame
    summary: dict[str, object]


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise MediaReadError(path, "does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".tsv"):
            table = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise MediaReadError(path, f"is not a parquet or CSV table (suffix {suffix!r})")
    except MediaReadError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise MediaReadError(path, f"cannot be read as a {suffix.lstrip('.')} table ({err})") from err
    if table.empty:
        raise MediaReadError(path, "has no rows")
    table.columns = [str(c).strip() for c in table.columns]
    return table


def _feature_name(column: str) -> str:
    signal = "_".join(part for part in column.split("__") if part) or "feature"
    return f"{signal}__value"


def read_window_table(path: str | Path, *, recording: str, order: str, subject: str | None = None,
                      target: str | None = None, start: str | None = None, end: str | None = None,
                      drop: list[str] | tuple[str, ...] = ()) -> WindowTableImport:
    """Read a per-window feature table (parquet or CSV) as geoengage's windows table (see the module docstring).

    Parameters
    ----------
    recording, order : str
        Columns naming each row's recording (video) and its window's position in that recording.
    subject : str, optional
        Column naming the person (the group cross-validation never splits).
    target : str, optional
        The label column (kept under its name; rows without a label stay, unlabelled).
    start, end : str, optional
        Columns with each window's start and end (seconds, or any unit that increases with time).
    drop : list of str
        Columns that are neither keys nor features (notes, file names, other labels).
    """
    path = Path(path)
    table = _read(path)
    keys = {"recording": recording, "order": order, "subject": subject, "target": target, "start": start, "end": end}
    named = {role: column for role, column in keys.items() if column is not None}
    missing = sorted({c for c in [*named.values(), *drop] if c not in table.columns})
    if missing:
        raise SchemaError(f"{path}: missing column(s) {missing}; the table has {list(table.columns)[:20]}"
                          + (" ..." if table.shape[1] > 20 else ""))
    for role in ("recording", "order"):
        if table[named[role]].isna().any():
            raise SchemaError(f"{path}: {int(table[named[role]].isna().sum())} row(s) have no {role} "
                              f"(column {named[role]!r}).")
    if not pd.api.types.is_numeric_dtype(table[order]):
        try:
            table[order] = pd.to_numeric(table[order])
        except (ValueError, TypeError) as err:
            raise SchemaError(f"{path}: the order column {order!r} must hold numbers (window positions); "
                              f"e.g. {table[order].iloc[0]!r}.") from err
    video = table[recording].astype(str)
    duplicated = pd.DataFrame({"v": video, "o": table[order]}).duplicated(keep=False)
    if duplicated.any():
        first = table.loc[duplicated.to_numpy()].iloc[0]
        raise SchemaError(f"{path}: {int(duplicated.sum())} rows share a (recording, order) key, e.g. "
                          f"{recording}={first[recording]!r}, {order}={first[order]!r}; each window must appear once.")
    reserved = set(named.values()) | set(drop)
    candidates = [c for c in table.columns if c not in reserved]
    text = [c for c in candidates if not (pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(
        table[c]))]
    if text:
        examples = {c: table[c].dropna().astype(str).iloc[0] if table[c].notna().any() else None for c in text[:3]}
        raise SchemaError(f"{path}: feature column(s) {text} are not numeric (e.g. {examples}); "
                          "drop them (--drop) or name them as keys.")
    if not candidates:
        raise SchemaError(f"{path}: no feature columns left besides the keys {sorted(reserved)}.")
    names = [_feature_name(c) for c in candidates]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise SchemaError(f"{path}: columns {[c for c, n in zip(candidates, names) if n in clashes]} give the same "
                          f"feature name {clashes}; rename them.")
    values = table[candidates].astype(np.float64).replace([np.inf, -np.inf], np.nan)
    values.columns = names
    position = table.groupby(video, sort=False)[order].rank(method="first").astype(int) - 1
    out = pd.DataFrame({"video_id": video.to_numpy(), "track_id": 0,
                        "subject_id": (table[subject].astype(str) if subject else video).to_numpy()})
    if target is not None:
        out[target] = table[target].to_numpy()
    out["window_idx"] = position.to_numpy()
    out["start_s"] = table[start].astype(np.float64).to_numpy() if start else position.to_numpy(np.float64)
    if end:
        out["end_s"] = table[end].astype(np.float64).to_numpy()
    else:  # a window's position: it ends where the next begins; a start in seconds without an end: unknown
        out["end_s"] = np.nan if start else out["start_s"] + 1.0
    out["window_complete"] = True
    out["n_frames"] = np.nan
    present = values.notna().to_numpy()
    out["coverage"] = present.mean(axis=1)
    out["window_ok"] = present.any(axis=1)
    out = pd.concat([out, values.reset_index(drop=True)], axis=1)
    out = out.sort_values(["video_id", "window_idx"], kind="stable").reset_index(drop=True)
    settings = {"schema": IMPORT_SCHEMA, "source": str(path), "recording": recording, "order": order,
                "subject": subject, "target": target, "start": start, "end": end, "dropped": list(drop)}
    out.attrs["geoengage"] = {"import": settings, "windows": {"feature_set": "imported table",
                                                               "unit": "imported windows"}}
    lengths = out.groupby("video_id").size()
    summary = {"file": str(path), "rows": len(out), "recordings": int(lengths.size),
               "windows_per_recording": {"min": int(lengths.min()), "median": float(lengths.median()),
                                         "max": int(lengths.max())},
               "subjects": int(out["subject_id"].nunique()), "grouped_by": "subject" if subject else "recording",
               "features": len(names), "missing_feature_values": float(1 - present.mean()),
               "windows_without_features": int((~out["window_ok"]).sum()),
               "labelled_rows": int(out[target].notna().sum()) if target else None}
    return WindowTableImport(out, summary)
