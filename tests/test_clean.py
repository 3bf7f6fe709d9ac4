"""clean.py: outliers flagged and masked or clipped, NaN rows left alone, gaps filled only when short."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoengage.clean import CleanConfig, clean_frames, fill_short_gaps, robust_z
from geoengage.exceptions import InvalidParameterError
from geoengage.schema import LANDMARK_COLUMNS
from geoengage.testing import synthetic_frames


def test_level_rule_is_opt_in_and_flags_planted_outliers(rng) -> None:
    yaw = rng.uniform(-5, 5, 600)  # bounded: |robust z| <= 1.4, so only the planted values can be flagged
    yaw[[50, 300, 451]] = [80.0, -85.0, 70.0]
    yaw[100:130] = np.nan  # one second without a face
    frames = synthetic_frames({"yaw_deg": yaw})
    result = clean_frames(frames, config=CleanConfig(rules=(), z_max=3.5, max_gap_s=0.0))
    cleaned = result.frames["yaw_deg"].to_numpy()
    assert np.isnan(cleaned[[50, 300, 451]]).all()
    assert result.outliers["yaw_deg"] == 3 and result.masked.loc["level", "yaw_deg"] == 3
    assert (result.reasons["yaw_deg"].iloc[[50, 300, 451]] == "level").all()
    assert np.isnan(cleaned[100:130]).all()
    untouched = np.setdiff1d(np.arange(600), [50, 300, 451, *range(100, 130)])
    assert np.array_equal(cleaned[untouched], yaw[untouched])
    # without z_max the level rule does not run: the default rules see three one-frame spikes
    default = clean_frames(frames, config=CleanConfig(max_gap_s=0.0))
    assert default.masked.loc["level"].sum() == 0 and default.masked.loc["jump", "yaw_deg"] == 3


def test_clip_action_and_constant_signal(rng) -> None:
    yaw = rng.normal(0, 5, 300)
    yaw[10] = 60.0
    frames = synthetic_frames({"yaw_deg": yaw, "ear": np.full(300, 0.3)})
    result = clean_frames(frames, config=CleanConfig(rules=(), z_max=3.5, action="clip", max_gap_s=0.0))
    median = np.median(yaw)
    bound = 3.5 * np.median(np.abs(yaw - median)) / 0.6745
    assert result.frames["yaw_deg"].iloc[10] == pytest.approx(median + bound)
    assert result.outliers["ear"] == 0 and (result.frames["ear"] == 0.3).all()  # MAD 0: never flagged
    assert np.isnan(robust_z(pd.Series([1.0, 1.0, 1.0]))).all()


def _look_away_and_blink(rng) -> tuple[pd.DataFrame, np.ndarray]:
    """10 s at 30 fps: yaw noise with a real 0.4 s look-away at 35 deg (frames 150-161) and a 3-frame blink
    (frames 240-242) in the eye aspect ratio; eye closure and blink flags from the registry."""
    from geoengage.geometry.blink import blink_flags

    n = 300
    yaw = rng.normal(0, 1.0, n)
    yaw[150:162] = 35.0 + rng.normal(0, 1.0, 12)
    ear = 0.30 + rng.normal(0, 0.01, n)
    closed = np.zeros(n, dtype=bool)
    closed[240:243] = True
    ear[closed] = 0.06
    frames = synthetic_frames({"yaw_deg": yaw, "pitch_deg": rng.normal(0, 1.0, n), "ear": ear})
    frames = frames.assign(**blink_flags(frames))
    return frames, closed


def test_default_cleaning_keeps_a_look_away_and_a_blink(rng) -> None:
    from geoengage.windows import make_windows

    frames, closed = _look_away_and_blink(rng)
    result = clean_frames(frames)
    assert result.masked.to_numpy().sum() == 0
    assert np.array_equal(result.frames["yaw_deg"].to_numpy(), frames["yaw_deg"].to_numpy())
    assert (result.frames["eye_closure"].to_numpy()[closed] >= 0.5).all()
    windows = make_windows(result.frames, window_s=1.0, step_s=1.0, feature_set=_WINDOW_SET)
    look = windows[windows["start_s"] == 5.0].iloc[0]  # 5.0-6.0 s holds the look-away (frames 150-161)
    assert look["yaw_deg__p90"] >= 30
    blink = windows[windows["start_s"] == 8.0].iloc[0]  # 8.0-9.0 s holds the blink
    assert blink["eye_closure__above__0.5"] == pytest.approx(3 / 30)
    assert blink["blink__rate"] == pytest.approx(60.0)
    # the old default (robust z on levels) erases both: the reason it is opt-in
    old = clean_frames(frames, config=CleanConfig(rules=(), z_max=3.5)).frames
    old_windows = make_windows(old, window_s=1.0, step_s=1.0, feature_set=_WINDOW_SET)
    assert old_windows.loc[old_windows["start_s"] == 5.0, "yaw_deg__p90"].iloc[0] < 10


def test_a_one_frame_spike_is_masked_as_a_jump_and_filled(rng) -> None:
    frames, _ = _look_away_and_blink(rng)
    frames.loc[60, "yaw_deg"] = 35.0  # one frame: 35 deg and back within 33 ms
    result = clean_frames(frames)
    assert result.masked.loc["jump", "yaw_deg"] == 1 and result.reasons.loc[60, "yaw_deg"] == "jump"
    assert abs(result.frames.loc[60, "yaw_deg"]) < 5 and result.frames.loc[60, "interpolated"]
    assert result.frames.loc[60, "clean_reason"] == "jump" and result.frames.loc[60, "n_masked"] >= 1
    assert result.to_dict()["masked_by_reason"] == {"jump": 1}
    assert result.frames.loc[150:161, "yaw_deg"].notna().all()  # the look-away stays


def test_quality_and_range_rules_mask_bad_measurements(rng) -> None:
    n = 90
    frames = synthetic_frames({"yaw_deg": rng.normal(0, 1, n), "ear": 0.3 + rng.normal(0, 0.01, n),
                      "pose_residual_iod": np.full(n, 0.08), "head_z_mm": np.full(n, 600.0)})
    frames.loc[10, "pose_residual_iod"] = 0.35  # a poor landmark fit: every feature of the row
    frames.loc[[40, 41, 42, 43, 44, 45], "head_z_mm"] = 20.0  # physically impossible distance
    result = clean_frames(frames, config=CleanConfig(max_gap_s=0.0))
    assert result.frames.loc[10, ["yaw_deg", "ear", "pose_residual_iod", "head_z_mm"]].isna().all()
    assert result.masked.loc["quality", "yaw_deg"] == 1 and result.masked.loc["range", "head_z_mm"] == 6
    assert (result.reasons.loc[40:45, "head_z_mm"] == "range").all()
    assert result.to_dict()["masked_by_reason"] == {"quality": 4, "range": 6}


def test_gaps_are_not_bridged_across_a_blink(rng) -> None:
    frames, closed = _look_away_and_blink(rng)
    gaze = rng.normal(0, 0.05, len(frames))
    gaze[closed] = np.nan  # no iris while the eye is shut
    result = clean_frames(frames.assign(gaze_h_ratio=gaze))
    assert result.frames.loc[closed, "gaze_h_ratio"].isna().all()


def test_a_repeated_or_unsorted_index_keeps_every_row(rng) -> None:
    frames, _ = _look_away_and_blink(rng)
    frames.index = np.r_[np.arange(150), np.arange(150)]  # e.g. two tables concatenated without ignore_index
    result = clean_frames(frames)
    assert len(result.frames) == len(frames) == 300
    assert result.frames.index.equals(frames.index)
    assert np.array_equal(result.frames["yaw_deg"].to_numpy(), frames["yaw_deg"].to_numpy())
    shuffled = frames.reset_index(drop=True).sample(frac=1.0, random_state=0)
    again = clean_frames(shuffled).frames
    assert again.index.equals(shuffled.index) and np.array_equal(again["yaw_deg"], shuffled["yaw_deg"])


_WINDOW_SET = None  # set below: a feature set of the signals these tables have


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
    yaw[40] = 80.0
    result = clean_frames(synthetic_frames({"yaw_deg": yaw}))
    assert result.frames["yaw_deg"].iloc[40] == pytest.approx((yaw[39] + yaw[41]) / 2, abs=0.5)
    assert result.frames["interpolated"].sum() == 1 and result.filled["yaw_deg"] == 1


def test_scope_subject_and_baseline(rng) -> None:
    a = synthetic_frames({"yaw_deg": rng.normal(10, 1, 100)}, video="a", subject="s1")
    b = synthetic_frames({"yaw_deg": rng.normal(-10, 1, 100)}, video="b", subject="s2")
    result = clean_frames(pd.concat([a, b], ignore_index=True), config=CleanConfig(baseline="subject_median"))
    assert result.frames.groupby("subject_id")["yaw_deg"].median().abs().max() < 1e-9
    with pytest.raises(InvalidParameterError, match="need a 'subject_id' column"):
        clean_frames(a.drop(columns="subject_id"), config=CleanConfig(scope="subject", z_max=3.5))
    with pytest.raises(InvalidParameterError, match="`action` must be 'mask' or 'clip'"):
        CleanConfig(action="drop")


def test_input_is_not_modified(rng) -> None:
    frames = synthetic_frames({"yaw_deg": rng.normal(0, 1, 50)})
    frames.loc[5, "yaw_deg"] = 99.0
    copy = frames.copy()
    clean_frames(frames)
    pd.testing.assert_frame_equal(frames, copy)
    assert LANDMARK_COLUMNS[0] in frames.columns


def _window_set():
    from geoengage.windows import FeatureSet, parse_feature_name

    return FeatureSet("test", tuple(parse_feature_name(n) for n in (
        "yaw_deg__p90", "yaw_deg__median", "eye_closure__above__0.5", "blink__rate")))


_WINDOW_SET = _window_set()
