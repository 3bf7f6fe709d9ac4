"""modeling/protocol.py: window (tabular) and sequence models go through the same calls, train to report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import geoengage as ge
from geoengage.cli import main
from geoengage.exceptions import InvalidParameterError, ModelFileError
from geoengage.modeling.protocol import Model, model_kind
from geoengage.recipe import Recipe

#: Small, fast settings per kind (the same calls get them as ``**options``).
OPTIONS = {"tabular": {}, "gru": {"task": "classification", "hidden": 8, "max_epochs": 20, "n_seeds": 1, "early_stopping": False, "lr": 1e-2,
                                  "dropout": 0.0}}


def _recordings(rng: np.random.Generator, n_subjects: int = 12, per_subject: int = 4, length: int = 6) -> pd.DataFrame:
    """Recordings of ``length`` windows with one label each; ``gaze_h_ratio__mean`` carries it, ``face_sharpness__std`` nothing."""
    rows = []
    for s in range(n_subjects):
        for r in range(per_subject):
            label = (s + r) % 2
            for k in range(length):
                rows.append({"video_id": f"s{s}_r{r}.mp4", "track_id": 0, "subject_id": f"s{s}", "window_idx": k,
                             "window_ok": True, "label": label, "gaze_h_ratio__mean": label + rng.normal(0, 0.4),
                             "face_sharpness__std": rng.normal(0, 1)})
    table = pd.DataFrame(rows)
    table.attrs["geoengage"] = {"windows": {"window_s": 10.0, "step_s": 5.0, "min_coverage": 0.6}}
    return table


@pytest.fixture(scope="module")
def windows() -> pd.DataFrame:
    return _recordings(np.random.default_rng(0))


@pytest.mark.parametrize("kind", ["tabular", "gru"])
def test_both_kinds_answer_the_same_calls(kind: str, windows: pd.DataFrame, tmp_path) -> None:
    options = OPTIONS[kind]
    model = ge.train(windows, target="label", model=kind, out=tmp_path / "model", **options)
    assert isinstance(model, Model) and model_kind(model) == kind
    assert model.classes_.tolist() == [0, 1]
    assert model.settings_["windows"]["window_s"] == 10.0  # how the training table was made

    loaded = ge.load_model(tmp_path / "model")
    assert type(loaded) is type(model) and model_kind(loaded) == kind
    np.testing.assert_allclose(loaded.predict_proba(windows), model.predict_proba(windows), atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(windows), model.predict(windows))
    recipe = loaded.recipe
    assert isinstance(recipe, Recipe) and (recipe.window_s, recipe.step_s) == (10.0, 5.0)
    assert loaded.describe()["classes"] == [0, 1] and loaded.describe()["features"] == 2

    scored = ge.score(windows, model=tmp_path / "model")  # parity checked against the recorded settings
    assert len(scored) == len(windows)
    engaged = scored["engagement_probability"] if kind == "tabular" else scored["engagement_so_far_1"]
    # the label is in gaze_h_ratio__mean: engaged windows (or recordings so far) score higher
    assert engaged[windows["label"] == 1].mean() > engaged[windows["label"] == 0].mean() + 0.3

    summary = ge.evaluate(windows, target="label", out=tmp_path / "report", model=kind, n_splits=3, n_boot=50,
                          **options)
    assert (tmp_path / "report" / "report.json").is_file()
    main_row = summary["xgboost" if kind == "tabular" else kind]
    assert main_row["auc_roc"] >= 0.9


@pytest.mark.parametrize("kind", ["tabular", "gru"])
def test_the_command_trains_either_kind_by_one_path(kind: str, windows: pd.DataFrame, tmp_path, capsys) -> None:
    windows.to_parquet(tmp_path / "windows.parquet")
    extra = [] if kind == "tabular" else ["--task", "classification", "--hidden", "8", "--max-epochs", "5", "--n-seeds", "1"]
    assert main(["train", str(tmp_path / "windows.parquet"), "--target", "label", "--model", kind,
                 "--out", str(tmp_path / "model"), *extra]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["model"] == str(tmp_path / "model") and printed["features"] == 2 and printed["classes"] == [0, 1]
    assert model_kind(ge.load_model(tmp_path / "model")) == kind
    # and scores by one path too: the printed summary follows the model's kind
    assert main(["score", str(tmp_path / "windows.parquet"), "--model", str(tmp_path / "model"),
                 "--out", str(tmp_path / "scores.parquet")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ("recordings" in printed) == (kind != "tabular") and printed["windows"] == len(windows)
    assert ("mean_engagement_probability" in printed) == (kind == "tabular")


def test_unknown_kind_and_pooled_sequences_are_refused(windows: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError, match="`model` must be one of"):
        ge.train(windows, target="label", model="transformer")
    with pytest.raises(InvalidParameterError, match="sequence models read the recordings of one data set"):
        ge.train({"a": windows, "b": windows}, target="label", model="gru")


def test_a_damaged_sequence_model_is_refused_naming_the_file(windows: pd.DataFrame, tmp_path) -> None:
    ge.train(windows, target="label", model="gru", out=tmp_path / "model", **{**OPTIONS["gru"], "max_epochs": 2})
    weights = tmp_path / "model" / "sequence.pt"
    weights.write_bytes(weights.read_bytes()[:-64] + bytes(64))
    with pytest.raises(ModelFileError, match="damaged or altered") as err:
        ge.load_model(tmp_path / "model")
    assert str(weights) in str(err.value)
