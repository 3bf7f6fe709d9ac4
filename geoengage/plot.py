"""Tables -> figures a researcher can put in a paper (matplotlib).

Every function returns a :class:`matplotlib.figure.Figure` and never shows or saves it: restyle it, save it with
``fig.savefig(...)``, or draw into your own axes with ``ax=`` (the function then returns ``ax.figure``). The report's
figures are drawn by these same functions (:mod:`geoengage.report.figures` turns them into PNG).

==========================  ===========================================================================
function                    draws
==========================  ===========================================================================
:func:`timeline`            per-frame signals of one recording over time, per track, with the frames
                            without that face shaded; with scores, the engagement probability per window
:func:`face`                one frame with the face box, 68 landmarks, head axes and gaze ray
:func:`reasons`             one scored window's reasons: each feature's push towards the predicted class
:func:`importance`          mean absolute SHAP value per feature, stacked by class
:func:`shap_beeswarm`       per-window SHAP values of one class, coloured by the feature's value
:func:`setup_audit`         how much of each feature's variance lies between subjects (the set-up audit)
:func:`roc`                 ROC curves of cross-validated results
:func:`confusion`           a row-normalised confusion matrix
:func:`reliability`         reliability diagram of P(engaged), with each result's ECE
:func:`matrix`              a table of figures (trained on x tested on) as a heat map
==========================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .annotate import draw_pose
from .exceptions import InvalidParameterError
from .geometry.registry import feature_specs
from .report.explain import SIGNAL_LABELS, Explanation, feature_label, global_importance

if TYPE_CHECKING:  # types only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .modeling.audit import SetupAudit
    from .modeling.cv import CVResult

__all__ = ["confusion", "face", "importance", "matrix", "off_screen", "reasons", "reliability", "roc", "setup_audit",
           "shap_beeswarm", "timeline"]

#: Signals :func:`timeline` draws by default.
TIMELINE_SIGNALS = ("yaw_deg", "pitch_deg", "on_screen", "ear")


_OFF_SCREEN: ContextVar[bool] = ContextVar("geoengage_plot_off_screen", default=False)


@contextmanager
def off_screen() -> Iterator[None]:
    """Inside this block the functions draw on figures pyplot does not manage: no window opens, the backend is left
    as it is (a notebook's inline backend too), and threads and servers are safe. The report draws this way."""
    token = _OFF_SCREEN.set(True)
    try:
        yield
    finally:
        _OFF_SCREEN.reset(token)


def _figure(width: float, height: float) -> Figure:
    """A new figure of this size (inches): a pyplot figure, so ``plt.show()``, notebooks and galleries see it, or
    inside :func:`off_screen` one pyplot does not manage. matplotlib loads here, so importing geoengage does not."""
    if _OFF_SCREEN.get():
        from matplotlib.figure import Figure as _Figure

        return _Figure(figsize=(width, height), layout="constrained")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), layout="constrained")


def _axes(ax: Axes | None, width: float, height: float) -> Axes:
    """``ax``, or the axes of a new figure of this size."""
    return ax if ax is not None else _figure(width, height).subplots()


def _signal_label(name: str) -> str:
    """A per-frame signal in the reasons' words (``"head yaw (deg)"``), else its name and unit."""
    if name in SIGNAL_LABELS:
        return SIGNAL_LABELS[name]
    unit = {spec.name: spec.unit for spec in feature_specs()}.get(name)
    return f"{name} ({unit})" if unit else name


def timeline(frames: pd.DataFrame, scores: pd.DataFrame | None = None, *,
             signals: Sequence[str] = TIMELINE_SIGNALS, video: str | None = None,
             tracks: Sequence[int] | None = None) -> Figure:
    """Signals of one recording over time, one panel per signal (and one for the scores).

    Parameters
    ----------
    frames : DataFrame
        A per-frame table (:func:`geoengage.extract_frames`, cleaned or not).
    scores : DataFrame, optional
        Scored windows of the same recording (:func:`geoengage.score`): ``engagement_probability`` per window as a
        step from ``start_s`` to ``end_s``; uncertain windows (``uncertain``) drawn with crosses, windows without
        enough face (not scored) left empty.
    signals : sequence of str
        Per-frame columns to draw.
    video : str, optional
        The recording (``video_id``); by default the table's first.
    tracks : sequence of int, optional
        The face tracks to draw; by default every track with a face.

    Frames where a track has no face are gaps in its line; spans where no track has a face are shaded grey.
    """
    if frames.empty:
        raise InvalidParameterError("`frames` is empty: nothing to draw.")
    missing = [s for s in signals if s not in frames.columns]
    if missing:
        raise InvalidParameterError(f"`signals` {missing} are not columns of `frames`.")
    video = str(frames["video_id"].iloc[0]) if video is None else video
    table = frames[frames["video_id"].astype(str) == video]
    if table.empty:
        raise InvalidParameterError(f"`video` {video!r} is not in `frames`.")
    found = table["face_found"].to_numpy(dtype=bool)
    chosen = sorted(int(t) for t in table.loc[found, "track_id"].unique()) if tracks is None else list(tracks)
    times = np.sort(table["time_s"].unique())
    with_face = table.loc[found, "time_s"].unique()
    n_panels = len(signals) + (scores is not None)
    fig = _figure(8.0, 1.6 * n_panels + 0.6)
    panels = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    # the recording's runs of frames without any face, one shaded span each (not one per frame: a long recording
    # would draw thousands)
    faceless = np.concatenate([[False], ~np.isin(times, with_face), [False]])
    starts, ends = np.flatnonzero(~faceless[:-1] & faceless[1:]), np.flatnonzero(faceless[:-1] & ~faceless[1:]) - 1
    for panel in panels:
        for start, end in zip(starts, ends, strict=True):
            panel.axvspan(times[start] - step / 2, times[end] + step / 2, color="0.9", linewidth=0)
    for panel, signal in zip(panels, signals, strict=False):
        for track in chosen:
            rows = table[(table["track_id"] == track) & found].set_index("time_s")[signal]
            line = rows.reindex(times)  # NaN where this track has no face: a gap in the line
            panel.plot(times, line.to_numpy(dtype=float), label=f"track {track}", linewidth=1)
        panel.set_ylabel(_signal_label(signal), fontsize=8)
    if scores is not None:
        panel = panels[-1]
        own = scores[scores["video_id"].astype(str) == video]
        for track in chosen:
            rows = own[own["track_id"] == track].sort_values("start_s")
            colour = None
            for _, window in rows.iterrows():
                value = float(window["engagement_probability"])
                if not np.isfinite(value):
                    continue
                drawn = panel.plot([window["start_s"], window["end_s"]], [value, value], color=colour, linewidth=2)
                colour = drawn[0].get_color()
                if bool(window.get("uncertain", False)):
                    panel.plot([(window["start_s"] + window["end_s"]) / 2], [value], marker="x", color=colour)
        panel.set(ylim=(0, 1), ylabel="P(engaged)")
    if len(chosen) > 1:
        panels[0].legend(fontsize=7, loc="upper right")
    panels[-1].set_xlabel("time (s)")
    panels[0].set_title(f"{video}: grey = no face in the frame" + ("; x = uncertain window" if scores is not None
                                                                     else ""), fontsize=9)
    return fig


def face(image: np.ndarray, row: Mapping[str, object] | pd.Series, *, ax: Axes | None = None) -> Figure:
    """One frame (BGR, as OpenCV reads it) with the face of a per-frame ``row`` drawn on it: box, 68 landmarks,
    head axes (red: across the face, green: up, blue: where it points) and the gaze ray (magenta)."""
    import cv2

    drawn = draw_pose(image, dict(row))
    height, width = drawn.shape[:2]
    ax = _axes(ax, 6.0, 6.0 * height / width)
    ax.imshow(cv2.cvtColor(drawn, cv2.COLOR_BGR2RGB))
    yaw, pitch = row.get("yaw_deg"), row.get("pitch_deg")
    if row.get("face_found") and yaw is not None and np.isfinite(float(yaw)):  # type: ignore[arg-type]
        ax.set_title(f"yaw {float(yaw):+.0f} deg, pitch {float(pitch):+.0f} deg", fontsize=9)  # type: ignore[arg-type]
    ax.set_axis_off()
    return ax.figure


def reasons(window: Mapping[str, object] | pd.Series, *, ax: Axes | None = None) -> Figure:
    """One scored window's reasons (``reasons`` of :func:`geoengage.score`; ask for more with ``top_reasons``):
    each feature's push (SHAP, log-odds) towards the predicted class, labelled in words with its value."""
    found = list(window.get("reasons") or [])  # type: ignore[arg-type]
    if not found:
        raise InvalidParameterError("this window has no reasons (not scored, or scored with top_reasons=0).")
    ax = _axes(ax, 6.0, 0.45 * len(found) + 1.2)
    ax.barh([str(r["text"]) for r in found][::-1], [float(r["contribution"]) for r in found][::-1], color="tab:blue")
    predicted = str(window.get("engagement_pred", "")).replace("_", " ")
    probability = window.get("engagement_probability")
    title = f"predicted {predicted}"
    if probability is not None and np.isfinite(float(probability)):  # type: ignore[arg-type]
        title += f", P(engaged) {float(probability):.2f}"  # type: ignore[arg-type]
    ax.set(xlabel="push towards the predicted class (SHAP, log-odds)", title=title)
    ax.tick_params(axis="y", labelsize=8)
    return ax.figure


def importance(explanation: Explanation, *, top: int = 15, ax: Axes | None = None) -> Figure:
    """Mean absolute SHAP value of the ``top`` features, stacked by class."""
    table = global_importance(explanation).head(top).iloc[::-1]
    ax = _axes(ax, 6.0, 0.3 * len(table) + 1.2)
    left = np.zeros(len(table))
    for cls in table.columns:
        ax.barh([feature_label(name) for name in table.index], table[cls], left=left, label=f"class {cls}")
        left += table[cls].to_numpy()
    ax.set(xlabel="mean |SHAP| (log-odds)", title="global feature importance")
    ax.legend(fontsize=7)
    return ax.figure


def shap_beeswarm(explanation: Explanation, class_index: int, *, top: int = 12, ax: Axes | None = None) -> Figure:
    """SHAP beeswarm of one class: each dot a window, colour the feature's value (low blue, high red)."""
    values = explanation.values[:, :, class_index]
    order = np.argsort(-np.abs(values).mean(axis=0))[:top][::-1]
    ax = _axes(ax, 6.0, 0.35 * len(order) + 1.2)
    rng = np.random.default_rng(0)
    for row, j in enumerate(order):
        data = pd.Series(explanation.data[:, j])
        colour = data.rank(pct=True).fillna(0.5).to_numpy()
        ax.scatter(values[:, j], row + rng.uniform(-0.3, 0.3, len(values)), c=colour, cmap="coolwarm", s=6)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(yticks=range(len(order)), yticklabels=[feature_label(explanation.features[j]) for j in order],
           xlabel=f"SHAP value for class {explanation.classes[class_index]}", title="per-window contributions")
    return ax.figure


def setup_audit(audit: SetupAudit | Mapping[str, Any], *, top: int = 20, ax: Axes | None = None) -> Figure:
    """The set-up audit (:func:`geoengage.modeling.audit.setup_audit`, or its ``to_dict()``): each feature's share of
    variance between subjects (eta², bars; flagged ones red) and its identity score, against the flag line."""
    table = pd.DataFrame(audit["features"] if isinstance(audit, Mapping) else audit.table)
    flag_at = float(audit["flag_at"] if isinstance(audit, Mapping) else audit.flag_at)
    table = table.sort_values("eta2", ascending=False).head(top).iloc[::-1]
    ax = _axes(ax, 6.0, 0.3 * len(table) + 1.2)
    labels = [feature_label(name) for name in table["feature"]]
    colours = ["tab:red" if flagged else "tab:blue" for flagged in table["flagged"]]
    ax.barh(labels, table["eta2"], color=colours, label="between-subject share of variance (eta²)")
    ax.plot(table["identity_score"], labels, "k|", markersize=10, label="identity score")
    ax.axvline(flag_at, color="grey", linestyle="--", linewidth=1)
    ax.set(xlim=(0, 1), xlabel="share", title=f"set-up audit: red = flagged (>= {flag_at:g})")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=7, loc="lower right")
    return ax.figure


def roc(results: Mapping[str, CVResult], *, ax: Axes | None = None) -> Figure:
    """ROC curves per estimator: the positive class (two classes) or each class against the rest, plus engaged
    (the positive classes together) against not engaged."""
    from sklearn.metrics import roc_curve

    ax = _axes(ax, 5.0, 4.0)
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
    return ax.figure


def confusion(result: CVResult, *, ax: Axes | None = None) -> Figure:
    """Row-normalised confusion matrix of one estimator, with counts and shares written in."""
    from sklearn.metrics import confusion_matrix

    lookup = {c: k for k, c in enumerate(result.classes)}
    counts = confusion_matrix([lookup[v] for v in result.predictions["y_true"]],
                              [lookup[v] for v in result.predictions["y_pred"]], labels=list(range(len(lookup))))
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax = _axes(ax, 4.0, 3.5)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, f"{count}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=8)
    ticks = [str(c) for c in result.classes]
    ax.set(xticks=range(len(ticks)), yticks=range(len(ticks)), xticklabels=ticks, yticklabels=ticks,
           xlabel="predicted", ylabel="true", title=f"{result.estimator}: confusion matrix")
    return ax.figure


def reliability(results: Mapping[str, Mapping[str, Any]], *, ax: Axes | None = None) -> Figure:
    """Reliability diagram of P(engaged): per result (name -> :func:`~geoengage.report.metrics.summarize` output),
    the observed share engaged against the mean probability in each bin, with its ECE."""
    ax = _axes(ax, 5.0, 4.0)
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
    return ax.figure


def matrix(table: pd.DataFrame, *, title: str, label: str = "AUC", ax: Axes | None = None) -> Figure:
    """A table of figures (rows: trained on, columns: tested on) as a heat map with its values written in."""
    ax = _axes(ax, 1.2 + 1.1 * table.shape[1], 1.0 + 0.9 * table.shape[0])
    values = table.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="viridis", vmin=0.5, vmax=1.0)
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, "-" if np.isnan(value) else f"{value:.3f}", ha="center", va="center", color="white")
    ax.set_xticks(range(table.shape[1]), [f"test {c}" for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [f"train {r}" for r in table.index])
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label=label)
    return ax.figure
