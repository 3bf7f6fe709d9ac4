"""Evaluation results -> figures as PNG bytes, embedded in the HTML report: each drawn by the public
function of :mod:`geoengage.plot` that a researcher would call."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from .. import plot
from ..modeling.cv import CVResult
from .explain import Explanation

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_figure", "importance_figure", "matrix_figure", "reliability_figure", "roc_figure",
           "setup_audit_figure", "shap_beeswarm_figure"]


def _png(draw: Callable[[], Figure]) -> bytes:
    """The figure ``draw`` makes, off screen (:func:`geoengage.plot.off_screen`: the caller's backend untouched), as
    PNG bytes."""
    with plot.off_screen():
        fig = draw()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def roc_figure(results: dict[str, CVResult]) -> bytes:
    """:func:`geoengage.plot.roc` as PNG."""
    return _png(lambda: plot.roc(results))


def confusion_figure(result: CVResult) -> bytes:
    """:func:`geoengage.plot.confusion` as PNG."""
    return _png(lambda: plot.confusion(result))


def importance_figure(explanation: Explanation, *, top: int = 15) -> bytes:
    """:func:`geoengage.plot.importance` as PNG."""
    return _png(lambda: plot.importance(explanation, top=top))


def shap_beeswarm_figure(explanation: Explanation, class_index: int, *, top: int = 12) -> bytes:
    """:func:`geoengage.plot.shap_beeswarm` as PNG."""
    return _png(lambda: plot.shap_beeswarm(explanation, class_index, top=top))


def setup_audit_figure(audit: dict) -> bytes:
    """:func:`geoengage.plot.setup_audit` as PNG."""
    return _png(lambda: plot.setup_audit(audit))


def reliability_figure(results: dict[str, dict]) -> bytes:
    """:func:`geoengage.plot.reliability` as PNG."""
    return _png(lambda: plot.reliability(results))


def matrix_figure(matrix: pd.DataFrame, *, title: str, label: str = "AUC") -> bytes:
    """:func:`geoengage.plot.matrix` as PNG."""
    return _png(lambda: plot.matrix(matrix, title=title, label=label))
