"""The table helpers every stage uses: float_columns and group_rows agree with the pandas they replace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoengage.schema import float_columns, group_rows


def _table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "video_id": pd.array(rng.choice(["b.mp4", "a.mp4", "c/10.mp4", "c/2.mp4"], n), dtype="string"),
        "track_id": pd.array(rng.integers(-1, 5, n), dtype="Int64"),
        "frame_width_px": pd.array(rng.integers(100, 200, n), dtype="Int64"),
        **{f"x{i}": rng.normal(size=n) for i in range(40)},
    })
    table.loc[rng.choice(n, 10, replace=False), "x3"] = np.nan
    table.loc[[7, 11], "frame_width_px"] = pd.NA
    table.loc[[5, 9], "video_id"] = pd.NA  # rows without a key are in no group, as with groupby
    table.attrs["geoengage"] = {"clean": {"z_max": 3.5}}
    return table


@pytest.mark.parametrize("names", [["x0", "frame_width_px"], [f"x{i}" for i in range(30)] + ["frame_width_px"], []])
def test_float_columns_match_a_selection(names: list[str]) -> None:
    table = _table()
    expected = table[names].to_numpy(dtype=np.float64, na_value=np.nan) if names else np.empty((len(table), 0))
    got = float_columns(table, names)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    if names:  # NaN where a value, also an integer one, is missing
        assert np.isnan(got[[7, 11], -1]).all()


@pytest.mark.parametrize("count", [2, 20])
def test_float_columns_name_a_missing_column(count: int) -> None:
    with pytest.raises(KeyError, match="nope"):
        float_columns(_table(), [*(f"x{i}" for i in range(count)), "nope"])


@pytest.mark.parametrize("keys", [["video_id", "track_id"], ["track_id"], ["video_id"]])
def test_group_rows_match_groupby_indices(keys: list[str]) -> None:
    table = _table()
    expected = table.groupby(keys, sort=True).indices
    got = group_rows(table, keys)
    expected_keys = [k if isinstance(k, tuple) else (k,) for k in expected]
    assert [tuple(v for v in k) for k in got] == expected_keys  # same groups, same (sorted) order
    for key, rows in zip(expected_keys, got.values(), strict=True):
        np.testing.assert_array_equal(rows, expected[key if len(keys) > 1 else key[0]])  # ascending positions
    assert group_rows(table.iloc[:0], keys) == {}
