"""report/explain.py: SHAP values add up to the model's output and name the feature that carries the label."""

from __future__ import annotations

import numpy as np
import pytest

from geoengage.modeling.train import fit_model
from geoengage.report.explain import describe_feature, explain_model, explain_windows, global_importance
from geoengage.testing import synthetic_windows


@pytest.mark.parametrize("classes", [2, 3])
def test_shap_values_add_up_and_rank_the_signal_first(rng, classes: int) -> None:
    windows = synthetic_windows(rng, classes=classes)
    model = fit_model(windows, target="label")
    explanation = explain_model(model, windows)
    assert explanation.values.shape == (len(windows), 3, classes)
    margin = model.booster.predict(model._matrix(windows), output_margin=True)
    total = explanation.values.sum(axis=1) + explanation.base
    if classes == 2:
        np.testing.assert_allclose(total[:, 1], margin, atol=1e-4)
    else:
        np.testing.assert_allclose(total, margin, atol=1e-4)
    assert global_importance(explanation).index[0] == "signal__mean"
    texts = explain_windows(explanation)
    assert len(texts) == len(windows) and all(t.startswith("predicted ") for t in texts)
    assert np.mean(["signal__mean" in t or "signal" in t for t in texts]) > 0.8


def test_feature_descriptions() -> None:
    assert describe_feature("on_screen__frac", 0.6) == "gaze on screen in 60% of the window"
    assert describe_feature("blink__rate", 3.0) == "3.0 blinks per minute"
    assert describe_feature("eye_closure__above__0.5", 0.1) == "eye closure >= 0.5 in 10% of the window"
    assert describe_feature("yaw_deg__median", -12.34) == "median head yaw (deg) -12.3"
    # expression probabilities as shares, embedding axes in sds, never "mean expr_sad 0.0212"
    assert describe_feature("expr_sad__mean", 0.0212) == "mean sad expression probability 2%"
    assert describe_feature("expr_emb_03__mean", 1.234) == "mean appearance axis 03 +1.23 sd"
    assert describe_feature("on_screen__mean", 0.38) == "gaze on screen in 38% of the window"
    assert describe_feature("ear__mean", float("nan")) == "eye aspect ratio: missing"


def test_gaze_cnn_features_in_words() -> None:
    assert describe_feature("on_screen_cnn__frac", 0.4) == "gaze on screen (gaze CNN) in 40% of the window"
    assert describe_feature("gaze_cnn_yaw_deg__median", 12.3) == "median gaze yaw, gaze CNN (deg) 12.3"


def test_reasons_name_what_was_present_before_absences() -> None:
    """'mean sad expression probability 0%' is no reason while something present pushes harder; it is one where it
    pushes harder than everything present."""
    from geoengage.report.explain import Explanation, is_absence, top_reasons

    features = ["expr_sad__mean", "expr_angry__mean", "yaw_deg__mean", "expr_happy__mean"]
    data = np.array([[0.0, 0.001, 12.0, 0.4], [0.0, 0.001, 12.0, 0.4]])
    values = np.zeros((2, 4, 2))
    values[0, :, 1] = [0.5, 0.4, 0.3, 0.2]   # the absences push harder than anything present: they are reasons
    values[1, :, 1] = [0.2, 0.1, 0.6, 0.3]   # present features push hardest: the absences are no reasons
    explanation = Explanation(values, np.zeros(2), data, features, ["not_engaged", "engaged"])
    assert is_absence("expr_sad__mean", 0.0) and not is_absence("expr_happy__mean", 0.4)
    assert not is_absence("yaw_deg__mean", 0.0) and not is_absence("expr_sad__std", 0.0)
    (_, first), (_, second) = top_reasons(explanation, predicted=np.array([1, 1]))
    assert [r["feature"] for r in second] == ["yaw_deg__mean", "expr_happy__mean"]
    assert not any(r["text"].endswith(" 0%") for r in second)
    assert [r["feature"] for r in first] == ["expr_sad__mean", "expr_angry__mean", "yaw_deg__mean"]
