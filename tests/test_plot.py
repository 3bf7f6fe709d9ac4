"""plot.py: the figures draw what the tables hold (lines, gaps, bars), return figures, and leave the backend alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

import geoengage as ge
from geoengage import plot
from geoengage.exceptions import InvalidParameterError
from geoengage.modeling.audit import setup_audit
from geoengage.recipe import WindowChanges
from geoengage.report.explain import feature_label
from geoengage.testing import synthetic_windows


@pytest.fixture(scope="module")
def clip_frames(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A 3 s clip of the astronaut whose face is gone from 1.0 to 1.5 s."""
    clip = ge.sample_video(tmp_path_factory.mktemp("plot") / "clip.avi", n_frames=90, absent=(1.0, 1.5))
    return ge.extract_frames(clip)


def _grey_spans(ax) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    return sorted((float(p.get_x()), float(p.get_x() + p.get_width())) for p in ax.patches)


def test_timeline_draws_each_signal_with_gaps_where_the_face_is_gone(clip_frames: pd.DataFrame) -> None:
    fig = plot.timeline(clip_frames, signals=["yaw_deg", "ear"])
    yaw_ax, ear_ax = fig.axes
    line = yaw_ax.lines[0]
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata(), dtype=float)
    absent = (x > 1.05) & (x < 1.45)
    assert np.isnan(y[absent]).all() and np.isfinite(y[x < 0.9]).all()  # a gap, not a line across the absence
    # the drawn values are the table's
    found = clip_frames[clip_frames.face_found]
    assert np.allclose(y[np.isin(x, found.time_s)], found.yaw_deg.to_numpy(), equal_nan=True)
    spans = _grey_spans(ear_ax)
    assert spans and spans[0][0] == pytest.approx(1.0, abs=0.05) and spans[-1][1] == pytest.approx(1.5, abs=0.05)
    assert yaw_ax.get_ylabel() == "head yaw (deg)" and yaw_ax.get_xlabel() == "" and ear_ax.get_xlabel() == "time (s)"


def test_timeline_with_scores_draws_each_scored_window(clip_frames: pd.DataFrame) -> None:
    short = WindowChanges(window_s=1.0, step_s=1.0)
    scores = ge.predict_frames(clip_frames, config=ge.PredictConfig(windows=short)).windows
    fig = plot.timeline(clip_frames, scores, signals=["yaw_deg"])
    panel = fig.axes[-1]
    steps = [ln for ln in panel.lines if len(ln.get_xdata()) == 2]
    scored = scores[np.isfinite(scores.engagement_probability)]
    assert len(steps) == len(scored)
    assert sorted(float(ln.get_ydata()[0]) for ln in steps) == pytest.approx(sorted(scored.engagement_probability))
    assert panel.get_ylim() == (0.0, 1.0)
    with pytest.raises(InvalidParameterError, match="not columns"):
        plot.timeline(clip_frames, signals=["no_such_signal"])


def test_face_reasons_and_audit(clip_frames: pd.DataFrame) -> None:
    image = next(f.image for f in ge.iter_frames(clip_frames.source_path.iloc[0]) if f.frame_idx == 10)
    fig = plot.face(image, clip_frames.iloc[10])
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == image.shape and not np.array_equal(shown, image[..., ::-1])  # drawn on, in RGB
    assert fig.axes[0].get_title().startswith("yaw ")

    short = WindowChanges(window_s=1.0, step_s=1.0)
    scores = ge.predict_frames(clip_frames, config=ge.PredictConfig(windows=short, top_reasons=4)).windows
    window = scores[scores.window_ok].iloc[0]
    fig = plot.reasons(window)
    bars = fig.axes[0].patches
    assert len(bars) == len(window.reasons) <= 4
    assert sorted(b.get_width() for b in bars) == pytest.approx(sorted(r["contribution"] for r in window.reasons))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][::-1] == [r["text"] for r in window.reasons]

    windows = synthetic_windows(0, n_subjects=8, per_subject=20)
    audit = setup_audit(windows, features=["signal__mean", "noise__std", "person__mean"])
    fig = plot.setup_audit(audit)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    red = {label for label, bar in zip(labels, fig.axes[0].patches, strict=True)
           if bar.get_facecolor()[:3] == pytest.approx(matplotlib.colors.to_rgb("tab:red"))}
    assert red == {feature_label("person__mean")}  # the feature that names the person is flagged
    assert plot.setup_audit(audit.to_dict()).axes[0].patches[-1].get_width() == pytest.approx(
        audit.table.eta2.max(), abs=1e-4)


def test_off_screen_figures_are_not_pyplots_and_the_backend_stays(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    before = plt.get_fignums()
    windows = synthetic_windows(0, n_subjects=8, per_subject=20)
    audit = setup_audit(windows, features=["signal__mean", "person__mean"])
    with plot.off_screen():
        fig = plot.setup_audit(audit)
    assert plt.get_fignums() == before and fig.canvas is not None
    fig.savefig(tmp_path / "audit.png")
    assert (tmp_path / "audit.png").stat().st_size > 1000
    ge.evaluate(windows, target="label", out=tmp_path / "report", n_splits=3, n_boot=20)
    assert matplotlib.get_backend() == backend and plt.get_fignums() == before  # the report drew off screen
    drawn = plot.setup_audit(audit)
    assert plt.get_fignums() == [*before, drawn.number]  # outside the block: a pyplot figure
    plt.close(drawn)
