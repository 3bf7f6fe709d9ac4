"""Out-of-fold predictions -> metrics, with 95% confidence intervals from bootstrapping subjects.

Windows of one person are correlated, so intervals resample *subjects* (with replacement)
and recompute the metric on all their windows, ``n_boot`` times; the interval is the 2.5th
and 97.5th percentile (percentile bootstrap). AUC-ROC is binary, or one-vs-rest macro for
several classes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from ..modeling.cv import CVResult

__all__ = ["HEADLINE_METRICS", "REGRESSION_METRICS", "bootstrap_ci", "calibration", "classification_metrics",
           "regression_metrics", "reliability", "summarize"]


def _auc(y_true: np.ndarray, proba: np.ndarray, classes: tuple[object, ...], positive: tuple[object, ...]) -> float:
    """Two classes: AUC of P(positive class); more: one-vs-rest macro AUC."""
    present = np.unique(_codes(y_true, classes))
    if len(present) < 2:
        return float("nan")
    if len(classes) == 2:
        k = classes.index(positive[0]) if positive else 1
        return float(roc_auc_score(_codes(y_true, classes) == k, proba[:, k]))
    if len(present) < len(classes):
        return float("nan")
    return float(roc_auc_score(_codes(y_true, classes), proba, multi_class="ovr", average="macro",
                               labels=list(range(len(classes)))))


def _codes(y: np.ndarray, classes: tuple[object, ...]) -> np.ndarray:
    lookup = {c: k for k, c in enumerate(classes)}
    return np.array([lookup[v] for v in y])


def _auc_engaged(y_true: np.ndarray, proba: np.ndarray, classes: tuple[object, ...],
                 positive: tuple[object, ...]) -> float:
    """AUC of engaged (any positive class) against not engaged, from the summed probability."""
    if not positive:
        return float("nan")
    engaged = np.isin(y_true, np.asarray(positive, dtype=object))
    if engaged.all() or not engaged.any():
        return float("nan")
    columns = [classes.index(c) for c in positive]
    return float(roc_auc_score(engaged, proba[:, columns].sum(axis=1)))


def _minority_recall(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[object, ...]) -> float:
    """Recall of the class with the fewest windows (among those present)."""
    counts = {c: int(np.sum(y_true == c)) for c in classes if np.any(y_true == c)}
    if not counts:
        return float("nan")
    rarest = min(counts, key=counts.get)  # type: ignore[arg-type]
    return float(np.mean(y_pred[y_true == rarest] == rarest))


Metric = Callable[[np.ndarray, np.ndarray, np.ndarray, tuple[object, ...], tuple[object, ...]], float]
#: name -> function(y_true, y_pred, proba, classes, positive)
HEADLINE_METRICS: dict[str, Metric] = {
    "accuracy": lambda t, p, q, c, e: float(accuracy_score(_codes(t, c), _codes(p, c))),
    "balanced_accuracy": lambda t, p, q, c, e: float(balanced_accuracy_score(_codes(t, c), _codes(p, c))),
    "f1_macro": lambda t, p, q, c, e: float(f1_score(_codes(t, c), _codes(p, c), average="macro",
                                                     labels=list(range(len(c))), zero_division=0)),
    "f1_weighted": lambda t, p, q, c, e: float(f1_score(_codes(t, c), _codes(p, c), average="weighted",
                                                        labels=list(range(len(c))), zero_division=0)),
    "auc_roc": lambda t, p, q, c, e: _auc(t, q, c, e),
    "auc_engaged": lambda t, p, q, c, e: _auc_engaged(t, q, c, e),
    "minority_recall": lambda t, p, q, c, e: _minority_recall(t, p, c),
}


def _spearman(t: np.ndarray, p: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(t) == 0 or np.ptp(p) == 0:
        return float("nan")
    return float(spearmanr(t, p).statistic)


def _pearson(t: np.ndarray, p: np.ndarray) -> float:
    if np.ptp(t) == 0 or np.ptp(p) == 0:
        return float("nan")
    return float(np.corrcoef(t, p)[0, 1])


def _accuracy_rounded(t: np.ndarray, p: np.ndarray) -> float:
    """Accuracy after rounding each prediction to the nearest label level (labels with at most 10 levels, such as
    engagement intensities 0, 0.33, 0.66, 1); NaN for continuous labels."""
    levels = np.unique(t)
    if len(levels) > 10:
        return float("nan")
    nearest = levels[np.abs(p[:, None] - levels[None, :]).argmin(axis=1)]
    return float(np.mean(np.isclose(nearest, t)))


#: name -> function(y_true, y_pred) for regressors
REGRESSION_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mse": lambda t, p: float(np.mean((t - p) ** 2)),
    "mae": lambda t, p: float(np.mean(np.abs(t - p))),
    "rmse": lambda t, p: float(np.sqrt(np.mean((t - p) ** 2))),
    "r2": lambda t, p: float(1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2)) if np.ptp(t) else float("nan"),
    "pearson": _pearson,
    "spearman": _spearman,
    "accuracy_rounded": _accuracy_rounded,
}


def regression_metrics(result: CVResult) -> dict[str, float]:
    """MSE, MAE, RMSE, R², Pearson and Spearman correlation and (level labels) rounded accuracy of out-of-fold
    numeric predictions."""
    t, p = result.predictions["y_true"].to_numpy(float), result.predictions["y_pred"].to_numpy(float)
    return {name: f(t, p) for name, f in REGRESSION_METRICS.items()}


def _arrays(result: CVResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = result.predictions
    proba = p[[f"proba_{c}" for c in result.classes]].to_numpy()
    return p["y_true"].to_numpy(), p["y_pred"].to_numpy(), proba


def classification_metrics(result: CVResult) -> dict[str, object]:
    """Headline metrics, per-class precision/recall/F1 and the confusion matrix (rows: true class)."""
    y_true, y_pred, proba = _arrays(result)
    out: dict[str, object] = {name: f(y_true, y_pred, proba, result.classes, result.positive)
                              for name, f in HEADLINE_METRICS.items()}
    t, p_, labels = _codes(y_true, result.classes), _codes(y_pred, result.classes), list(range(len(result.classes)))
    precision, recall, f1, support = precision_recall_fscore_support(t, p_, labels=labels, zero_division=0)
    for average in ("macro", "weighted"):
        p, r, _, _ = precision_recall_fscore_support(t, p_, labels=labels, average=average, zero_division=0)
        out[f"precision_{average}"], out[f"recall_{average}"] = float(p), float(r)
    out["per_class"] = {str(c): {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                                 "support": int(support[i])} for i, c in enumerate(result.classes)}
    out["confusion_matrix"] = confusion_matrix(t, p_, labels=labels).tolist()
    thresholds = [d.get("threshold") for d in result.decision.values() if isinstance(d, dict)]
    if any(v is not None for v in thresholds):
        out["thresholds_per_fold"] = thresholds
    return out


def reliability(probability: np.ndarray, outcome: np.ndarray, *, n_bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error of ``probability`` against the 0/1 ``outcome``, and its equal-width bins.

    ECE = sum over probability bins of (share of windows) x ``|observed rate - mean probability|``.
    """
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        inside = which == b
        if inside.any():
            ece += inside.mean() * abs(outcome[inside].mean() - probability[inside].mean())
            bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(inside.sum()),
                         "confidence": float(probability[inside].mean()), "accuracy": float(outcome[inside].mean())})
    return float(ece), bins


def calibration(result: CVResult, *, n_bins: int = 10) -> dict[str, object]:
    """Brier score and expected calibration error (:func:`reliability`) of the most probable class's probability,
    and of the engaged classes' summed probability (``ece_engaged``: can 0.7 be read as 70% engaged?), with bins."""
    y_true, _, proba = _arrays(result)
    classes = np.asarray(result.classes, dtype=object)
    onehot = (y_true[:, None] == classes[None, :]).astype(float)
    brier = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    correct = (classes[proba.argmax(axis=1)] == y_true).astype(float)
    ece, bins = reliability(proba.max(axis=1), correct, n_bins=n_bins)
    out: dict[str, object] = {"brier": brier, "ece": ece, "bins": bins}
    if result.positive and "p_engaged" in result.predictions:
        engaged = np.isin(y_true, np.asarray(result.positive, dtype=object)).astype(float)
        out["ece_engaged"], out["bins_engaged"] = reliability(result.predictions["p_engaged"].to_numpy(float),
                                                              engaged, n_bins=n_bins)
    return out


def bootstrap_ci(result: CVResult, metric: str, *, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``metric`` over bootstrap resamples of subjects (``predictions.group``)."""
    regression = not result.classes
    y_true, y_pred = result.predictions["y_true"].to_numpy(), result.predictions["y_pred"].to_numpy()
    proba = None if regression else _arrays(result)[2]
    groups = result.predictions["group"]
    if groups.isna().all():  # no subject ids: each window is its own resampling unit (and the report says so)
        members = {i: np.array([i]) for i in range(len(groups))}
    else:
        values = groups.to_numpy()
        members = {g: np.flatnonzero(values == g) for g in pd.unique(values)}
    keys = list(members)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        rows = np.concatenate([members[keys[i]] for i in rng.integers(0, len(keys), len(keys))])
        if regression:
            value = REGRESSION_METRICS[metric](y_true[rows].astype(float), y_pred[rows].astype(float))
        else:
            value = HEADLINE_METRICS[metric](y_true[rows], y_pred[rows], proba[rows], result.classes,
                                             result.positive)
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def summarize(result: CVResult, *, n_boot: int = 1000, seed: int = 0) -> dict[str, object]:
    """Every headline metric with its subject-bootstrap 95% interval, plus the full metrics."""
    if not result.classes:
        regression: dict[str, object] = dict(regression_metrics(result))
        regression["ci95"] = {m: bootstrap_ci(result, m, n_boot=n_boot, seed=seed) for m in REGRESSION_METRICS}
        return {**result.to_dict(), "metrics": regression, "bootstrap_unit": bootstrap_unit(result)}
    metrics = classification_metrics(result)
    metrics["ci95"] = {m: bootstrap_ci(result, m, n_boot=n_boot, seed=seed) for m in HEADLINE_METRICS}
    metrics["calibration"] = calibration(result)
    return {**result.to_dict(), "metrics": metrics, "bootstrap_unit": bootstrap_unit(result)}


def bootstrap_unit(result: CVResult) -> str:
    """What the intervals resample: ``"subjects"``, or ``"windows"`` when the windows carry no subject ids."""
    return "windows" if result.predictions["group"].isna().all() else "subjects"
