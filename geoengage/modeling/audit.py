"""Windows -> a set-up audit: which features identify the person (or their camera) rather than behaviour.

A model trained on a few people can learn *who* is in front of the camera (face size in pixels, distance,
lighting, sharpness) instead of *how engaged* they are; on new people that knowledge is useless, and it is
why cross-validated figures fall on new subjects. :func:`setup_audit` measures, for every feature and for
the whole set, how well it predicts the subject's identity on windows of recordings it has not seen:

- ``identity_score``: accuracy of a k-nearest-neighbour subject classifier on the feature alone, under
  folds grouped by recording (so windows of one recording never match each other), rescaled so that
  0 is chance (the most frequent subject) and 1 is perfect;
- ``eta2``: the share of the feature's (rank-transformed) variance that lies between subjects.

Features with ``eta2 >= flag_at`` (default 0.5: most of their variance lies between people) are flagged:
they carry the set-up or the person, and belong in a model only after normalisation within the recording
or subject (``CleanConfig(baseline="subject_median")``). The 1-D identity score is reported beside eta²
(with many subjects one feature rarely names a person, while eta² shows the tie directly), and the whole
set's identity score (all features, standardised) says how far a model could tell people apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.model_selection import GroupKFold, KFold
from sklearn.neighbors import KNeighborsClassifier

from ..exceptions import SchemaError

__all__ = ["SetupAudit", "setup_audit"]


@dataclass(frozen=True)
class SetupAudit:
    """Per-feature scores (``table``: feature, identity_score, eta2, flagged; by eta² descending) and the whole set's."""

    table: pd.DataFrame
    whole_set_score: float
    flag_at: float
    n_subjects: int
    grouped_by: str

    @property
    def flagged(self) -> list[str]:
        return self.table.loc[self.table["flagged"], "feature"].tolist()

    def to_dict(self) -> dict[str, object]:
        return {"flag_at": self.flag_at, "n_subjects": self.n_subjects, "grouped_by": self.grouped_by,
                "whole_set_identity_score": round(self.whole_set_score, 4), "flagged": self.flagged,
                "features": self.table.round(4).to_dict(orient="records")}


def _score(X: np.ndarray, subjects: np.ndarray, folds: list, chance: float, k: int) -> float:
    correct = 0
    for train, test in folds:
        model = KNeighborsClassifier(n_neighbors=k).fit(X[train], subjects[train])
        correct += int(np.sum(model.predict(X[test]) == subjects[test]))
    accuracy = correct / len(subjects)
    return float(max(0.0, (accuracy - chance) / (1 - chance))) if chance < 1 else 0.0


def _eta2(values: np.ndarray, subjects: np.ndarray) -> float:
    ranks = rankdata(values)
    total = np.sum((ranks - ranks.mean()) ** 2)
    if total == 0:
        return 0.0
    frame = pd.DataFrame({"r": ranks, "s": subjects})
    means = frame.groupby("s")["r"].transform("mean").to_numpy()
    return float(np.sum((means - ranks.mean()) ** 2) / total)


def setup_audit(windows: pd.DataFrame, *, features: list[str], groups: str = "subject_id",
                recording: str = "video_id", flag_at: float = 0.5, n_splits: int = 3, k: int = 5,
                max_windows: int = 6000, random_state: int = 0) -> SetupAudit:
    """How well each feature, and the whole set, identifies the subject (see the module docstring).

    Windows without a subject are ignored; above ``max_windows`` a seeded sample (stratified by subject) is
    used, so the audit stays a few seconds long.
    """
    if groups not in windows.columns:
        raise SchemaError(f"setup_audit: the windows lack the subject column {groups!r}.")
    data = windows[windows[groups].notna()]
    if len(data) > max_windows:
        data = data.groupby(groups, group_keys=False).sample(frac=max_windows / len(data), random_state=random_state)
    subjects = data[groups].astype(str).to_numpy()
    n_subjects = len(np.unique(subjects))
    chance = float(pd.Series(subjects).value_counts(normalize=True).iloc[0])
    if recording in data.columns and data[recording].nunique() >= n_splits:
        folds = list(GroupKFold(n_splits=n_splits).split(np.zeros(len(data)), subjects, data[recording].to_numpy()))
        grouped_by = recording
    else:
        folds = list(KFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(np.zeros(len(data))))
        grouped_by = "window"
    rows, columns = [], []
    for name in features:
        values = data[name].astype(np.float64).to_numpy()
        filled = np.where(np.isfinite(values), values, np.nanmedian(values) if np.isfinite(values).any() else 0.0)
        rows.append({"feature": name, "identity_score": _score(filled[:, None], subjects, folds, chance, k),
                     "eta2": _eta2(filled, subjects)})
        scale = filled.std()
        columns.append((filled - filled.mean()) / (scale if scale > 0 else 1.0))
    whole = _score(np.column_stack(columns), subjects, folds, chance, k) if columns else 0.0
    table = pd.DataFrame(rows, columns=["feature", "identity_score", "eta2"])
    table["flagged"] = table["eta2"] >= flag_at
    table = table.sort_values("eta2", ascending=False).reset_index(drop=True)
    return SetupAudit(table, whole, flag_at, n_subjects, grouped_by)
