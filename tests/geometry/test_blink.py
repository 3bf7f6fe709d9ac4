"""geometry/blink.py: blinks found in generated EAR series with noise and head motion; real open-eye EAR."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoengage.exceptions import InvalidParameterError
from geoengage.geometry.blink import (
    BlinkConfig,
    blink_flags,
    blink_rate_per_min,
    detect_blinks,
    eye_aspect_ratio,
    perclos,
)


def _series(seed: int, *, seconds: float = 60.0, fps: float = 30.0, noise: float = 0.012):
    """EAR of one track: a person-specific open level, head motion (slow drift and nods), noise, blinks."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, seconds, 1 / fps)
    open_level = rng.uniform(0.24, 0.34)
    head = 0.03 * np.sin(2 * np.pi * t / 9.0) + 0.02 * np.sin(2 * np.pi * t / 2.7)  # pitch changes the EAR
    ear = open_level + head + rng.normal(0, noise, len(t))
    blinks, start = [], rng.uniform(0.5, 2.0)
    while start < seconds - 1:
        duration = rng.uniform(0.1, 0.4)
        depth = rng.uniform(0.55, 0.8)  # closure at the deepest point
        inside = (t >= start) & (t < start + duration)
        phase = (t[inside] - start) / duration
        ear[inside] *= 1 - depth * np.sin(np.pi * phase) ** 0.5
        blinks.append((start, start + duration))
        start += duration + rng.uniform(1.0, 6.0)
    return pd.DataFrame({"video_id": "v", "track_id": 0, "time_s": t, "ear": ear}), blinks


def _match(found: pd.DataFrame, truth: list[tuple[float, float]]) -> tuple[float, float]:
    hits = [any(s < e_end and e_start < e for e_start, e_end in zip(found.start_s, found.end_s)) for s, e in truth]
    true_found = [any(s < e_end and e_start < e for s, e in truth) for e_start, e_end in zip(found.start_s, found.end_s)]
    return float(np.mean(true_found)) if true_found else 1.0, float(np.mean(hits))


@pytest.mark.parametrize("seed", range(6))
def test_blinks_found_with_noise_and_head_motion(seed: int) -> None:
    frames, truth = _series(seed)
    found = detect_blinks(frames)
    precision, recall = _match(found, truth)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall, len(found), len(truth))
    assert found.duration_s.between(0.03, 0.5).all()


def test_precision_and_recall_over_many_tracks() -> None:
    tp = fp = fn = 0
    for seed in range(100, 130):
        frames, truth = _series(seed, seconds=30.0)
        found = detect_blinks(frames)
        precision, recall = _match(found, truth)
        tp += round(recall * len(truth))
        fn += len(truth) - round(recall * len(truth))
        fp += len(found) - round(precision * len(found))
    assert tp / (tp + fp) >= 0.95 and tp / (tp + fn) >= 0.95


def test_long_closure_is_not_a_blink_and_gaps_stay_nan() -> None:
    t = np.arange(0, 10, 1 / 30)
    ear = np.full(len(t), 0.3)
    ear[(t > 4) & (t < 5.5)] = 0.08  # eyes shut 1.5 s
    ear[(t > 7) & (t < 7.2)] = np.nan  # face lost
    frames = pd.DataFrame({"video_id": "v", "track_id": 0, "time_s": t, "ear": ear})
    assert detect_blinks(frames).empty
    flags = blink_flags(frames)
    assert np.isnan(flags["blink"][(t > 7) & (t < 7.2)]).all() and np.isnan(flags["eye_closure"][(t > 7) & (t < 7.2)]).all()
    assert np.nansum(flags["blink"]) == 0
    assert perclos(flags["eye_closure"]) == pytest.approx(np.mean((t > 4) & (t < 5.5)) / np.mean(np.isfinite(ear)),
                                                         abs=0.01)


def test_tracks_are_separate_and_flags_mark_blinks() -> None:
    a, truth_a = _series(1, seconds=20)
    b, truth_b = _series(2, seconds=20)
    b["track_id"] = 1
    frames = pd.concat([a, b], ignore_index=True)
    events = detect_blinks(frames)
    assert events.groupby("track_id").size().to_dict() == {0: len(truth_a), 1: len(truth_b)}
    flags = blink_flags(frames)["blink"]
    start = events.start_s.iloc[0]
    row = np.flatnonzero((frames.track_id == 0) & np.isclose(frames.time_s, start))[0]
    assert flags[row] == 1.0 and np.nanmax(flags) == 1.0


def test_helpers_and_config() -> None:
    assert blink_rate_per_min(pd.DataFrame({"start_s": [1, 2, 3]}), 30.0) == 6.0
    assert np.isnan(blink_rate_per_min(pd.DataFrame(), 0.0))
    assert perclos(np.array([0.0, 0.6, np.nan, 0.7]), closure=0.5) == pytest.approx(2 / 3)
    eye = np.array([[[0, 0], [1, -1], [2, -1], [3, 0], [2, 1], [1, 1]]], dtype=float)
    assert eye_aspect_ratio(eye)[0] == pytest.approx(4 / 6)
    with pytest.raises(InvalidParameterError, match="`blink_closure` must be between 0 and 1"):
        BlinkConfig(blink_closure=1.5)


def test_open_eye_ear_on_real_photos(shared_data) -> None:
    """Open eyes on the real one-face photos: EAR between 0.18 and 0.45 (the documented open range)."""
    from geoengage.config import ExtractConfig
    from geoengage.extract import extract_frames

    folder = shared_data / "face_samples"
    photos = [*folder.glob("obama*.jpg"), folder / "biden.jpg", folder / "alex-lacamoire.png",
              folder / "lin-manuel-miranda.png", *(folder / "knn_train").glob("*/*.jp*g")]
    ears = [extract_frames(p, config=ExtractConfig(min_face_px=40)).ear.iloc[0] for p in photos]
    assert len(ears) == 19
    assert min(ears) >= 0.18 and max(ears) <= 0.45


@pytest.mark.parametrize("seconds_shut", [2.0, 5.0])
def test_a_sustained_closure_reads_closed_throughout(seconds_shut: float) -> None:
    """Eyes shut for 2 s (and 5 s) in a track with head motion: eye_closure >= 0.5 in >= 90% of the shut frames."""
    for seed in range(5):
        frames, _ = _series(seed, seconds=20.0)
        t = frames.time_s.to_numpy()
        shut = (t >= 8) & (t < 8 + seconds_shut)
        frames.loc[shut, "ear"] = 0.06 + np.random.default_rng(seed).normal(0, 0.01, shut.sum())
        closure = blink_flags(frames)["eye_closure"]
        assert np.mean(closure[shut] >= 0.5) >= 0.9
        assert np.nanmedian(closure[~shut]) < 0.15  # open frames still read open


def test_a_still_image_uses_the_population_baseline() -> None:
    """One frame: no track to learn the open eye from, so the documented population EAR (0.30) is the baseline."""
    config = BlinkConfig()
    shut = blink_flags(pd.DataFrame({"video_id": ["a"], "track_id": [0], "time_s": [0.0], "ear": [0.08]}))
    assert shut["eye_closure"][0] == pytest.approx(1 - 0.08 / config.population_ear) and shut["eye_closure"][0] >= 0.5
    assert shut["ear_baseline_population"][0] == 1.0 and shut["ear_baseline"][0] == config.population_ear
    opened = blink_flags(pd.DataFrame({"video_id": ["a"], "track_id": [0], "time_s": [0.0], "ear": [0.29]}))
    assert abs(opened["eye_closure"][0]) < 0.1
    long, _ = _series(0, seconds=5.0)
    assert np.nanmax(blink_flags(long)["ear_baseline_population"]) == 0.0  # a real track uses its own
