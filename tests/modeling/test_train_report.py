"""modeling/train.py and report/render.py: a saved model predicts the same after loading; reports are written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geoengage.cli import main
from geoengage.exceptions import SchemaError
from geoengage.modeling.cv import cross_validate
from geoengage.modeling.protocol import load_model
from geoengage.modeling.train import fit_model
from geoengage.report.metrics import summarize
from geoengage.report.render import write_report
from geoengage.testing import synthetic_windows


def test_model_round_trips_through_json(rng, tmp_path: Path) -> None:
    windows = synthetic_windows(rng, classes=3)
    windows.loc[::7, "signal__mean"] = np.nan
    model = fit_model(windows, target="label")
    model.save(tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.pkl"))
    meta = json.loads((tmp_path / "m" / "model.meta.json").read_text())
    assert meta["schema"] == "geoengage.model/2" and meta["classes"] == [0, 1, 2] and meta["positive"] == [1, 2]
    assert {f["name"] for f in meta["features"]} == {"signal__mean", "noise__std", "person__mean"}
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(windows), model.predict_proba(windows), rtol=1e-6)
    np.testing.assert_allclose(again.engagement_probability(windows), model.engagement_probability(windows),
                               rtol=1e-6)
    assert (again.predict(windows) == model.predict(windows)).all()
    with pytest.raises(SchemaError, match="lack 1 features this model was trained on"):
        again.predict(windows.drop(columns="noise__std"))


def test_report_files_and_random_split_warning(rng, tmp_path: Path) -> None:
    windows = synthetic_windows(rng)
    results = {name: summarize(cross_validate(windows, target="label", estimator=name, n_splits=3,
                                              split="random"), n_boot=50) for name in ("logistic", "majority")}
    page = write_report(results, tmp_path, protocol={"split": "random"}).read_text()
    assert "RANDOM SPLIT" in page and "class='warn'" in page and "<script" not in page and "http" not in page
    assert (tmp_path / "report.md").read_text().startswith("# geoengage evaluation")
    assert json.loads((tmp_path / "report.json").read_text())["results"]["majority"]["metrics"]["auc_roc"] == 0.5


def test_cli_evaluate_and_train(rng, tmp_path: Path, capsys) -> None:
    path = tmp_path / "windows.parquet"
    synthetic_windows(rng).to_parquet(path)
    (tmp_path / "windows.meta.json").write_text(json.dumps(  # what `geoengage extract` writes beside the windows
        {"cleaning": {"masked_by_reason": {"jump": 3, "quality": 2}, "outliers": {"yaw_deg": 5}}}))
    assert main(["-q", "evaluate", str(path), "--target", "label", "--n-splits", "3", "--n-boot", "50",
                 "--out", str(tmp_path / "r")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["xgboost"]["auc_roc"] > printed["majority"]["auc_roc"] == 0.5
    assert "RANDOM SPLIT" not in (tmp_path / "r" / "report.html").read_text()
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "## Data quality" in markdown and "missing feature values: 0.0%" in markdown and "Brier / ECE" in markdown
    assert "values masked by reason (quality, range, jump, level): {'jump': 3, 'quality': 2}" in markdown
    assert main(["-q", "report", str(tmp_path / "r"), "--out", str(tmp_path / "again")]) == 0
    again = (tmp_path / "again" / "report.html").read_text()
    assert again == (tmp_path / "r" / "report.html").read_text() and again.count("data:image/png;base64") >= 4
    assert main(["-q", "train", str(path), "--target", "label", "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "model.json").is_file()
    assert main(["-q", "evaluate", str(tmp_path / "nope.parquet"), "--target", "label", "--out", str(tmp_path)]) == 2
    assert pd.read_parquet(path).shape[0] == 360


def test_report_for_regressors(rng, tmp_path: Path) -> None:
    windows = synthetic_windows(rng)
    windows["score"] = windows["label"] + rng.normal(0, 0.1, len(windows))
    results = {name: summarize(cross_validate(windows, target="score", estimator=name, n_splits=3), n_boot=30)
               for name in ("ridge", "mean")}
    page = write_report(results, tmp_path).read_text()
    assert "r2 [95% CI]" in page and "Brier" not in page and "pred " not in page


def test_random_split_without_subject_ids_bootstraps_windows_and_says_so(rng, tmp_path: Path, capsys) -> None:
    """Windows from a tool import with no subject ids: the grouped split refuses, the random split works with
    intervals from bootstrapping windows, and the report says in red that subjects could not be kept apart."""
    from geoengage.testing import synthetic_windows

    path = tmp_path / "windows.parquet"
    synthetic_windows(rng).drop(columns="subject_id").to_parquet(path)
    assert main(["-q", "evaluate", str(path), "--target", "label", "--out", str(tmp_path / "r")]) == 2
    capsys.readouterr()
    assert main(["-q", "evaluate", str(path), "--target", "label", "--split", "random", "--n-splits", "3",
                 "--n-boot", "50", "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    xgb = report["results"]["xgboost"]
    low, high = xgb["metrics"]["ci95"]["auc_roc"]
    assert np.isfinite([low, high]).all() and low <= xgb["metrics"]["auc_roc"] <= high
    assert xgb["bootstrap_unit"] == "windows"
    page = (tmp_path / "r" / "report.html").read_text()
    assert "NO SUBJECT IDS" in page and "class='ok'" not in page
    assert "bootstrapping windows" in (tmp_path / "r" / "report.md").read_text()
