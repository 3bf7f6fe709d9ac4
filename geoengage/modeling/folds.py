"""Windows -> subject-grouped folds: which windows a model may learn from and which it is judged on.

The fold helpers every trainer and evaluator shares (:mod:`geoengage.modeling.cv`,
:mod:`geoengage.modeling.train`, :mod:`geoengage.modeling.selection`, the sequence models): the feature columns of a
window table, the windows that can be scored, subject-grouped stratified folds, and the prediction table a result
holds. They know nothing of any model, so every module that fits one can use them without a circle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..exceptions import InvalidParameterError, SchemaError

__all__ = ["check_groups", "feature_columns", "make_folds", "prediction_table", "scorable_windows", "stratified_group_folds",
           "typed_labels"]


def feature_columns(windows: pd.DataFrame) -> list[str]:
    """The window feature columns (``<signal>__<agg>...``)."""
    return [c for c in windows.columns if "__" in c and pd.api.types.is_numeric_dtype(windows[c])]


def check_groups(windows: pd.DataFrame, *, groups: str, n_splits: int) -> None:
    if groups not in windows.columns:
        raise SchemaError(f"cross_validate: the windows lack the group column {groups!r} (add subject_id).")
    n_groups = windows[groups].nunique()
    if not 2 <= n_splits <= n_groups:
        raise InvalidParameterError(
            f"`n_splits` must be between 2 and the number of distinct {groups!r} values ({n_groups}). "
            f"Got {n_splits} instead. Lower n_splits or add subjects.")


def make_folds(windows: pd.DataFrame, *, target: str, groups: str = "subject_id", n_splits: int = 5,
               split: str = "subject", random_state: int = 0) -> np.ndarray:
    """Fold number (0..n_splits-1) of every window: by subject (default) or at random.

    By subject, seed 0 is :class:`~sklearn.model_selection.StratifiedGroupKFold`'s split; any other seed visits the
    subjects in an order drawn from it (same stratification rule), so repeated CV over seeds 0, 1, ... sees other
    splits. StratifiedGroupKFold alone uses its seed only between subjects whose class counts are alike: on real
    data sets (engagement_wacv, DAiSEE) every seed would give the same split."""
    y = pd.factorize(windows[target].astype(str))[0]  # stratify by class, whatever type the labels have
    if split == "subject":
        check_groups(windows, groups=groups, n_splits=n_splits)
        return stratified_group_folds(y, windows[groups].to_numpy(), n_splits, random_state)
    if split != "random":
        raise InvalidParameterError(f"`split` must be 'subject' or 'random'. Got {split!r} instead.")
    folds = np.full(len(windows), -1)
    parts = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y)
    for fold, (_, test) in enumerate(parts):
        folds[test] = fold
    return folds


def stratified_group_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int) -> np.ndarray:
    """Fold number of each sample, whole groups per fold, class shares as even across folds as the groups allow
    (``y``: class codes 0..k-1). Seed 0: :class:`~sklearn.model_selection.StratifiedGroupKFold`'s split; any other
    seed: :func:`_seeded_group_folds` (StratifiedGroupKFold's seed only breaks ties between groups of equal class
    counts). The outer folds (:func:`make_folds`) and a model's inner folds both come from here."""
    if random_state != 0:
        return _seeded_group_folds(y, groups, n_splits, random_state)
    folds = np.full(len(y), -1)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
        folds[test] = fold
    return folds


def _seeded_group_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int) -> np.ndarray:
    """Fold of each sample for a seed other than 0: whole groups, visited in an order drawn from the seed, each put
    in the fold that keeps every class's share across folds most even (ties: the fold with fewer samples), the
    criterion of StratifiedGroupKFold, which visits groups in one fixed order whatever its seed."""
    names, inverse = np.unique(groups.astype(str), return_inverse=True)
    counts = np.zeros((len(names), int(y.max()) + 1))
    np.add.at(counts, (inverse, y), 1)
    totals = counts.sum(axis=0)
    per_fold = np.zeros((n_splits, counts.shape[1]))
    chosen = np.empty(len(names), dtype=int)
    for group in np.random.default_rng(random_state).permutation(len(names)):
        candidates = per_fold[None, :, :] + np.eye(n_splits)[:, :, None] * counts[group]  # (fold tried, fold, class)
        spread = np.round(np.std(candidates / totals, axis=1).mean(axis=1), 12)
        best = int(np.lexsort((per_fold.sum(axis=1), spread))[0])
        per_fold[best] += counts[group]
        chosen[group] = best
    return chosen[inverse]


def prediction_table(data: pd.DataFrame, folds: np.ndarray | int, groups: str, labels: np.ndarray,
                     predicted: np.ndarray, proba: np.ndarray, classes: tuple[object, ...],
                     positive: tuple[object, ...]) -> pd.DataFrame:
    """:attr:`CVResult.predictions` for windows ``data``: fold, group, true and predicted class, the probability of
    each class and of the engaged ones together (``p_engaged``)."""
    table = pd.DataFrame({"row": np.arange(len(data)), "fold": folds,
                          "group": data[groups].to_numpy() if groups in data else np.nan,
                          "y_true": typed_labels(labels), "y_pred": typed_labels(predicted)})
    for k, cls in enumerate(classes):
        table[f"proba_{cls}"] = proba[:, k]
    table["p_engaged"] = proba[:, [list(classes).index(c) for c in positive]].sum(axis=1)
    return table


def typed_labels(values: np.ndarray) -> np.ndarray:
    """Canonical labels (object array) as a plain numpy array: integers, floats or text."""
    return np.asarray(values.tolist())


def scorable_windows(windows: pd.DataFrame, target: str) -> pd.DataFrame:
    """The windows with a ``target`` value and enough face (``window_ok``), re-indexed from 0."""
    keep = windows[target].notna()
    if "window_ok" in windows.columns:
        keep &= windows["window_ok"].fillna(False).astype(bool)
    return windows[keep].reset_index(drop=True)
