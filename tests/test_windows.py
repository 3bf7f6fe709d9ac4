"""windows.py: window counts follow their formula, names parse back, aggregations are right, labels join."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoengage.exceptions import GeoEngageWarning, InvalidParameterError, SchemaError
from geoengage.testing import synthetic_frames
from geoengage.windows import (
    AGGREGATIONS,
    FeatureName,
    FeatureSet,
    join_labels,
    load_feature_set,
    make_windows,
    n_windows,
    parse_feature_name,
)

SMALL = FeatureSet("small", (FeatureName("yaw_deg", "median"), FeatureName("blink", "rate"),
                             FeatureName("on_screen", "frac")))


def _clip(seconds: float, fps: float = 10.0, **signals) -> pd.DataFrame:
    n = int(round(seconds * fps))
    t = np.arange(n) / fps
    values = {"yaw_deg": np.sin(t), "blink": np.zeros(n), "on_screen": np.ones(n)}
    values.update({k: v(t) if callable(v) else v for k, v in signals.items()})
    return synthetic_frames(values, fps=fps)


@settings(max_examples=60, deadline=None)
@given(seconds=st.floats(0.2, 60), window_s=st.floats(0.5, 20), step_s=st.floats(0.25, 10))
def test_window_counts_follow_the_formula(seconds: float, window_s: float, step_s: float) -> None:
    frames = _clip(seconds)
    span = len(frames) / 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeoEngageWarning)
        windows = make_windows(frames, window_s=window_s, step_s=step_s, feature_set=SMALL)
    expected = 1 if span < window_s else int(np.floor((span - window_s) / step_s + 1e-9)) + 1
    assert len(windows) == expected == n_windows(span, window_s=window_s, step_s=step_s)
    assert windows["window_idx"].tolist() == list(range(expected))
    if span >= window_s:
        assert (windows["end_s"] - windows["start_s"]).round(9).eq(round(window_s, 9)).all()
        assert windows["end_s"].max() <= span + 1e-9


def test_aggregations_are_exact() -> None:
    blink = np.zeros(600)
    blink[[30, 31, 200, 400, 401, 402]] = 1  # 3 blinks in 60 s
    frames = _clip(60.0, yaw_deg=lambda t: 2.0 * t + 1.0, blink=blink,
                   eye_closure=lambda t: (t % 10 < 2).astype(float), on_screen=lambda t: (t < 45).astype(float))
    fset = [FeatureName("yaw_deg", a) for a in ("mean", "median", "slope", "p10", "p90")] + [
        FeatureName("blink", "rate"), FeatureName("on_screen", "frac"), FeatureName("eye_closure", "above", 0.5)]
    (row,) = make_windows(frames, window_s=60, step_s=60, feature_set=FeatureSet("t", tuple(fset))).to_dict("records")
    t = np.arange(600) / 10.0
    assert row["yaw_deg__mean"] == pytest.approx(np.mean(2 * t + 1))
    assert row["yaw_deg__slope"] == pytest.approx(2.0)
    assert row["yaw_deg__p10"] == pytest.approx(np.percentile(2 * t + 1, 10))
    assert row["blink__rate"] == pytest.approx(3.0)  # per minute
    # a blink under way when a window starts began in the window before: counted there only (it was counted in both)
    across = np.zeros(600)
    across[[298, 299, 300, 301, 450]] = 1  # a blink over 29.8-30.1 s, another at 45 s
    frames = _clip(60.0, yaw_deg=lambda t: t, blink=across, eye_closure=lambda t: t * 0, on_screen=lambda t: t * 0)
    halves = make_windows(frames, window_s=30, step_s=30, feature_set=FeatureSet("t", (FeatureName("blink", "rate"),)))
    assert halves["blink__rate"].tolist() == pytest.approx([2.0, 2.0])  # one blink per 30 s each (was 2.0, 4.0)
    assert row["on_screen__frac"] == pytest.approx(0.75)
    assert row["eye_closure__above__0.5"] == pytest.approx(0.2)
    assert row["coverage"] == 1.0 and row["n_frames"] == 600 and row["window_ok"]


def test_missing_faces_lower_coverage_and_give_nan(rng) -> None:
    yaw = rng.normal(0, 1, 100)
    yaw[50:100] = np.nan
    frames = synthetic_frames({"yaw_deg": yaw, "blink": np.where(np.isnan(yaw), np.nan, 0.0),
                               "on_screen": np.ones(100)}, fps=50.0)
    with pytest.warns(GeoEngageWarning, match="coverage below 60%"):
        windows = make_windows(frames, window_s=1.0, step_s=1.0, feature_set=SMALL)
    assert windows["coverage"].tolist() == [1.0, 0.0]
    assert windows["window_ok"].tolist() == [True, False]
    assert np.isnan(windows.loc[1, "yaw_deg__median"]) and np.isnan(windows.loc[1, "blink__rate"])


def test_still_image_is_a_window_of_one_frame() -> None:
    frames = _clip(0.1)
    (row,) = make_windows(frames, feature_set=SMALL).to_dict("records")
    assert row["n_frames"] == 1 and not row["window_complete"] and row["subject_id"] == "s1"


@pytest.mark.parametrize("name", ["yaw_deg__median", "eye_closure__above__0.5", "blink__rate", "a_b__p90"])
def test_names_parse_back(name: str) -> None:
    assert str(parse_feature_name(name)) == name


def test_every_shipped_feature_set_parses_and_names_round_trip() -> None:
    for name in ("default", "minimal"):
        fset = load_feature_set(name)
        assert fset.columns and all(str(parse_feature_name(c)) == c for c in fset.columns)
        assert all(f.agg in AGGREGATIONS for f in fset.features)
    with pytest.raises(InvalidParameterError, match="`name` must be"):
        parse_feature_name("yaw_deg__bogus")
    with pytest.raises(InvalidParameterError, match="needs parameter"):
        parse_feature_name("ear__above")
    with pytest.raises(SchemaError, match="needs signals"):
        make_windows(_clip(1.0).drop(columns="yaw_deg"), feature_set="minimal")


def test_labels_join_and_straddling_windows() -> None:
    frames = _clip(20.0)
    windows = make_windows(frames, window_s=4, step_s=2, feature_set=SMALL)
    labels = pd.DataFrame({"video_id": ["v", "v"], "start_s": [0.0, 9.0], "end_s": [9.0, 20.0], "label": [0, 1]})
    dropped = join_labels(windows, labels)
    assert dropped["label"].tolist() == [0, 0, 0, 1, 1, 1, 1]  # windows [6,10) and [8,12) straddle 9 s
    marked = join_labels(windows, labels, straddle="mark")
    assert marked["label_straddles"].sum() == 2 and len(marked) == len(windows)
    assert marked.loc[marked["start_s"] == 6.0, "label"].item() == 0  # 3 s of label 0, 1 s of label 1


def test_a_recordings_windows_do_not_depend_on_the_other_recordings() -> None:
    """A one-face clip whose face is lost for 1 s is windowed the same alone and in a batch with a two-face
    recording: per track over its own timeline, the lost frames counting as missing."""
    one = _clip(5.0, fps=10.0)
    lost = (one["time_s"] >= 2.0) & (one["time_s"] < 3.0)
    one.loc[lost, ["yaw_deg", "blink", "on_screen"]] = np.nan
    one.loc[lost, ["face_found", "n_faces", "track_id"]] = [False, 0, -1]
    a = _clip(5.0, fps=10.0).assign(video_id="two")
    b = a.assign(track_id=1, yaw_deg=a["yaw_deg"] + 10)
    batch = pd.concat([one, a, b], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeoEngageWarning)
        alone = make_windows(one, window_s=1.0, step_s=1.0, feature_set=SMALL)
        together = make_windows(batch, window_s=1.0, step_s=1.0, feature_set=SMALL)
    mine = together[together["video_id"] == "v"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, mine, check_dtype=False)
    assert alone["coverage"].tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert alone["window_ok"].tolist() == [True, True, False, True, True]
    assert (alone["track_id"] == 0).all()
    two = together[together["video_id"] == "two"]
    assert sorted(two["track_id"].unique()) == [0, 1] and (two["coverage"] == 1.0).all()


def test_a_recording_without_any_face_gives_one_faceless_track() -> None:
    frames = _clip(2.0, fps=10.0)
    frames = frames.assign(face_found=False, n_faces=0, track_id=-1, yaw_deg=np.nan, blink=np.nan, on_screen=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeoEngageWarning)
        windows = make_windows(frames, window_s=1.0, step_s=1.0, feature_set=SMALL)
    assert len(windows) == 2 and (windows["track_id"] == -1).all()
    assert (windows["coverage"] == 0).all() and not windows["window_ok"].any()


def test_feature_sets_extend_others(tmp_path) -> None:
    from geoengage.windows import load_feature_set

    default = load_feature_set("default").columns
    with_setup, appearance = load_feature_set("with_setup").columns, load_feature_set("appearance").columns
    assert with_setup[: len(default)] == default and "iod_px__median" in with_setup and "iod_px__median" not in default
    assert appearance[: len(default)] == default and appearance[-1] == "expr_emb_15__mean"
    assert not {"head_z_mm__median", "face_brightness__median", "brow_furrow_iod__mean"} & set(default)
    gaze_cnn = load_feature_set("gaze_cnn").columns
    assert gaze_cnn[: len(default)] == default and gaze_cnn[len(default):] == [
        "gaze_cnn_yaw_deg__median", "gaze_cnn_yaw_deg__std", "gaze_cnn_pitch_deg__median", "gaze_cnn_pitch_deg__std",
        "on_screen_cnn__frac"]
    # audit_clean: the default and the gaze CNN's aggregates, less the head-pitch levels and the neutral and
    # contempt means (what engagement_wacv's set-up audit flags), in the default's order
    flagged = {"pitch_deg__mean", "pitch_deg__median", "pitch_deg__p10", "pitch_deg__p90", "expr_neutral__mean",
               "expr_contempt__mean"}
    assert load_feature_set("audit_clean").columns == [c for c in gaze_cnn if c not in flagged]
    both = tmp_path / "both.toml"
    both.write_text('name = "both"\nextends = ["with_setup", "appearance"]\n[signals]\nyaw_deg = ["mean", "p90"]\n')
    columns = load_feature_set(both).columns
    assert len(columns) == len(set(columns)) == len(set(with_setup) | set(appearance))
    (tmp_path / "loop.toml").write_text('name = "loop"\nextends = "loop"\n')
    with pytest.raises(InvalidParameterError, match="cannot extend itself"):
        load_feature_set(tmp_path / "loop.toml")


def test_relative_to_baseline_reads_no_label() -> None:
    """Each track's features minus its own baseline (first windows, or the running median), computed from the
    features alone: shuffled labels and subjects, or none, give the same table."""
    from geoengage.testing import synthetic_windows
    from geoengage.windows import relative_to_baseline

    windows = synthetic_windows(4, n_subjects=3, per_subject=8)
    features = ["signal__mean", "noise__std"]
    first = relative_to_baseline(windows, features=features, baseline_windows=3)
    one = windows[windows.video_id == "s1.mp4"]
    expected = one["signal__mean"] - one["signal__mean"].head(3).median()
    np.testing.assert_allclose(first.loc[one.index, "signal__mean"], expected)
    assert (first["person__mean"] == windows["person__mean"]).all()  # not asked for: kept as it is
    running = relative_to_baseline(windows, features=features, method="running")
    np.testing.assert_allclose(running.loc[one.index, "noise__std"],
                               one["noise__std"] - one["noise__std"].expanding().median())
    shuffled = windows.assign(label=np.random.default_rng(0).permutation(windows["label"].to_numpy()),
                              subject_id="someone")
    for method in ("first", "running"):
        reference = relative_to_baseline(windows, features=features, method=method)
        for other in (shuffled, windows.drop(columns=["label", "subject_id"])):
            again = relative_to_baseline(other.sample(frac=1, random_state=2), features=features, method=method)
            pd.testing.assert_frame_equal(again.loc[windows.index, features], reference[features])


def test_photos_are_not_warned_about_like_videos() -> None:
    """A set of photos (one frame each): faces give no warning at all; a photo without a face is said as such, not
    as a window's low coverage. A video's windows keep their coverage warning."""
    photos = pd.concat([synthetic_frames({"yaw_deg": np.array([v]), "blink": np.zeros(1), "on_screen": np.ones(1)},
                                video=f"p{k}.jpg") for k, v in enumerate([1.0, 2.0, np.nan])], ignore_index=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_windows(photos[photos.video_id != "p2.jpg"], window_s=10.0, step_s=5.0, feature_set=SMALL)
        assert not caught
        make_windows(photos, window_s=10.0, step_s=5.0, feature_set=SMALL)
    messages = [str(w.message) for w in caught]
    assert messages == ["1 of 3 images have no face; they are kept with window_ok=False."]
    yaw = np.sin(np.arange(100) / 10.0)
    yaw[:80] = np.nan
    with pytest.warns(GeoEngageWarning, match="video windows have face coverage below 60%"):
        make_windows(synthetic_frames({"yaw_deg": yaw, "blink": np.zeros(100), "on_screen": np.ones(100)}, fps=10.0),
                     window_s=5.0, step_s=5.0, feature_set=SMALL)
