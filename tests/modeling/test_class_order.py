"""Named classes without a given order: nothing may claim one (the report once said "high" was the least engaged)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import geoengage as ge
from geoengage.cli import main
from geoengage.exceptions import InvalidParameterError
from geoengage.modeling.labels import classes_ordered, resolve_classes
from geoengage.modeling.protocol import load_model
from geoengage.modeling.train import EngagementModel
from geoengage.testing import synthetic_windows


def _named(rng: np.random.Generator, names: dict[int, str], classes: int = 2):
    windows = synthetic_windows(rng, n_subjects=8, per_subject=20, classes=classes)
    windows["level"] = windows["label"].map(names)
    return windows


def test_names_and_positive_put_the_classes_that_are_not_engaged_first(rng, tmp_path: Path) -> None:
    """'high' is engaged and sorts first by name: the order is [low, high], and the report and its JSON name the
    engaged and the other classes instead of claiming an order from least to most engaged."""
    assert resolve_classes(["high", "low", "high"], positive=["high"]) == (("low", "high"), ("high",))
    assert resolve_classes(["a", "c", "b", "d"], positive=["a", "b"]) == (("c", "d", "a", "b"), ("a", "b"))
    assert not classes_ordered(["high", "low"])
    windows = _named(rng, {0: "low", 1: "high"})
    model = EngagementModel(positive=["high"]).fit(windows, windows["level"])
    assert model.classes_.tolist() == ["low", "high"] and not model.classes_ordered_
    model.save(tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "model.meta.json").read_text())
    assert meta["classes"] == ["low", "high"] and meta["classes_ordered"] is False
    assert not load_model(tmp_path / "model").classes_ordered_
    scores = ge.score(windows, model=tmp_path / "model")
    assert [c for c in scores.columns if c.startswith("engagement_") and c != "engagement_probability"][:2] == [
        "engagement_low", "engagement_high"]
    assert main(["-q", "evaluate", str(_write(windows, tmp_path)), "--target", "level", "--positive", "high",
                 "--n-splits", "3", "--n-boot", "20", "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())["protocol"]
    assert report["engaged"] == ["high"] and report["not engaged"] == ["low"]
    assert not any("least to most" in key for key in report)
    assert "least to most" not in (tmp_path / "report" / "report.md").read_text()


def _write(windows, tmp_path: Path) -> Path:
    path = tmp_path / "windows.parquet"
    windows.to_parquet(path)
    return path


def test_an_ordinal_model_refuses_names_without_an_order(rng, tmp_path: Path) -> None:
    windows = _named(rng, {0: "low", 1: "mid", 2: "high"}, classes=3)
    with pytest.raises(InvalidParameterError, match="--classes"):
        EngagementModel("xgboost_ordinal", positive=["mid", "high"]).fit(windows, windows["level"])
    status = main(["-q", "train", str(_write(windows, tmp_path)), "--target", "level", "--positive", "mid,high",
                   "--estimator", "xgboost_ordinal", "--out", str(tmp_path / "m")])
    assert status != 0
    ordered = EngagementModel("xgboost_ordinal", classes=["low", "mid", "high"]).fit(windows, windows["level"])
    assert ordered.classes_.tolist() == ["low", "mid", "high"] and ordered.classes_ordered_


def test_numbers_and_given_classes_keep_their_order(rng, tmp_path: Path) -> None:
    """Numeric levels keep numeric order and --classes its own, and the report states that order."""
    assert resolve_classes([2, 0, 1]) == ((0, 1, 2), (1, 2))
    assert resolve_classes(["high", "low"], classes=["low", "high"]) == (("low", "high"), ("high",))
    assert resolve_classes(["b", "a", "c"], classes=["c", "a", "b"], positive=["b"]) == (("c", "a", "b"), ("b",))
    assert classes_ordered([0, 1]) and classes_ordered(["x", "y"], classes=["y", "x"])
    windows = _named(rng, {0: "low", 1: "high"})
    assert main(["-q", "evaluate", str(_write(windows, tmp_path)), "--target", "level", "--classes", "low,high",
                 "--n-splits", "3", "--n-boot", "20", "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())["protocol"]
    assert report["classes (least to most engaged)"] == ["low", "high"]


def test_the_report_names_features_as_the_reasons_do_and_recordings_relative(rng, tmp_path: Path) -> None:
    """Importance and audit tables give each feature in words with its column beside it, the figures in words, and
    the example windows name recordings relative to their common folder, not by this machine's absolute path."""
    windows = _named(rng, {0: "low", 1: "high"})
    windows["video_id"] = [f"{tmp_path}/lab/data/{s}/clip.mp4" for s in windows.subject_id]
    windows["expr_sad__mean"] = rng.random(len(windows))
    assert main(["-q", "evaluate", str(_write(windows, tmp_path)), "--target", "level", "--positive", "high",
                 "--n-splits", "3", "--n-boot", "20", "--out", str(tmp_path / "report")]) == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| mean signal | signal__mean |" in markdown
    assert "| mean sad expression probability | expr_sad__mean |" in markdown
    assert "| variability (sd) of noise | noise__std |" in markdown
    examples = markdown.split("### Example windows", 1)[1].split("##", 1)[0]
    assert "video_id=s0/clip.mp4" in examples or "video_id=s1/clip.mp4" in examples
    assert str(tmp_path) not in examples
