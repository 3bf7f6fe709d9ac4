"""Named classes, train/serve parity, the one model API (ge.train/score/evaluate, `geoengage score`), imbalance,
and the set-up audit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import geoengage as ge
from geoengage.cli import main
from geoengage.exceptions import InvalidParameterError, SchemaError
from geoengage.modeling.audit import setup_audit
from geoengage.modeling.cv import cross_validate
from geoengage.modeling.labels import canonical_labels, resolve_classes
from geoengage.modeling.train import EngagementModel
from geoengage.report.metrics import summarize
from geoengage.testing import synthetic_windows


def _binary(rng: np.random.Generator) -> pd.DataFrame:
    return synthetic_windows(rng, n_subjects=10, per_subject=30, classes=2)


def test_labels_become_one_kind_and_numbers_sort_as_numbers() -> None:
    assert canonical_labels([0, "1", 2.0, None]).tolist() == [0, 1, 2, None]
    assert canonical_labels(["2", "10", "2"]).tolist() == [2, 10, 2]
    assert canonical_labels([0.5, "1"]).tolist() == [0.5, 1.0]
    assert canonical_labels(["low", 1]).tolist() == ["low", "1"]
    assert resolve_classes(["2", "10", "2"]) == ((2, 10), (10,))  # "10" after "2": numbers, not strings
    assert resolve_classes([0, 1, 2]) == ((0, 1, 2), (1, 2))
    assert resolve_classes(["high", "low"], positive=["high"]) == (("low", "high"), ("high",))  # not engaged first
    assert resolve_classes(["high", "low"], classes=["low", "high"]) == (("low", "high"), ("high",))
    with pytest.raises(InvalidParameterError, match="say which count as engaged"):
        resolve_classes(["engaged", "not_engaged"])
    with pytest.raises(InvalidParameterError, match="not classes"):
        resolve_classes([0, 1], positive=[3])


def test_string_integer_mixed_and_named_labels_give_the_same_model(rng) -> None:
    windows = _binary(rng)
    as_int = windows["label"].to_numpy()
    variants = {
        "int": (as_int, {}),
        "str": (as_int.astype(str), {}),
        "mixed": (np.array([v if k % 2 else str(v) for k, v in enumerate(as_int)], dtype=object), {}),
        "named": (np.where(as_int == 1, "engaged", "not_engaged"), {"positive": ["engaged"]}),
        "named_reversed_order": (np.where(as_int == 1, "high", "low"), {"classes": ["low", "high"]}),
    }
    engaged = {}
    for name, (labels, options) in variants.items():
        model = EngagementModel(**options).fit(windows, labels)
        engaged[name] = model.engagement_probability(windows)
        assert set(model.predict(windows).tolist()) <= set(model.classes_.tolist())
    for name, values in engaged.items():
        np.testing.assert_allclose(values, engaged["int"], atol=1e-6, err_msg=name)
    # the direction is right: windows labelled engaged get the higher engagement probability
    assert engaged["named"][as_int == 1].mean() > engaged["named"][as_int == 0].mean() + 0.3
    named = EngagementModel(positive=["engaged"]).fit(windows, variants["named"][0])
    assert named.classes_.tolist() == ["not_engaged", "engaged"]  # the engaged side last, whatever the names' order
    np.testing.assert_allclose(named.engagement_probability(windows), named.predict_proba(windows)[:, 1])


def test_model_is_a_scikit_learn_estimator(rng) -> None:
    model = EngagementModel(class_weight=None, tune=True, inner_splits=2)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "classes_")
    windows = _binary(rng)
    fitted = copy.fit(windows, windows["label"])
    assert fitted.best_params_ and fitted.n_features_in_ == 3 and 0.5 <= fitted.score(windows, windows["label"]) <= 1


def test_imbalance_is_handled_by_calibration_a_threshold_and_optional_weights(rng) -> None:
    windows = synthetic_windows(rng, n_subjects=12, per_subject=40, classes=2)
    rare = windows[(windows.label == 1) | (rng.random(len(windows)) < 0.1)].reset_index(drop=True)
    rare["label"] = 1 - rare["label"]  # class 1 is now about 9% of the windows
    assert rare["label"].mean() < 0.15
    plain = summarize(cross_validate(rare, target="label", n_splits=4, class_weight=None, calibrate=False,
                                     decision="argmax"), n_boot=50)["metrics"]
    handled = cross_validate(rare, target="label", n_splits=4)
    metrics = summarize(handled, n_boot=50)["metrics"]
    assert metrics["minority_recall"] > 0.5 and metrics["minority_recall"] > plain["minority_recall"] + 0.15
    assert metrics["balanced_accuracy"] > plain["balanced_accuracy"]
    thresholds = metrics["thresholds_per_fold"]
    assert len(thresholds) == 4 and all(0 < t < 1 for t in thresholds)
    assert abs(handled.predictions["p_engaged"].mean() - rare["label"].mean()) < 0.03
    # class weights (optional) pull the probabilities up; the inner-fold calibration brings them back
    weighted = cross_validate(rare, target="label", n_splits=4, class_weight="balanced")
    unmapped = cross_validate(rare, target="label", n_splits=4, class_weight="balanced", calibrate=False)
    assert unmapped.predictions["p_engaged"].mean() > rare["label"].mean() + 0.05
    assert abs(weighted.predictions["p_engaged"].mean() - rare["label"].mean()) < 0.03
    assert summarize(weighted, n_boot=20)["metrics"]["minority_recall"] > plain["minority_recall"] + 0.15


def _write_table(windows: pd.DataFrame, folder: Path, *, window_s: float = 10.0, step_s: float = 5.0,
                 z_max: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    windows.to_parquet(folder / "windows.parquet")
    clean = {"rules": ["quality", "range", "jump"], "z_max": z_max, "max_gap_s": 0.25}
    (folder / "windows.meta.json").write_text(json.dumps({
        "windows": {"window_s": window_s, "step_s": step_s, "feature_set": "default", "min_coverage": 0.6},
        "clean": clean, "extract": {"crop_mode": "off"}}))
    return folder / "windows.parquet"


def test_train_records_settings_and_score_refuses_other_settings(rng, tmp_path: Path) -> None:
    windows = _binary(rng)
    table = _write_table(windows, tmp_path / "train")
    model = ge.train(table, target="label", out=tmp_path / "model")
    assert model.settings_["windows"]["window_s"] == 10.0 and model.settings_["clean"]["z_max"] is None
    assert set(model.feature_ranges_) == {"signal__mean", "noise__std", "person__mean"}
    same = ge.score(_write_table(windows, tmp_path / "same"), model=tmp_path / "model", top_reasons=0)
    np.testing.assert_allclose(same["engagement_probability"], model.engagement_probability(windows), atol=1e-6)
    with pytest.raises(SchemaError, match=r"windows.window_s: model 10.0, table 2.0"):
        ge.score(_write_table(windows, tmp_path / "short", window_s=2.0, step_s=1.0), model=tmp_path / "model")
    with pytest.raises(SchemaError, match=r"clean.z_max: model None, table 3.5"):
        ge.score(_write_table(windows, tmp_path / "z", z_max=3.5), model=tmp_path / "model")
    # a window far outside what the model saw is flagged; one a hair past the training edge (1% of the range:
    # a probability of 1e-11 where training saw 1e-8) is not, nor one at the edge plus the margin
    odd = windows.head(3).copy()
    low, high = model.feature_ranges_["signal__mean"]
    odd.loc[odd.index[0], "noise__std"] = 1e6
    odd.loc[odd.index[1], "signal__mean"] = low - 0.01 * (high - low)
    odd.loc[odd.index[2], "signal__mean"] = high + 0.049 * (high - low)
    odd.attrs = same.attrs
    flagged = ge.score(odd, model=ge.load_model(tmp_path / "model"), top_reasons=0)
    assert flagged["n_out_of_range"].tolist() == [1, 0, 0] and flagged["out_of_range"].iloc[0] == ["noise__std"]
    # the out-of-range window is flagged uncertain, and so is any window with little face
    assert flagged["uncertain"].tolist() == [True, False, False]
    assert flagged["uncertain_why"].tolist()[0] == "1 feature(s) outside the training range"
    thin = odd.assign(coverage=[1.0, 0.7, 0.95])
    thin.attrs = same.attrs
    assert ge.score(thin, model=model, top_reasons=0)["uncertain_why"].tolist()[1] == "face in 70% of the window"
    odd.loc[odd.index[2], "signal__mean"] = high + 0.2 * (high - low)
    assert ge.score(odd, model=model, top_reasons=0)["out_of_range"].iloc[2] == ["signal__mean"]


def test_cli_score_round_trips(rng, tmp_path: Path, capsys, caplog) -> None:
    windows = _binary(rng)
    windows["label"] = np.where(windows["label"] == 1, "engaged", "bored")
    table = _write_table(windows, tmp_path / "data")
    assert main(["-q", "train", str(table), "--target", "label", "--out", str(tmp_path / "m")]) == 2
    assert "say which count as engaged (positive=[...], CLI --positive)" in caplog.text  # one line, no traceback
    capsys.readouterr()
    assert main(["-q", "train", str(table), "--target", "label", "--positive", "engaged",
                 "--out", str(tmp_path / "m")]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["classes"] == ["bored", "engaged"] and trained["positive"] == ["engaged"]
    assert main(["-q", "score", str(table), "--model", str(tmp_path / "m"), "--out", str(tmp_path / "s.parquet")]) == 0
    printed = json.loads(capsys.readouterr().out)
    scores = pd.read_parquet(tmp_path / "s.parquet")
    assert printed["scored"] == len(windows) == len(scores)
    expected = ge.score(table, model=tmp_path / "m")
    np.testing.assert_allclose(scores["engagement_probability"], expected["engagement_probability"])
    np.testing.assert_allclose(scores["engagement_probability"], scores["engagement_engaged"])
    assert scores["reason_text"].str.startswith("predicted ").all()
    assert set(scores["engagement_pred"]) <= {"bored", "engaged"}
    engaged = windows["label"] == "engaged"
    assert scores.loc[engaged, "engagement_probability"].mean() > scores.loc[~engaged, "engagement_probability"].mean()


def test_setup_audit_flags_a_planted_camera_distance_feature(rng) -> None:
    windows = synthetic_windows(rng, n_subjects=10, per_subject=30)
    distance = {s: rng.uniform(400, 900) for s in windows["subject_id"].unique()}  # each person's camera distance
    windows["head_z_mm__median"] = windows["subject_id"].map(distance) + rng.normal(0, 5, len(windows))
    windows["video_id"] = [f"{s}_{k // 10}" for s, k in zip(windows.subject_id, windows.groupby("subject_id").cumcount(),
                                                             strict=True)]
    audit = setup_audit(windows, features=["signal__mean", "noise__std", "head_z_mm__median"])
    table = audit.table.set_index("feature")
    assert audit.flagged == ["head_z_mm__median"] and audit.grouped_by == "video_id"
    assert table.loc["head_z_mm__median", "eta2"] > 0.95 and table.loc["head_z_mm__median", "identity_score"] > 0.5
    assert table.loc["signal__mean", "eta2"] < 0.2 and table.loc["noise__std", "identity_score"] < 0.1


def test_evaluate_reports_cv_train_to_test_and_the_audit(rng, tmp_path: Path) -> None:
    windows = _binary(rng)
    other = synthetic_windows(np.random.default_rng(7), n_subjects=6, per_subject=20, classes=2)
    other["level"] = other["label"].map({0: "low", 1: "high"})
    summary = ge.evaluate(windows, target="label", out=tmp_path / "r", n_splits=3, n_boot=50, test=other,
                          test_target="level", label_map={"low": 0, "high": 1}, test_name="other set")
    assert summary["xgboost"]["auc_roc"] > 0.8 and summary["xgboost: train -> other set"]["auc_roc"] > 0.8
    assert summary["majority"]["auc_roc"] == 0.5
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "## Set-up audit" in markdown and "person__mean" in markdown
    assert "xgboost: train -> other set" in markdown and "decision thresholds per fold" in markdown
    # integer classes are reported as the numbers they are, not as text ('0', '1')
    protocol = json.loads((tmp_path / "r" / "report.json").read_text())["protocol"]
    assert protocol["classes (least to most engaged)"] == [0, 1]
    assert protocol["engaged classes (engagement_probability, auc_engaged)"] == [1]
    assert "engaged classes (engagement_probability, auc_engaged): [1]" in markdown


def test_ordinal_model_uses_the_order_and_round_trips(rng, tmp_path: Path) -> None:
    windows = synthetic_windows(rng, n_subjects=10, per_subject=30, classes=3)
    windows["level"] = windows["label"].map({0: "low", 1: "mid", 2: "high"})
    model = EngagementModel("xgboost_ordinal", classes=["low", "mid", "high"]).fit(windows, windows["level"])
    proba = model.predict_proba(windows)
    assert proba.shape == (len(windows), 3) and np.allclose(proba.sum(axis=1), 1)
    assert model.positive_.tolist() == ["mid", "high"] and model.calibration_ is not None
    # the engaged probability rises with the level, and the position is monotone in the signal
    by_level = pd.Series(model.engagement_probability(windows)).groupby(windows["label"]).mean()
    assert by_level.is_monotonic_increasing and by_level[2] - by_level[0] > 0.3
    model.save(tmp_path / "m")
    again = ge.load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(windows), proba, atol=1e-6)
    result = cross_validate(windows, target="level", estimator="xgboost_ordinal", n_splits=4,
                            classes=["low", "mid", "high"])
    metrics = summarize(result, n_boot=50)["metrics"]
    assert metrics["auc_engaged"] > 0.85 and metrics["balanced_accuracy"] > 0.55
    scored = ge.score(windows.head(20).assign(window_ok=True), model=again)  # reasons from the ordinal position
    assert scored["reason_text"].str.startswith("predicted ").all()
    assert set(scored["engagement_pred"]) <= {"low", "mid", "high"}


def test_score_refuses_features_from_other_model_weights(rng, tmp_path: Path) -> None:
    windows = _binary(rng)
    table = _write_table(windows, tmp_path / "train")
    meta = json.loads((tmp_path / "train" / "windows.meta.json").read_text())
    meta["feature_models"] = {"landmarks": "a" * 64, "expression": "b" * 64}
    (tmp_path / "train" / "windows.meta.json").write_text(json.dumps(meta))
    model = ge.train(table, target="label")
    other = _write_table(windows, tmp_path / "other")
    meta["feature_models"]["expression"] = "c" * 64  # e.g. windows extracted after the expression CNN changed
    (tmp_path / "other" / "windows.meta.json").write_text(json.dumps(meta))
    with pytest.raises(SchemaError, match="feature_models.expression: the table's features come from other"):
        ge.score(other, model=model)


def test_score_refuses_windows_of_other_feature_code() -> None:
    """A model records the features' computation version of its training table (FEATURES_VERSION); a table made by
    other code (or by build_dataset before the version was recorded) is refused, one made in memory is not judged."""
    from geoengage.geometry.registry import FEATURES_VERSION
    from geoengage.predict import settings_differences

    trained = {"windows": {"window_s": 10.0, "step_s": 5.0}, "feature_models": {"landmarks": "a"},
               "features_version": FEATURES_VERSION}
    same = {"windows": {"window_s": 10.0, "step_s": 5.0}, "feature_models": {"landmarks": "a"},
            "features_version": FEATURES_VERSION}
    assert settings_differences(trained, same) == []
    older = {**same, "features_version": FEATURES_VERSION - 1}
    assert any("features_version" in p and "extract the media again" in p for p in settings_differences(trained, older))
    unrecorded = {k: v for k, v in same.items() if k != "features_version"}  # build_dataset before the version
    assert any("version before 2" in p for p in settings_differences(trained, unrecorded))
    in_memory = {"windows": {"window_s": 10.0, "step_s": 5.0}}  # make_windows in this process: nothing to compare
    assert settings_differences(trained, in_memory) == []


def test_score_refuses_rates_of_other_window_code(rng) -> None:
    """A model with ``rate`` features refuses windows whose aggregations were computed by other code (before
    2026-12-03 a blink under way when a window began was counted in it too); models without rates do not care."""
    from geoengage.predict import check_settings, settings_differences
    from geoengage.testing import synthetic_frames
    from geoengage.windows import AGGREGATION_VERSION, FeatureName, FeatureSet, make_windows

    frames = synthetic_frames({"yaw_deg": np.zeros(60), "blink": (np.arange(60) % 7 == 0).astype(float)}, fps=2.0)
    windows = make_windows(frames, window_s=10.0, step_s=5.0, feature_set=FeatureSet(
        "rates", (FeatureName("blink", "rate"),)))
    assert windows.attrs["geoengage"]["windows"]["aggregation_version"] == AGGREGATION_VERSION
    trained = {"windows": windows.attrs["geoengage"]["windows"]}
    old = {"windows": {k: v for k, v in trained["windows"].items() if k != "aggregation_version"}}  # before it
    problems = settings_differences(trained, old, ["blink__rate", "ear__mean"])
    assert len(problems) == 1 and "aggregation_version" in problems[0] and "blink__rate" in problems[0]
    assert settings_differences(trained, old, ["ear__mean"]) == []  # no rate: the change does not touch it
    assert settings_differences(trained, trained, ["blink__rate"]) == []
    train = _binary(rng).assign(blink__rate=lambda d: d["signal__mean"].abs())
    model = EngagementModel("logistic", features=["signal__mean", "blink__rate"]).fit(train, train["label"])
    model.settings_ = trained
    table = train.copy()
    table.attrs = {"geoengage": old}
    with pytest.raises(SchemaError, match="aggregation_version"):
        check_settings(model, table)


def test_a_logistic_model_saves_as_json_and_explains_itself(rng, tmp_path: Path) -> None:
    """Logistic regression (chosen by leave-one-data-set-out where XGBoost did no better) is saved as plain JSON,
    loads to the same probabilities, and its reasons add up: contributions + base = the log-odds it calibrates."""
    from geoengage.report.explain import explain_model

    windows = _binary(rng)
    model = ge.train(windows, target="label", estimator="logistic", out=tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "model.json").read_text())
    assert saved["kind"] == "logistic" and len(saved["coef"][0]) == len(model.features_)
    loaded = ge.load_model(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(windows), model.predict_proba(windows), atol=1e-12)
    explanation = explain_model(loaded, windows)
    log_odds = explanation.values[:, :, 1].sum(axis=1) + explanation.base[1]
    raw = loaded.raw_output(windows)[:, 1]
    np.testing.assert_allclose(log_odds, np.log(raw / (1 - raw)), atol=1e-8)
    assert explanation.values.shape == (len(windows), len(model.features_), 2)
