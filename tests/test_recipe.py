"""recipe.py: one function makes windows from frames, every entry point calls it, and a model's recipe comes back
from its settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geoengage as ge
import geoengage.recipe
from geoengage.clean import CleanConfig, clean_frames
from geoengage.dataset import WindowConfig, build_dataset, import_dataset
from geoengage.exceptions import InvalidParameterError
from geoengage.live import LiveConfig, run_live
from geoengage.modeling.sequence import SequenceModel
from geoengage.predict import PredictConfig, predict_frames, sequence_windows
from geoengage.recipe import Recipe, WindowChanges, frames_to_windows
from geoengage.testing import synthetic_frames
from geoengage.windows import make_windows


def test_frames_to_windows_is_cleaning_then_windows(rng) -> None:
    yaw = rng.normal(0, 3, 300)
    yaw[[40, 200]] = [80.0, -80.0]  # one-frame spikes the jump rule masks
    frames = synthetic_frames({"yaw_deg": yaw, "pitch_deg": rng.normal(0, 2, 300), "ear": np.full(300, 0.3),
                               "eye_closure": np.zeros(300), "mouth_aspect_ratio": np.full(300, 0.1),
                               "blink": np.zeros(300), "on_screen": np.ones(300)})
    recipe = Recipe(clean=CleanConfig(max_gap_s=0.0), window_s=2.0, step_s=1.0, min_coverage=0.5, features="minimal")
    done = frames_to_windows(frames, recipe)
    cleaned = clean_frames(frames, config=recipe.clean)
    by_hand = make_windows(cleaned.frames, window_s=2.0, step_s=1.0, min_coverage=0.5, feature_set="minimal")
    pd.testing.assert_frame_equal(done.windows, by_hand)
    assert done.cleaning.masked.loc["jump", "yaw_deg"] == 2 == cleaned.masked.loc["jump", "yaw_deg"]
    assert recipe.with_windows(WindowChanges(step_s=0.5)) == Recipe(clean=recipe.clean, window_s=2.0, step_s=0.5,
                                                                    min_coverage=0.5, features="minimal")
    assert recipe.with_windows(WindowChanges()) is recipe
    with pytest.raises(InvalidParameterError, match="min_coverage"):
        Recipe(min_coverage=1.5)


def test_window_settings_are_checked_by_the_recipe_and_its_changes_only() -> None:
    """A window setting is checked where a recipe is made or changed, whichever entry point asks for it."""
    for bad in ({"window_s": 0}, {"step_s": -1.0}, {"min_coverage": 1.5}):
        with pytest.raises(InvalidParameterError):
            WindowChanges(**bad)
        with pytest.raises(InvalidParameterError):
            WindowConfig(**bad)  # a data set's windows (min_coverage was not checked here before)
    with pytest.raises(InvalidParameterError, match="windows.step_s"):
        LiveConfig(windows=WindowChanges(step_s=2.0))  # live mode makes a record every LiveConfig.step_s
    assert PredictConfig().windows == WindowChanges() == LiveConfig().windows


def test_the_model_carries_its_recipe() -> None:
    model = ge.load_default_model()
    recipe = model.recipe
    settings = model.settings_
    assert (recipe.window_s, recipe.step_s, recipe.min_coverage) == (
        settings["windows"]["window_s"], settings["windows"]["step_s"], settings["windows"]["min_coverage"])
    assert recipe.clean == CleanConfig(**{k: tuple(v) if isinstance(v, list) else v
                                          for k, v in settings["clean"].items()})
    assert recipe.features.columns == list(model.features_)


def test_every_entry_point_windows_through_the_recipe(media_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """``extract``, ``import``, scoring a recording (and the service's sequence model) and live mode all make their
    windows with frames_to_windows."""
    calls: list[float] = []
    real = geoengage.recipe.make_windows

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["window_s"])
        return real(*args, **kwargs)

    monkeypatch.setattr(geoengage.recipe, "make_windows", counted)
    build_dataset([ge.MediaItem(str(media_dir / "one_face.jpg"), "one_face.jpg", {})], tmp_path / "extract",
                  windows=WindowConfig(window_s=3.0, step_s=3.0))
    assert calls == [3.0]
    frames = ge.extract_frames(media_dir / "one_face.avi")
    predict_frames(frames, config=PredictConfig(windows=WindowChanges(window_s=1.0, step_s=1.0), top_reasons=0))
    assert calls[-1] == 1.0
    rng = np.random.default_rng(0)
    sequences = pd.DataFrame([{"video_id": f"v{r}", "track_id": 0, "window_idx": k, "window_ok": True, "label": r % 2,
                               "yaw_deg__median": rng.normal() + r % 2, "ear__mean": rng.normal()}
                              for r in range(8) for k in range(3)])
    sequence = SequenceModel(hidden=4, max_epochs=2, n_seeds=1, early_stopping=False).fit(sequences, "label")
    sequence.settings_ = {"windows": {"window_s": 0.9, "step_s": 0.9, "min_coverage": 0.3}}
    assert "engagement_so_far" in sequence_windows(frames, sequence, clean=CleanConfig()).columns
    assert calls[-1] == 0.9
    frames.assign(video_id="a.csv").pipe(_openface_csv, tmp_path / "a.csv")
    import_dataset([tmp_path / "a.csv"], tmp_path / "import", tool="openface", fps=30.0, frame_size=(640, 480),
                   windows=WindowConfig(window_s=0.5, step_s=0.5))
    assert calls[-1] == 0.5
    before = len(calls)
    run_live(media_dir / "one_face.avi", lambda record: None, config=LiveConfig(realtime=False,
                                                                               windows=WindowChanges(window_s=0.7),
                                                                               step_s=0.7))
    assert len(calls) > before and set(calls[before:]) == {0.7}


def _openface_csv(frames: pd.DataFrame, path: Path) -> None:
    """The landmarks of extracted frames written as an OpenFace 2.x CSV."""
    table = pd.DataFrame({"frame": frames.frame_idx + 1, "face_id": 0, "timestamp": frames.time_s,
                          "confidence": 0.98, "success": frames.face_found.astype(int)})
    for k in range(68):
        table[f"x_{k}"] = frames[f"lm{k:02d}_x_px"].to_numpy()
        table[f"y_{k}"] = frames[f"lm{k:02d}_y_px"].to_numpy()
    table.to_csv(path, index=False)
