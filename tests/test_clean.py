"""clean.py: outliers flagged and masked or clipped, NaN rows left alone, gaps filled only when short."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoengage.clean import CleanConfig, clean_frames, fill_short_gaps, robust_z
from geoengage.exceptions import InvalidParameterError
from geoengage.schema import FRAMES, LANDMARK_COLUMNS


def _frames(values: dict[str, np.ndarray], *, fps: float = 30.0, video: str = "v", subject: str = "s1") -> pd.DataFrame:
    n = len(next(iter(values.values())))
    table = pd.DataFrame({c.name: np.nan for c in FRAMES}, index=range(n))
    found = ~np.isnan(values.get("yaw_deg", np.zeros(n)))
    table = table.assign(video_id=video, source_path=video, frame_idx=np.arange(n), time_s=np.arange(n) / fps,
                         frame_width_px=640, frame_height_px=480, frame_readable=True, face_found=found, n_faces=found.astype(int),
                         track_id=np.where(found, 0, -1), subject_id=subject, **values)
    return table


def test_planted_outliers_are_flagged_and_nan_rows_left_alone(rng) -> None:
    yaw = rng.uniform(-5, 5, 600)  # bounded: |robust z| <= 1.4, so only the planted values can be flagged
    yaw[[50, 300, 451]] = [90.0, -85.0, 70.0]
    yaw[100:130] = np.nan  # one second without a face
    result = clean_frames(_frames({"yaw_deg": yaw}), config=CleanConfig(max_gap_s=0.0))
    cleaned = result.frames["yaw_deg"].to_numpy()
    assert np.isnan(cleaned[[50, 300, 451]]).all()
    assert result.outliers["yaw_deg"] == 3
    assert np.isnan(cleaned[100:130]).all()
    untouched = np.setdiff1d(np.arange(600), [50, 300, 451, *range(100, 130)])
    assert np.array_equal(cleaned[untouched], yaw[untouched])


def test_clip_action_and_constant_signal(rng) -> None:
    yaw = rng.normal(0, 5, 300)
    yaw[10] = 100.0
    frames = _frames({"yaw_deg": yaw, "ear": np.full(300, 0.3)})
    result = clean_frames(frames, config=CleanConfig(action="clip", max_gap_s=0.0))
    median = np.median(yaw)
    bound = 3.5 * np.median(np.abs(yaw - median)) / 0.6745
    assert result.frames["yaw_deg"].iloc[10] == pytest.approx(median + bound)
    assert result.outliers["ear"] == 0 and (result.frames["ear"] == 0.3).all()  # MAD 0: never flagged
    assert np.isnan(robust_z(pd.Series([1.0, 1.0, 1.0]))).all()


def test_short_gaps_filled_long_gaps_and_edges_kept() -> None:
    t = pd.Series(np.arange(20) / 10.0)  # 10 fps
    values = pd.Series(np.arange(20, dtype=float))
    values[[0, 5, 6, 10, 11, 12, 13, 19]] = np.nan
    filled = fill_short_gaps(values, t, max_gap_s=0.2)
    assert filled[[5, 6]].tolist() == [5.0, 6.0]  # a 0.2 s gap: interpolated exactly (linear signal)
    assert filled[[0, 10, 11, 12, 13, 19]].isna().all()  # edges and a 0.4 s gap stay missing


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-100, 100)), min_size=2, max_size=60), st.floats(0.0, 0.5))
def test_gap_filling_never_invents_values_across_long_gaps(raw: list[float | None], max_gap_s: float) -> None:
    values = pd.Series([np.nan if v is None else v for v in raw], dtype=float)
    times = pd.Series(np.arange(len(values)) / 10.0)
    filled = fill_short_gaps(values, times, max_gap_s=max_gap_s)
    assert (filled[values.notna()] == values[values.notna()]).all()  # known values unchanged
    missing = values.isna().to_numpy()
    run = np.cumsum(np.r_[True, missing[1:] != missing[:-1]])
    for r in np.unique(run[missing]):
        rows = np.flatnonzero(run == r)
        long_gap = len(rows) * 0.1 > max_gap_s + 1e-9
        edge = rows[0] == 0 or rows[-1] == len(values) - 1
        if long_gap or edge:
            assert filled.iloc[rows].isna().all()
        else:
            lo, hi = values.iloc[rows[0] - 1], values.iloc[rows[-1] + 1]
            assert filled.iloc[rows].between(min(lo, hi) - 1e-9, max(lo, hi) + 1e-9).all()


def test_masked_outlier_inside_a_track_is_interpolated_and_marked(rng) -> None:
    yaw = np.linspace(-10, 10, 90) + rng.normal(0, 0.1, 90)
    yaw[40] = 500.0
    result = clean_frames(_frames({"yaw_deg": yaw}))
    assert result.frames["yaw_deg"].iloc[40] == pytest.approx((yaw[39] + yaw[41]) / 2, abs=0.5)
    assert result.frames["interpolated"].sum() == 1 and result.filled["yaw_deg"] == 1


def test_scope_subject_and_baseline(rng) -> None:
    a = _frames({"yaw_deg": rng.normal(10, 1, 100)}, video="a", subject="s1")
    b = _frames({"yaw_deg": rng.normal(-10, 1, 100)}, video="b", subject="s2")
    result = clean_frames(pd.concat([a, b], ignore_index=True), config=CleanConfig(baseline="subject_median"))
    assert result.frames.groupby("subject_id")["yaw_deg"].median().abs().max() < 1e-9
    with pytest.raises(InvalidParameterError, match="need a 'subject_id' column"):
        clean_frames(a.drop(columns="subject_id"), config=CleanConfig(scope="subject"))
    with pytest.raises(InvalidParameterError, match="`action` must be 'mask' or 'clip'"):
        CleanConfig(action="drop")


def test_input_is_not_modified(rng) -> None:
    frames = _frames({"yaw_deg": rng.normal(0, 1, 50)})
    frames.loc[5, "yaw_deg"] = 99.0
    copy = frames.copy()
    clean_frames(frames)
    pd.testing.assert_frame_equal(frames, copy)
    assert list(LANDMARK_COLUMNS)[0] in frames.columns
