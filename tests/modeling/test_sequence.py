"""modeling/sequence.py: a GRU that needs time, exact masking, save/load, scoring with time, recording-level CV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from geoengage.modeling.recording_cv import cross_validate_recordings, feature_importance, time_importance
from geoengage.modeling.recordings import recording_sequences, recording_table
from geoengage.modeling.sequence import SequenceModel, load_sequence_model
from geoengage.predict import score
from geoengage.report.metrics import summarize


def _late_event_windows(rng: np.random.Generator, n_recordings: int = 160, per_subject: int = 4) -> pd.DataFrame:
    """Recordings of 8-14 windows; the label is whether a spike in `event__value` happens in the last 3 windows.

    Every recording has one spike (so the share of spikes, any window-wise statistic and the mean over windows are the
    same for both labels): only *when* it happens decides the label, which a window-wise model cannot see.
    """
    rows = []
    for r in range(n_recordings):
        length = int(rng.integers(8, 15))
        label = int(r % 2)
        at = int(rng.integers(length - 3, length)) if label else int(rng.integers(0, length - 3))
        for k in range(length):
            rows.append({"video_id": f"v{r:03d}", "track_id": 0, "subject_id": f"s{r // per_subject}",
                         "window_idx": k, "window_ok": True, "label": label,
                         "event__value": 3.0 if k == at else rng.normal(0, 0.3),
                         "noise__value": rng.normal(0, 1)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def late_event() -> pd.DataFrame:
    return _late_event_windows(np.random.default_rng(0))


@pytest.fixture(scope="module")
def late_model(late_event: pd.DataFrame) -> SequenceModel:
    train = late_event[late_event.video_id < "v120"]
    return SequenceModel("classification", hidden=16, max_epochs=60, n_seeds=1, dropout=0.0, lr=1e-2,
                         early_stopping=False, random_state=0).fit(train, "label")


def test_gru_learns_a_late_event_task_that_windows_cannot(late_event: pd.DataFrame, late_model: SequenceModel) -> None:
    held = late_event[late_event.video_id >= "v120"]
    predicted = late_model.predict_recordings(held)
    truth = held.groupby("video_id")["label"].first().loc[predicted.video_id].to_numpy()
    assert np.mean(predicted.prediction.to_numpy().astype(int) == truth) >= 0.95
    # a window-wise view (the recording's aggregates) is at chance on the same split
    from sklearn.linear_model import LogisticRegression

    table = recording_table(late_event, ["event__value", "noise__value"], target="label")
    columns = [c for c in table.columns if "__rec_" in c and "slope" not in c]
    train, test = table.video_id < "v120", table.video_id >= "v120"
    baseline = LogisticRegression().fit(table.loc[train, columns], table.loc[train, "label"])
    assert baseline.score(table.loc[test, columns], table.loc[test, "label"]) < 0.7


def test_padding_does_not_change_predictions(late_event: pd.DataFrame, late_model: SequenceModel) -> None:
    one = late_event[late_event.video_id == "v130"]
    alone = late_model.predict_recordings(one)
    together = late_model.predict_recordings(late_event[late_event.video_id.isin(["v130", "v131", "v133"])])
    longest = late_event.groupby("video_id").size().loc[["v130", "v131", "v133"]]
    assert longest.max() > longest["v130"]  # v130 is padded in the batch
    row = together.set_index("video_id").loc["v130"]
    for c in late_model.classes_:
        assert row[f"proba_{c}"] == pytest.approx(alone[f"proba_{c}"].iloc[0], abs=1e-6)


def test_windows_are_read_in_window_order(late_event: pd.DataFrame, late_model: SequenceModel) -> None:
    one = late_event[late_event.video_id == "v125"]
    shuffled = one.sample(frac=1.0, random_state=1)
    a, b = late_model.predict_recordings(one), late_model.predict_recordings(shuffled)
    assert a["proba_1"].iloc[0] == pytest.approx(b["proba_1"].iloc[0], abs=1e-6)


def test_save_and_load_round_trip(tmp_path, late_event: pd.DataFrame, late_model: SequenceModel) -> None:
    late_model.save(tmp_path / "m")
    loaded = load_sequence_model(tmp_path / "m")
    held = late_event[late_event.video_id >= "v150"]
    assert np.allclose(late_model.predict_recordings(held)["proba_1"], loaded.predict_recordings(held)["proba_1"],
                       atol=1e-6)
    state = torch.load(tmp_path / "m" / "sequence.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_scoring_with_time_uses_only_the_windows_so_far(late_event: pd.DataFrame, late_model: SequenceModel) -> None:
    """In a label-0 recording the spike comes early: seen from the windows up to the spike it is a late spike
    (label 1); once later windows arrive it is not. Scoring with time must show both."""
    held = late_event[(late_event.video_id >= "v120") & (late_event.label == 0)]
    spikes = held[held["event__value"] == 3.0].set_index("video_id")["window_idx"]
    video = spikes[(spikes >= 1) & (held.groupby("video_id").size().loc[spikes.index] - spikes >= 5)].index[0]
    one = held[held.video_id == video].reset_index(drop=True)
    at = int(spikes[video])
    with pytest.warns(UserWarning, match="parity"):
        scored = score(one, model=late_model)
    prefix = late_model.predict_recordings(one.iloc[:at + 1])
    assert scored["engagement_so_far_1"].iloc[at] == pytest.approx(prefix["proba_1"].iloc[0], abs=1e-6)
    assert scored["engagement_so_far"].iloc[at] == 1  # the spike is the last window so far
    assert scored["engagement_so_far"].iloc[-1] == scored["engagement_recording"].iloc[-1] == 0


def test_regression_and_recording_cv_with_baselines(rng) -> None:
    """An intensity carried by the sequence's mean level: the GRU and the aggregate baselines all beat the mean."""
    rows = []
    for r in range(60):
        level = [0.0, 0.33, 0.66, 1.0][r % 4]
        for k in range(int(rng.integers(5, 9))):
            rows.append({"video_id": f"v{r}", "subject_id": f"s{r // 2}", "window_idx": k, "window_ok": True,
                         "engagement": level, "gaze__value": level + rng.normal(0, 0.3),
                         "noise__value": rng.normal(0, 1)})
    windows = pd.DataFrame(rows)
    results = cross_validate_recordings(windows, target="engagement", n_splits=3, seed=0,
                                        model=SequenceModel(hidden=8, max_epochs=40, n_seeds=1, lr=3e-3, dropout=0.2))
    assert list(results) == ["gru", "ridge", "xgboost", "mean"]
    mse = {name: summarize(r, n_boot=50)["metrics"]["mse"] for name, r in results.items()}
    assert mse["gru"] < 0.5 * mse["mean"] and mse["ridge"] < 0.5 * mse["mean"]
    predictions = results["gru"].predictions
    assert len(predictions) == 60 and predictions["group"].nunique() == 30
    for fold in predictions.fold.unique():  # subjects never on both sides
        assert not set(predictions.group[predictions.fold == fold]) & set(predictions.group[predictions.fold != fold])
    model = SequenceModel(hidden=8, max_epochs=20, n_seeds=1, lr=3e-3, dropout=0.2).fit(windows, "engagement")
    importance = feature_importance(model, windows, "engagement")
    assert importance.index[0] == "gaze__value" and importance["gaze__value"] > importance["noise__value"]
    assert len(time_importance(model, windows, "engagement")) == 8


def test_a_recording_with_two_labels_is_refused(late_event: pd.DataFrame) -> None:
    broken = late_event.copy()
    broken.loc[broken.index[0], "label"] = 1 - broken.loc[broken.index[0], "label"]
    with pytest.raises(ValueError, match="different 'label' labels"):
        recording_sequences(broken, ["event__value"], target="label")


def test_classification_cv_reports_the_gru_beside_aggregate_baselines(late_event: pd.DataFrame) -> None:
    model = SequenceModel("classification", hidden=16, max_epochs=60, n_seeds=1, dropout=0.0, lr=1e-2,
                          early_stopping=False)
    results = cross_validate_recordings(late_event, target="label", task="classification", n_splits=3, model=model)
    assert list(results) == ["gru", "logistic", "xgboost", "majority"]
    summary = {name: summarize(r, n_boot=50)["metrics"] for name, r in results.items()}
    assert summary["gru"]["balanced_accuracy"] >= 0.9
    assert summary["majority"]["balanced_accuracy"] == 0.5  # (the aggregates' slope partly sees *when*: no bound)
    assert set(results["gru"].predictions.columns) >= {"proba_0", "proba_1", "p_engaged"}


def test_training_is_seeded_and_deterministic(late_event: pd.DataFrame) -> None:
    train = late_event[late_event.video_id < "v040"]

    def fitted(seed: int) -> np.ndarray:
        model = SequenceModel("classification", hidden=8, max_epochs=8, n_seeds=2, random_state=seed)
        return model.fit(train, "label").predict_recordings(train)["proba_1"].to_numpy()

    first, again, other = fitted(0), fitted(0), fitted(1)
    assert np.array_equal(first, again)  # same seed, same numbers, bit for bit
    assert not np.allclose(first, other)


@pytest.mark.parametrize("options", [{"summary": True}, {"attention": False}])
def test_predictions_so_far_equal_the_prefixes_scored_alone(late_event: pd.DataFrame, options: dict) -> None:
    """predict_so_far scores every prefix in one pass; each must equal that prefix scored on its own."""
    model = SequenceModel("classification", hidden=8, max_epochs=3, n_seeds=2, early_stopping=False,
                          **options).fit(late_event[late_event.video_id < "v030"], "label")
    two = late_event[late_event.video_id.isin(["v130", "v131"])].reset_index(drop=True)
    so_far = model.predict_so_far(two)
    for video in ("v130", "v131"):
        rows = np.flatnonzero(two.video_id.to_numpy() == video)
        for k, row in enumerate(rows):
            alone = model.predict_recordings(two.iloc[rows[:k + 1]])["proba_1"].iloc[0]
            assert so_far["proba_so_far_1"].iloc[row] == pytest.approx(alone, abs=1e-6)
