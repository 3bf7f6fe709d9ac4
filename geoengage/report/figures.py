"""Evaluation results -> figures as PNG bytes (matplotlib, Agg backend), embedded in the HTML report."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from ..modeling.cv import CVResult
from .explain import Explanation, feature_label, global_importance

__all__ = ["confusion_figure", "importance_figure", "matrix_figure", "reliability_figure", "roc_figure",
           "shap_beeswarm_figure"]


def _png(fig) -> bytes:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _figure(width: float = 5.0, height: float = 4.0):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def roc_figure(results: dict[str, CVResult]) -> bytes:
    """ROC curves per estimator: the positive class (two classes) or each class against the rest, plus engaged
    (the positive classes together) against not engaged."""
    from sklearn.metrics import roc_curve

    fig, ax = _figure()
    for name, result in results.items():
        y = result.predictions["y_true"].to_numpy()
        classes = result.positive[:1] if len(result.classes) == 2 and result.positive else result.classes
        for cls in classes:
            if 0 < np.sum(y == cls) < len(y):
                fpr, tpr, _ = roc_curve(y == cls, result.predictions[f"proba_{cls}"])
                ax.plot(fpr, tpr, label=f"{name}: {cls} vs rest")
        engaged = np.isin(y, np.asarray(result.positive, dtype=object))
        if len(result.classes) > 2 and result.positive and 0 < engaged.sum() < len(y):
            fpr, tpr, _ = roc_curve(engaged, result.predictions["p_engaged"])
            ax.plot(fpr, tpr, linestyle="--", label=f"{name}: engaged ({', '.join(map(str, result.positive))})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (out-of-fold)")
    ax.legend(fontsize=7)
    return _png(fig)


def confusion_figure(result: CVResult) -> bytes:
    """Row-normalised confusion matrix of one estimator."""
    from sklearn.metrics import confusion_matrix

    lookup = {c: k for k, c in enumerate(result.classes)}
    matrix = confusion_matrix([lookup[v] for v in result.predictions["y_true"]],
                              [lookup[v] for v in result.predictions["y_pred"]], labels=list(range(len(lookup))))
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = _figure(4, 3.5)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=8)
    ticks = [str(c) for c in result.classes]
    ax.set(xticks=range(len(ticks)), yticks=range(len(ticks)), xticklabels=ticks, yticklabels=ticks,
           xlabel="predicted", ylabel="true", title=f"{result.estimator}: confusion matrix")
    return _png(fig)


def importance_figure(explanation: Explanation, *, top: int = 15) -> bytes:
    """Mean |SHAP| of the ``top`` features, stacked by class."""
    table = global_importance(explanation).head(top).iloc[::-1]
    fig, ax = _figure(6, 0.3 * len(table) + 1.2)
    left = np.zeros(len(table))
    for cls in table.columns:
        ax.barh([feature_label(name) for name in table.index], table[cls], left=left, label=f"class {cls}")
        left += table[cls].to_numpy()
    ax.set(xlabel="mean |SHAP| (log-odds)", title="global feature importance")
    ax.legend(fontsize=7)
    return _png(fig)


def shap_beeswarm_figure(explanation: Explanation, class_index: int, *, top: int = 12) -> bytes:
    """SHAP beeswarm of one class: each dot a window, colour the feature's value (low blue, high red)."""
    values = explanation.values[:, :, class_index]
    order = np.argsort(-np.abs(values).mean(axis=0))[:top][::-1]
    fig, ax = _figure(6, 0.35 * len(order) + 1.2)
    rng = np.random.default_rng(0)
    for row, j in enumerate(order):
        data = pd.Series(explanation.data[:, j])
        colour = data.rank(pct=True).fillna(0.5).to_numpy()
        ax.scatter(values[:, j], row + rng.uniform(-0.3, 0.3, len(values)), c=colour, cmap="coolwarm", s=6)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(yticks=range(len(order)), yticklabels=[feature_label(explanation.features[j]) for j in order],
           xlabel=f"SHAP value for class {explanation.classes[class_index]}", title="per-window contributions")
    return _png(fig)


def reliability_figure(results: dict[str, dict]) -> bytes:
    """Reliability diagram of P(engaged): per result (name -> :func:`~geoengage.report.metrics.summarize` output),
    the observed share engaged against the mean probability in each bin, with its ECE."""
    fig, ax = _figure()
    for name, summary in results.items():
        calibration = summary["metrics"].get("calibration", {})
        bins = calibration.get("bins_engaged")
        if bins:
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                    label=f"{name} (ECE {calibration['ece_engaged']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="P(engaged), mean in bin", ylabel="share engaged", title="Reliability of P(engaged)",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7)
    return _png(fig)


def matrix_figure(matrix: pd.DataFrame, *, title: str, label: str = "AUC") -> bytes:
    """A table of figures (rows: trained on, columns: tested on) as a heat map with its values written in."""
    fig, ax = _figure(1.2 + 1.1 * matrix.shape[1], 1.0 + 0.9 * matrix.shape[0])
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="viridis", vmin=0.5, vmax=1.0)
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, "-" if np.isnan(value) else f"{value:.3f}", ha="center", va="center", color="white")
    ax.set_xticks(range(matrix.shape[1]), [f"test {c}" for c in matrix.columns])
    ax.set_yticks(range(matrix.shape[0]), [f"train {r}" for r in matrix.index])
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=label)
    return _png(fig)
