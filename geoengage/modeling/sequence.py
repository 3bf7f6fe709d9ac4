"""Recordings -> a sequence model (GRU / LSTM) over each recording's ordered windows: network, estimator, saving.

A recording (``video_id``, ``track_id``) is the sequence of its windows in ``window_idx`` order
(:func:`geoengage.modeling.recordings.recording_sequences`; its label is the one its windows share).
:class:`SequenceModel` maps the sequence (variable length, packed so padding never changes an output) to an
intensity (``task="regression"``, mean squared error) or a class (``task="classification"``, cross-entropy):

    windows (T x F) -> signed log -> robust scale (median / IQR, clipped at +-5; missing -> 0 and a missing-share
    channel) -> dropout -> linear + GELU -> GRU or LSTM -> attention pooling over time (or the last state)
    -> [optional: the recording's mean and sd of the scaled inputs] -> output

Everything fitted (the scaling, the number of epochs, the weights) is fitted inside :meth:`SequenceModel.fit`,
so cross-validation refits it on each training fold: the epoch count is chosen on an inner split that holds out
whole subjects (``groups``), then ``n_seeds`` networks are trained on all the training recordings for that many
epochs and averaged. Training is seeded and deterministic on a CPU.

Recording-level cross-validation beside the recording baselines, and permutation importance, live in
:mod:`geoengage.modeling.recording_cv`.

Saved models are ``sequence.pt`` (a tensor-only state dict, loaded with ``weights_only=True``) and
``sequence.meta.json`` (the configuration, features, classes and recorded settings).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .. import outputs
from ..exceptions import InvalidParameterError, MediaReadError, MissingDependencyError, ModelFileError
from ..geometry.registry import feature_specs
from ..recipe import Recipe, recipe_from_settings
from ..windows import FeatureSet, parse_feature_name
from .folds import feature_columns
from .labels import canonical_labels
from .recordings import recording_sequences, signed_log

__all__ = ["SEQUENCE_SCHEMA_VERSION", "SequenceModel", "load_sequence_model", "media_feature_set"]

SEQUENCE_SCHEMA_VERSION = "geoengage.sequence/1"


def _torch():  # type: ignore[no-untyped-def]
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a core dependency
        raise MissingDependencyError("sequence models need torch: pip install torch.") from err
    return torch


# --- the network ---------------------------------------------------------------------------------------------

def _network(n_inputs: int, n_outputs: int, *, cell: str, hidden: int, attention: bool, dropout: float,
             summary: bool):  # type: ignore[no-untyped-def]
    torch = _torch()
    nn = torch.nn

    class SequenceNet(nn.Module):
        """Input projection -> GRU/LSTM (packed) -> attention pooling -> (+ mean/sd summary) -> output."""

        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_inputs, hidden), nn.GELU())
            self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(hidden, hidden, batch_first=True)
            self.att = nn.Linear(hidden, 1)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(hidden + (2 * n_inputs if summary else 0), n_outputs)

        def _states(self, x, lengths):  # type: ignore[no-untyped-def]
            packed = nn.utils.rnn.pack_padded_sequence(self.inp(x), lengths, batch_first=True, enforce_sorted=False)
            states, _ = self.rnn(packed)
            states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=x.shape[1])
            return states, torch.arange(x.shape[1])[None, :] < lengths[:, None]

        def prefixes(self, x, lengths):  # type: ignore[no-untyped-def]
            """The output for every prefix of every sequence, (batch, time, outputs), from one pass: the recurrence
            runs forwards only, so the state at step k has seen steps 0..k and nothing after (entries at or past a
            sequence's length are padding)."""
            states, mask = self._states(x, lengths)
            steps = x.shape[1]
            upto = torch.tril(torch.ones(steps, steps, dtype=torch.bool))  # [k, j]: step j is in prefix k
            if attention:
                scores = self.att(states).squeeze(-1).masked_fill(~mask, float("-inf"))  # (batch, time)
                weights = torch.softmax(scores[:, None, :].masked_fill(~upto, float("-inf")), dim=2)
                pooled = torch.nan_to_num(weights) @ states  # (batch, prefix, hidden); NaN rows: past the end
            else:
                pooled = states
            if summary:
                count = torch.arange(1, steps + 1, dtype=x.dtype)[None, :, None]
                mean = torch.cumsum(x, dim=1) / count
                sd = (torch.cumsum(x ** 2, dim=1) / count - mean ** 2).clamp(min=0).sqrt()
                pooled = torch.cat([pooled, self.drop(mean), self.drop(sd)], dim=2)
            return self.out(pooled)

        def forward(self, x, lengths):  # type: ignore[no-untyped-def]
            states, mask = self._states(x, lengths)
            if attention:
                scores = self.att(states).squeeze(-1).masked_fill(~mask, float("-inf"))
                pooled = (torch.softmax(scores, dim=1).unsqueeze(-1) * states).sum(dim=1)
            else:
                pooled = states[torch.arange(len(lengths)), lengths - 1]
            if summary:
                m = mask.unsqueeze(-1).to(x.dtype)
                n = lengths[:, None].to(x.dtype)
                mean = (x * m).sum(1) / n
                sd = (((x - mean[:, None]) ** 2 * m).sum(1) / n).sqrt()
                pooled = torch.cat([pooled, self.drop(mean), self.drop(sd)], dim=1)
            return self.out(pooled)

    return SequenceNet()


class SequenceModel(BaseEstimator):
    """A GRU or LSTM over each recording's windows (see the module docstring); scikit-learn style.

    Parameters
    ----------
    task : {"regression", "classification"}
        Predict an intensity (MSE) or a class (cross-entropy).
    cell : {"gru", "lstm"}
    hidden : int
        Size of the input projection and of the recurrent state.
    attention : bool
        Attention pooling over time (else the last state).
    summary : bool
        Also feed the output layer the recording's mean and sd of each scaled input (a skip path).
    dropout, lr, weight_decay, batch_size : float / int
        Training settings (AdamW).
    max_epochs : int
        Upper bound of the epoch count chosen on the inner split.
    early_stopping : bool
        Choose the epoch count on held-out whole subjects: ``inner_splits`` (default 3) subject-grouped inner folds,
        their validation-loss curves averaged, or with ``inner_splits=1`` one split holding out ``inner_fraction`` of
        the subjects (curves of up to 3 seeds averaged); the curve is smoothed over 5 epochs before its minimum is
        taken. Else ``max_epochs``.
    scaling : {"robust", "quantile"}
        Per feature after the signed log: median / IQR, or the training quantiles mapped to a standard normal.
    augment : float
        When > 0, every training batch sees a random contiguous stretch of each recording, at least this share of
        its windows long (crop augmentation); prediction always sees every window.
    noise : float
        Standard deviation of Gaussian noise added to the scaled inputs in training.
    max_features : int, optional
        Keep only this many features: those whose per-recording median correlates most with the label (absolute
        Spearman correlation on the training recordings; for classes, with the class position). Chosen inside
        ``fit``, so inside every training fold.
    n_seeds : int
        Networks trained (different seeds) and averaged.
    features, classes : list, optional
        Feature columns (default: every window feature) and the class order (default: sorted labels).
    """

    def __init__(self, task: str = "regression", *, cell: str = "gru", hidden: int = 32, attention: bool = True,
                 summary: bool = False, dropout: float = 0.4, lr: float = 1e-3, weight_decay: float = 1e-2,
                 batch_size: int = 16, max_epochs: int = 100, early_stopping: bool = True,
                 inner_fraction: float = 0.2, inner_splits: int = 3, n_seeds: int = 5, scaling: str = "robust",
                 augment: float = 0.0, noise: float = 0.0, max_features: int | None = None,
                 features: list[str] | None = None,
                 classes: list[object] | None = None, random_state: int = 0) -> None:
        self.task = task
        self.cell = cell
        self.hidden = hidden
        self.attention = attention
        self.summary = summary
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.inner_fraction = inner_fraction
        self.inner_splits = inner_splits
        self.scaling = scaling
        self.augment = augment
        self.noise = noise
        self.max_features = max_features
        self.n_seeds = n_seeds
        self.features = features
        self.classes = classes
        self.random_state = random_state

    # --- preprocessing (fitted on training windows only) ---------------------------------------------------
    def _fit_scaling(self, sequences: list[np.ndarray]) -> None:
        import warnings

        if self.scaling not in ("robust", "quantile"):
            raise InvalidParameterError(f"`scaling` must be 'robust' or 'quantile'. Got {self.scaling!r} instead.")
        flat = signed_log(np.vstack(sequences))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            centre = np.nanmedian(flat, axis=0)
            spread = np.nanpercentile(flat, 75, axis=0) - np.nanpercentile(flat, 25, axis=0)
            self.quantiles_ = np.nan_to_num(np.nanpercentile(flat, np.linspace(0, 100, 101), axis=0), nan=0.0)
        self.centre_ = np.nan_to_num(centre, nan=0.0)
        self.spread_ = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        logged = signed_log(values)
        if self.scaling == "quantile":
            from scipy.stats import norm

            grid = np.linspace(0, 1, len(self.quantiles_))
            z = np.full(logged.shape, np.nan)
            for j in range(logged.shape[1]):
                known = np.isfinite(logged[:, j])
                # ties (repeated quantiles) map to the middle of their run: interpolate up and down, average
                q = self.quantiles_[:, j]
                up = np.interp(logged[known, j], q, grid)
                down = 1 - np.interp(-logged[known, j], -q[::-1], grid)
                z[known, j] = norm.ppf(np.clip((up + down) / 2, 0.001, 0.999))
        else:
            z = (logged - self.centre_) / self.spread_
        z = np.clip(z, -5.0, 5.0)
        missing = np.isnan(z)
        return np.concatenate([np.where(missing, 0.0, z), missing.mean(axis=1, keepdims=True)], axis=1)

    def _batch(self, sequences: list[np.ndarray]):  # type: ignore[no-untyped-def]
        torch = _torch()
        lengths = np.array([len(s) for s in sequences])
        x = np.zeros((len(sequences), int(lengths.max()), len(self.features_) + 1), dtype=np.float32)
        for i, s in enumerate(sequences):
            x[i, :len(s)] = self._scaled(s)
        return torch.from_numpy(x), torch.from_numpy(lengths.astype(np.int64))

    # --- training ----------------------------------------------------------------------------------------------
    def _targets(self, labels: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return ((labels.astype(np.float64) - self.y_low_) / self.y_span_).astype(np.float32)
        lookup = {c: k for k, c in enumerate(self.classes_.tolist())}
        return np.array([lookup[v] for v in labels.tolist()], dtype=np.int64)

    def _loss(self, outputs, targets):  # type: ignore[no-untyped-def]
        torch = _torch()
        if self.task == "regression":
            return ((torch.sigmoid(outputs[:, 0]) - targets) ** 2).mean()
        return torch.nn.functional.cross_entropy(outputs, targets)

    def _select(self, sequences: list[np.ndarray], labels: np.ndarray) -> list[int]:
        """Positions of the ``max_features`` features whose recording medians rank-correlate most with the label."""
        import warnings

        from scipy.stats import spearmanr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.vstack([np.nanmedian(values, axis=0) for values in sequences])
        if self.task == "regression":
            position = labels.astype(np.float64)
        else:
            order = {c: k for k, c in enumerate(sorted(set(labels.tolist()), key=lambda v: (isinstance(v, str), v)))}
            position = np.array([order[v] for v in labels.tolist()], dtype=np.float64)
        strength = []
        for j in range(medians.shape[1]):
            ok = np.isfinite(medians[:, j])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rho = spearmanr(medians[ok, j], position[ok]).statistic if ok.sum() > 2 else np.nan
            strength.append(abs(rho) if np.isfinite(rho) else 0.0)
        return sorted(np.argsort(strength)[::-1][:self.max_features].tolist())

    def _crops(self, x, lengths, rng: np.random.Generator):  # type: ignore[no-untyped-def]
        """A random contiguous stretch of each sequence, at least ``augment`` of its length (training only)."""
        torch = _torch()
        full = lengths.numpy()
        keep = np.array([int(rng.integers(max(1, int(np.ceil(self.augment * n))), n + 1)) for n in full])
        offset = np.array([int(rng.integers(0, n - k + 1)) for n, k in zip(full, keep, strict=True)])
        out = torch.zeros((len(full), int(keep.max()), x.shape[2]), dtype=x.dtype)
        for i, (k, o) in enumerate(zip(keep, offset, strict=True)):
            out[i, :k] = x[i, o:o + k]
        return out, torch.from_numpy(keep.astype(np.int64))

    def _train(self, x, lengths, targets, *, epochs: int, seed: int, watch=None):  # type: ignore[no-untyped-def]
        """Train one network; with ``watch=(x, lengths, targets)`` also return the loss there after each epoch."""
        torch = _torch()
        torch.manual_seed(seed)
        n_out = 1 if self.task == "regression" else len(self.classes_)
        net = _network(x.shape[2], n_out, cell=self.cell, hidden=self.hidden, attention=self.attention,
                       dropout=self.dropout, summary=self.summary)
        optimiser = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        y = torch.from_numpy(targets)
        rng = np.random.default_rng(seed)
        curve = []
        for _ in range(epochs):
            net.train()
            order = rng.permutation(len(y))
            for start in range(0, len(order), self.batch_size):
                batch = torch.from_numpy(order[start:start + self.batch_size])
                xb, lb = x[batch], lengths[batch]
                if self.augment > 0:
                    xb, lb = self._crops(xb, lb, rng)
                if self.noise > 0:
                    xb = xb + self.noise * torch.randn_like(xb)
                optimiser.zero_grad()
                loss = self._loss(net(xb, lb), y[batch])
                loss.backward()
                optimiser.step()
            if watch is not None:
                net.eval()
                with torch.no_grad():
                    curve.append(float(self._loss(net(watch[0], watch[1]), torch.from_numpy(watch[2]))))
        net.eval()
        return net, curve

    def fit(self, windows: pd.DataFrame, y: np.ndarray | pd.Series | str, groups: np.ndarray | None = None, *,
            settings: dict[str, Any] | None = None) -> SequenceModel:
        """Fit on ``windows`` (one row per window); ``y`` is the label column's name or one label per window.

        ``groups`` (one per window; default the ``subject_id`` column, else the recording) keeps whole subjects
        out of the inner split that chooses the epoch count. ``settings`` (how the table was made, for the parity
        check when scoring) default to ``windows.attrs["geoengage"]``, as for
        :class:`~geoengage.modeling.train.EngagementModel`.
        """
        if self.task not in ("regression", "classification"):
            raise InvalidParameterError(f"`task` must be 'regression' or 'classification'. Got {self.task!r}.")
        if self.cell not in ("gru", "lstm"):
            raise InvalidParameterError(f"`cell` must be 'gru' or 'lstm'. Got {self.cell!r} instead.")
        table = windows.reset_index(drop=True)
        labels = table[y].to_numpy() if isinstance(y, str) else np.asarray(y)
        if len(labels) != len(table):
            raise InvalidParameterError(f"`y` must have one label per window ({len(table)}); got {len(labels)}.")
        group_values = (np.asarray(groups) if groups is not None else table["subject_id"].to_numpy()
                        if "subject_id" in table.columns else table["video_id"].to_numpy())
        table = table.assign(_label=labels, _group=group_values)
        keep = table["_label"].notna()
        if "window_ok" in table.columns:
            keep &= table["window_ok"].fillna(False).astype(bool)
        table = table[keep].reset_index(drop=True)
        self.features_ = list(self.features or feature_columns(windows))
        sequences = recording_sequences(table, self.features_, target="_label", groups="_group")
        labels = sequences.keys["_label"].to_numpy()
        if self.max_features is not None and self.max_features < len(self.features_):
            keep = self._select(sequences.values, labels)
            self.features_ = [self.features_[j] for j in keep]
            sequences = recording_sequences(table, self.features_, target="_label", groups="_group")
        if self.task == "regression":
            labels = labels.astype(np.float64)
            self.y_low_, self.y_span_ = float(labels.min()), float(np.ptp(labels)) or 1.0
            self.classes_ = np.array([])
        else:
            labels = canonical_labels(labels)
            found = sorted(set(labels.tolist()), key=lambda v: (isinstance(v, str), v))
            self.classes_ = np.array(list(self.classes) if self.classes is not None else found, dtype=object)
            unknown = sorted(set(found) - set(self.classes_.tolist()), key=str)
            if unknown:
                raise InvalidParameterError(f"labels {unknown} are not in `classes` {self.classes_.tolist()}.")
        self._fit_scaling(sequences.values)
        x, lengths = self._batch(sequences.values)
        targets = self._targets(labels)
        self.epochs_ = self.max_epochs
        self.curve_: list[float] = []
        subjects = sequences.keys["_group"].astype(str).to_numpy()
        if self.early_stopping and len(np.unique(subjects)) >= max(4, self.inner_splits):
            from sklearn.model_selection import GroupKFold, GroupShuffleSplit

            if self.inner_splits > 1:
                splits = list(GroupKFold(n_splits=self.inner_splits, shuffle=True, random_state=self.random_state)
                              .split(np.zeros(len(subjects)), groups=subjects))
                runs = [(inner, held, self.random_state + 1000 + k) for k, (inner, held) in enumerate(splits)]
            else:
                split = GroupShuffleSplit(n_splits=1, test_size=self.inner_fraction, random_state=self.random_state)
                inner, held = next(split.split(np.zeros(len(subjects)), groups=subjects))
                runs = [(inner, held, self.random_state + 1000 + k) for k in range(min(self.n_seeds, 3))]
            curves = [self._train(x[inner], lengths[inner], targets[inner], epochs=self.max_epochs, seed=seed,
                                  watch=(x[held], lengths[held], targets[held]))[1] for inner, held, seed in runs]
            self.curve_ = np.mean(curves, axis=0).tolist()
            smooth = np.convolve(np.pad(self.curve_, 2, mode="edge"), np.ones(5) / 5, mode="valid")
            self.epochs_ = int(np.argmin(smooth)) + 1
        self.nets_ = [self._train(x, lengths, targets, epochs=self.epochs_, seed=self.random_state + k)[0]
                      for k in range(self.n_seeds)]
        self.n_recordings_ = len(sequences.values)
        self.settings_: dict[str, Any] = dict(settings if settings is not None else windows.attrs.get("geoengage", {}))
        return self

    # --- prediction ------------------------------------------------------------------------------------------------
    def _outputs(self, sequences: list[np.ndarray], *, prefixes: bool = False) -> np.ndarray:
        """Probabilities (classes) or the 0-1 position (regression), averaged over the networks: one row per
        sequence, or with ``prefixes`` one row per window, each from its sequence's windows up to it (in order)."""
        torch = _torch()
        x, lengths = self._batch(sequences)
        with torch.no_grad():
            outputs = []
            for net in self.nets_:
                out = net.prefixes(x, lengths) if prefixes else net(x, lengths)
                if prefixes:  # the steps inside each sequence, sequence by sequence
                    out = out[torch.arange(x.shape[1])[None, :] < lengths[:, None]]
                outputs.append(torch.sigmoid(out[:, :1]).numpy() if self.task == "regression"
                               else torch.softmax(out, dim=1).numpy())
        return np.mean(outputs, axis=0)

    def _decoded(self, outputs: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return self.y_low_ + self.y_span_ * outputs[:, 0]
        return self.classes_[outputs.argmax(axis=1)]

    def error(self, sequences: list[np.ndarray], truth: np.ndarray) -> float:
        """The model's loss on grouped ``sequences`` (:func:`~geoengage.modeling.recordings.recording_sequences`'s
        ``values``) against one ``truth`` per sequence: mean squared error for intensities, log-loss for classes."""
        outputs = self._outputs(sequences)
        if self.task == "regression":
            return float(np.mean((self._decoded(outputs) - truth.astype(np.float64)) ** 2))
        codes = np.array([self.classes_.tolist().index(v) for v in truth.tolist()])
        return float(-np.mean(np.log(np.clip(outputs[np.arange(len(codes)), codes], 1e-9, 1))))

    def predict_recordings(self, windows: pd.DataFrame) -> pd.DataFrame:
        """One row per recording: its keys, ``n_windows`` and ``prediction`` (intensity or class), plus
        ``proba_<class>`` for classification."""
        sequences = recording_sequences(windows, self.features_)
        outputs = self._outputs(sequences.values)
        table = sequences.keys.assign(prediction=self._decoded(outputs))
        if self.task == "classification":
            for k, c in enumerate(self.classes_):
                table[f"proba_{c}"] = outputs[:, k]
        return table

    def predict(self, windows: pd.DataFrame) -> np.ndarray:
        """The recording-level prediction of each recording, in :func:`recording_sequences` order."""
        return self.predict_recordings(windows)["prediction"].to_numpy()

    def predict_so_far(self, windows: pd.DataFrame) -> pd.DataFrame:
        """For every window: the prediction from its recording's windows up to and including it (scoring with time,
        as a live stream would see it). Columns ``prediction_so_far`` (and ``proba_so_far_<class>``), in the input
        row order."""
        sequences = recording_sequences(windows, self.features_)
        outputs = self._outputs(sequences.values, prefixes=True)
        positions = np.concatenate(sequences.rows)
        out = pd.DataFrame(index=range(len(windows)))
        out.loc[positions, "prediction_so_far"] = self._decoded(outputs)
        if self.task == "classification":
            for k, c in enumerate(self.classes_):
                out.loc[positions, f"proba_so_far_{c}"] = outputs[:, k]
        return out

    def predict_proba(self, windows: pd.DataFrame) -> np.ndarray:
        """Each recording's class probabilities (rows in :func:`recording_sequences` order, columns ``classes_``)."""
        if self.task != "classification":
            raise InvalidParameterError("predict_proba: this sequence model predicts an intensity (task='regression'); "
                                        "use predict.")
        return self._outputs(recording_sequences(windows, self.features_).values)

    def describe(self) -> dict[str, Any]:
        """What was fitted, as plain values: the cell, task, feature count, recordings, epochs and classes."""
        return {"kind": f"sequence ({self.cell})", "task": self.task, "features": len(self.features_),
                "recordings": self.n_recordings_, "epochs": self.epochs_, "classes": self.classes_.tolist()}

    @property
    def recipe(self) -> Recipe:
        """How new windows must be made for this model: its training table's cleaning, window length, step and
        coverage rule (:func:`geoengage.recipe.recipe_from_settings`) and its features, which must be geoengage's
        own to make windows from media (:func:`media_feature_set`)."""
        return recipe_from_settings(self.settings_ or {}, media_feature_set(self))

    # --- saving ------------------------------------------------------------------------------------------------
    def save(self, folder: str | Path, *, settings: dict[str, Any] | None = None) -> Path:
        """Write ``sequence.pt`` (tensors only) and ``sequence.meta.json`` (with the weights' SHA-256 and the
        training table's ``settings``, by default the model's own ``settings_``) into ``folder``."""
        torch = _torch()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {f"net{k}.{name}": tensor for k, net in enumerate(self.nets_) for name, tensor in
                 net.state_dict().items()}
        state["scaling.centre"] = torch.from_numpy(self.centre_)
        state["scaling.spread"] = torch.from_numpy(self.spread_)
        state["scaling.quantiles"] = torch.from_numpy(self.quantiles_)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        outputs.write_bytes(folder / "sequence.pt", buffer.getvalue())
        meta = {"weights_sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),"schema": SEQUENCE_SCHEMA_VERSION, "params": self.get_params(), "features": self.features_,
                "classes": self.classes_.tolist(), "epochs": self.epochs_, "n_recordings": self.n_recordings_,
                "target_range": [getattr(self, "y_low_", None), getattr(self, "y_span_", None)],
                "inner_curve": self.curve_,
                "settings": self.settings_ if settings is None else settings}
        outputs.write_text(folder / "sequence.meta.json", json.dumps(meta, indent=2, default=str))
        return folder


def load_sequence_model(folder: str | Path) -> SequenceModel:
    """A :class:`SequenceModel` saved by :meth:`SequenceModel.save` (``torch.load(..., weights_only=True)``)."""

    torch = _torch()
    folder = Path(folder)
    meta_path, state_path = folder / "sequence.meta.json", folder / "sequence.pt"
    if not meta_path.is_file() or not state_path.is_file():
        raise MediaReadError(folder, "is not a saved sequence model (needs sequence.meta.json and sequence.pt)")
    meta = json.loads(meta_path.read_text())
    if meta.get("schema") != SEQUENCE_SCHEMA_VERSION:
        raise MediaReadError(meta_path, f"has schema {meta.get('schema')!r}; expected {SEQUENCE_SCHEMA_VERSION!r}")
    expected = meta.get("weights_sha256")  # models saved before it was recorded are not checked
    if expected is not None:
        actual = hashlib.sha256(state_path.read_bytes()).hexdigest()
        if actual != expected:
            raise ModelFileError(f"{state_path}: damaged or altered weights: SHA-256 {actual[:16]}..., expected "
                                 f"{expected} (recorded in sequence.meta.json); train or copy the model again.")
    state = torch.load(state_path, weights_only=True)
    model = SequenceModel(**meta["params"])
    model.features_ = list(meta["features"])
    model.classes_ = np.array(meta["classes"], dtype=object)
    model.epochs_, model.n_recordings_, model.curve_ = meta["epochs"], meta["n_recordings"], meta["inner_curve"]
    model.y_low_, model.y_span_ = meta["target_range"]
    model.centre_ = state["scaling.centre"].numpy()
    model.spread_ = state["scaling.spread"].numpy()
    model.quantiles_ = state["scaling.quantiles"].numpy()
    model.settings_ = meta.get("settings", {})
    n_out = 1 if model.task == "regression" else len(model.classes_)
    model.nets_ = []
    for k in range(model.n_seeds):
        net = _network(len(model.features_) + 1, n_out, cell=model.cell, hidden=model.hidden,
                       attention=model.attention, dropout=model.dropout, summary=model.summary)
        net.load_state_dict({name[len(f"net{k}."):]: t for name, t in state.items() if name.startswith(f"net{k}.")})
        net.eval()
        model.nets_.append(net)
    return model


def media_feature_set(model: SequenceModel):  # type: ignore[no-untyped-def]
    """The model's features as a :class:`~geoengage.windows.FeatureSet` of geoengage's own signals, for scoring
    media (live mode, the service); an :class:`InvalidParameterError` when it learnt from imported features."""

    known = {spec.name for spec in feature_specs()}
    try:
        parsed = tuple(parse_feature_name(f) for f in model.features_)
    except InvalidParameterError:
        parsed = ()
    foreign = [f for f in model.features_ if not parsed or parse_feature_name(f).agg == "value"
               or parse_feature_name(f).signal not in known]
    if foreign or not parsed:
        raise InvalidParameterError(f"this sequence model learnt from features geoengage does not compute from media "
                                    f"({foreign[:3]} ...: an imported table's), so it can only score such tables.")
    return FeatureSet("sequence model", parsed)
