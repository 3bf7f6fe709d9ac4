"""Model -> explanations: SHAP (TreeExplainer) values, global importance and per-window reasons in words.

For every window, SHAP splits the model's output (log-odds) into one contribution per feature.
:func:`global_importance` ranks features by mean absolute contribution (per class);
:func:`explain_windows` names, in plain words, the features that pushed each window most
towards its predicted class, e.g. ``predicted 0: gaze on screen in 40% of the window (pushes
+0.81), 3.0 blinks per minute (+0.35)``. shap is imported lazily (optional extra ``[shap]``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import InvalidParameterError, MissingDependencyError
from ..geometry.registry import feature_specs
from ..modeling.train import EngagementModel
from ..windows import parse_feature_name

__all__ = ["Explanation", "describe_feature", "explain_model", "explain_windows", "feature_label", "global_importance",
           "reasons_in_words", "top_reasons"]

#: Short human names of common signals (others are shown by their column name).
SIGNAL_LABELS = {
    "on_screen": "gaze on screen", "blink": "blinks", "yaw_deg": "head yaw (deg)", "pitch_deg": "head pitch (deg)",
    "roll_deg": "head roll (deg)", "ear": "eye aspect ratio", "eye_closure": "eye closure",
    "gaze_h_ratio": "horizontal iris position", "gaze_v_ratio": "vertical iris position",
    "gaze_yaw_deg": "gaze yaw (deg)", "mouth_aspect_ratio": "mouth opening", "smile_width_iod": "smile width",
    "mouth_corner_lift_iod": "mouth-corner lift", "brow_raise_iod": "brow raise", "brow_furrow_iod": "brow gap",
    "eye_openness_iod": "eye openness", "head_z_mm": "distance to camera (mm)", "iod_px": "face size (px)",
    "face_sharpness": "image sharpness", "face_brightness": "face brightness",
    "gaze_pitch_deg": "gaze pitch (deg)", "gaze_cnn_yaw_deg": "gaze yaw, gaze CNN (deg)",
    "gaze_cnn_pitch_deg": "gaze pitch, gaze CNN (deg)", "on_screen_cnn": "gaze on screen (gaze CNN)",
}


_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Explanation:
    """SHAP values of a model on some windows: ``values`` is (n_windows, n_features, n_classes)."""

    values: np.ndarray
    base: np.ndarray
    data: np.ndarray
    features: list[str]
    classes: list[object]


def explain_model(model: EngagementModel, windows: pd.DataFrame) -> Explanation:
    """SHAP values of ``model`` on ``windows``: TreeExplainer's for XGBoost; for logistic regression the exact
    linear ones (coefficient x standardised distance from the training mean, in log-odds).

    For a binary model, a contribution to the log-odds of the second class counts against the first. For an
    ordinal model (one regressed position), a contribution that raises the position pushes towards the upper
    classes and away from the lower ones (scaled from -1 for the first class to +1 for the last; a middle
    class gets none).
    """
    try:
        import shap
    except ImportError as err:
        raise MissingDependencyError("explanations need shap: pip install 'geoengage[shap]'.") from err
    data = model._matrix(windows)
    if model.estimator == "logistic":  # exact for a linear model: coefficient x standardised deviation from the
        scaler = model.pipeline_.named_steps["scale"]  # training mean (SHAP's LinearExplainer, independent features)
        linear = model.booster
        z = (data - scaler.mean_) / scaler.scale_
        values = z * linear.coef_[0] if linear.coef_.shape[0] == 1 else z[:, :, None] * linear.coef_.T[None]
        return _directed(model, values, np.asarray(linear.intercept_, dtype=np.float64), data)
    explainer = _EXPLAINERS.get(model.booster)
    if explainer is None:  # building one converts the whole forest: keep it while the model lives
        explainer = _EXPLAINERS[model.booster] = shap.TreeExplainer(model.booster)
    values = np.asarray(explainer.shap_values(data))
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    return _directed(model, values, base, data)


def _directed(model: EngagementModel, values: np.ndarray, base: np.ndarray, data: np.ndarray) -> Explanation:
    """Per-class contributions (n, features, classes) from a one-output model's (n, features)."""
    if values.ndim == 2:  # one output: a binary model's log-odds of the second class, or an ordinal position
        k = len(model.classes_)
        direction = np.linspace(-1.0, 1.0, k)  # towards the last class +, the first -, a middle one 0
        values = values[..., None] * direction
        base = base[0] * direction
    return Explanation(values, base, data, list(model.features_), list(model.classes_))


def global_importance(explanation: Explanation) -> pd.DataFrame:
    """Mean absolute SHAP value per feature (rows) and class (columns), most important first."""
    table = pd.DataFrame(np.abs(explanation.values).mean(axis=0), index=explanation.features,
                         columns=[str(c) for c in explanation.classes])
    return table.loc[table.mean(axis=1).sort_values(ascending=False).index]


_AGG_WORDS = {"mean": "mean", "median": "median", "std": "variability (sd) of", "p10": "low (10th pct.)",
              "p90": "high (90th pct.)"}
#: Aggregations said as a phrase of their own: (without a value, with one) for :func:`feature_label` and
#: :func:`describe_feature`.
_AGG_PHRASES = {
    "frac": ("{label}, share of the window", "{label} in {value:.0%} of the window"),
    "above": ("{label} >= {param:g}, share of the window", "{label} >= {param:g} in {value:.0%} of the window"),
    "rate": ("{label} per minute", "{value:.1f} {label} per minute"),
    "slope": ("{label}, change per second", "{label} changing by {value:+.3g} per second"),
    "value": ("{label}", "{label} {value:.3g}"),
}


def _signal_label(signal: str) -> str:
    """A signal in words with its unit: :data:`SIGNAL_LABELS`, else the registry's unit beside the column name."""
    if signal in SIGNAL_LABELS:
        return SIGNAL_LABELS[signal]

    units = {spec.name: spec.unit for spec in feature_specs()}
    unit = units.get(signal, "")
    return f"{signal} ({unit})" if unit and unit not in ("ratio", "flag", "probability") else signal


def _phrase(parsed, label: str, value: float | None) -> str | None:  # type: ignore[no-untyped-def]
    """The feature in words, with ``value`` when given; None for an aggregation the callers say themselves."""
    with_value = value is not None
    if parsed.agg in _AGG_PHRASES:
        return _AGG_PHRASES[parsed.agg][with_value].format(label=label, param=parsed.param, value=value)
    if parsed.agg not in _AGG_WORDS:
        return label
    words = _AGG_WORDS[parsed.agg]
    if parsed.signal.startswith("expr_emb_"):  # an axis of the CNN's appearance embedding: no unit, in sds
        axis = parsed.signal[len("expr_emb_"):]
        return f"{words} appearance axis {axis} {value:+.2f} sd" if with_value else f"{words} appearance axis {axis} (sd)"
    if parsed.signal.startswith("expr_"):  # expression probabilities read as shares
        text = f"{words} {parsed.signal[len('expr_'):]} expression probability"
        return f"{text} {value:.0%}" if with_value else text
    return None


def feature_label(name: str) -> str:
    """A window feature in the words the reasons use, without a value (``"mean sad expression probability"``,
    ``"variability (sd) of head yaw (deg)"``); names that are not window features come back as they are."""
    try:
        parsed = parse_feature_name(name)
    except InvalidParameterError:  # a column that is not <signal>__<agg> keeps its name
        return name
    label = _signal_label(parsed.signal)
    return _phrase(parsed, label, None) or f"{_AGG_WORDS[parsed.agg]} {label}"


def describe_feature(name: str, value: float) -> str:
    """A window feature and its value in words (``"gaze on screen in 40% of the window"``)."""
    parsed = parse_feature_name(name)
    label = SIGNAL_LABELS.get(parsed.signal, parsed.signal)
    if not np.isfinite(value):
        return f"{label}: missing"
    phrase = _phrase(parsed, label, value)
    if phrase is not None:
        return phrase
    words = _AGG_WORDS[parsed.agg]
    if parsed.signal in ("on_screen", "on_screen_cnn") and parsed.agg in ("mean", "median"):
        return f"{label} in {value:.0%} of the window"
    return f"{words} {label} {value:.3g}"


#: Below this a share (an expression probability, a fraction of the window) reads as "0%": an absence.
ABSENT_BELOW = 0.005


def is_absence(name: str, value: float) -> bool:
    """Whether a window feature's value says something was absent (a share or probability that reads 0%) rather
    than what the person did."""
    try:
        parsed = parse_feature_name(name)
    except InvalidParameterError:
        return False
    share = parsed.agg in ("frac", "above") or (parsed.signal.startswith("expr_") and not
                                                parsed.signal.startswith("expr_emb_") and parsed.agg != "std")
    return share and np.isfinite(value) and abs(value) < ABSENT_BELOW


def top_reasons(explanation: Explanation, *, top: int = 3, predicted: np.ndarray | None = None
                ) -> list[tuple[object, list[dict[str, object]]]]:
    """For each window: the predicted class and up to ``top`` features pushing towards it.

    ``predicted`` gives each window's class index (the model's decision rule, :meth:`EngagementModel.decide`);
    by default the class with the largest log-odds. Each reason is ``{"feature", "value", "text",
    "contribution"}``; ``contribution`` is the SHAP value (log-odds, before calibration) towards the
    predicted class, positive and largest first. What the person did comes first: an absence (:func:`is_absence`,
    "mean sad expression probability 0%") is a reason only where it pushes harder than every feature present.
    """
    if predicted is None:
        predicted = (explanation.values.sum(axis=1) + explanation.base).argmax(axis=1)
    out = []
    for i, k in enumerate(predicted):
        contributions = explanation.values[i, :, k]
        ranked = [j for j in np.argsort(-contributions) if contributions[j] > 0]
        absent = {j for j in ranked if is_absence(explanation.features[j], explanation.data[i, j])}
        strongest_present = max((contributions[j] for j in ranked if j not in absent), default=0.0)
        order = [j for j in ranked if j not in absent or contributions[j] > strongest_present][:top]
        out.append((explanation.classes[k], [
            {"feature": explanation.features[j], "value": float(explanation.data[i, j]),
             "text": describe_feature(explanation.features[j], explanation.data[i, j]),
             "contribution": float(contributions[j])} for j in order]))
    return out


def reasons_in_words(label: object, reasons: list[dict[str, object]], *, contributions: bool = True) -> str:
    """One window's reasons from :func:`top_reasons` as a sentence, with or without the SHAP values."""
    words = ", ".join(f"{r['text']} ({r['contribution']:+.2f})" if contributions else str(r["text"]) for r in reasons)
    # a class named very_engaged reads "very engaged"
    return f"predicted {str(label).replace('_', ' ')}: " + (words or "no single feature stands out")


def explain_windows(explanation: Explanation, *, top: int = 3, predicted: np.ndarray | None = None) -> list[str]:
    """For each window: the predicted class and the ``top`` features pushing towards it, in words."""
    return [reasons_in_words(label, reasons)
            for label, reasons in top_reasons(explanation, top=top, predicted=predicted)]
