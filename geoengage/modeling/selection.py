"""Window tables of several data sets -> how each modelling choice does on a data set it never saw.

A model chosen by cross-validation on one data set's subjects is a guess for the next lab's data. This module
measures choices the way a new lab meets them:

- :func:`~geoengage.modeling.pooling.pool_datasets` puts the tables of several data sets into one, with a
  ``dataset`` column, each set's labels mapped onto one coding (``label_maps``) and subject ids made unique across
  sets (``"<set>/<subject>"``), so no two people of different labs share a fold boundary by accident;
- :func:`~geoengage.modeling.pooling.pool_weights` gives per-window weights so that each data set, or each
  subject, counts equally;
- :func:`leave_one_dataset_out` trains on every data set but one and scores the one left out (inside the training
  sets, the model's own calibration and decision rule are fitted on subject-grouped inner folds: nested);
- :func:`held_out_subjects` scores subjects held back from every training set (subject-grouped outer folds over
  one set, trained on the others' windows, its own other subjects, or both), to tell pooled from single-set
  training, which leave-one-data-set-out cannot do with two sets;
- :func:`choose` picks the candidate with the best worst held-out AUC; candidates within that one's interval are
  ties, and the simplest tied candidate wins (:attr:`Candidate.complexity`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InvalidParameterError, SchemaError
from .cv import CVResult
from .folds import prediction_table, scorable_windows, stratified_group_folds
from .labels import canonical_labels
from .pooling import DATASET, WEIGHT_SCHEMES, pool_weights
from .train import EngagementModel

__all__ = ["Candidate", "choose", "cross_dataset_matrix", "held_out_subjects", "leave_one_dataset_out",
           "paired_worst_case"]

#: Learners from simplest to most complex (the order :func:`choose` breaks ties by).
_LEARNER_ORDER = ("majority", "logistic", "xgboost", "xgboost_ordinal")


@dataclass(frozen=True)
class Candidate:
    """One modelling choice: learner, target coding, feature columns and training weights.

    ``options`` are further :class:`~geoengage.modeling.train.EngagementModel` parameters (``classes``,
    ``positive``, ``tune``...).
    """

    name: str
    target: str
    estimator: str = "xgboost"
    features: tuple[str, ...] = ()
    weights: str = "none"
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def complexity(self) -> tuple[int, int, int]:
        """Order of simplicity for ties: the learner, then fewer features, then no weights."""
        learner = _LEARNER_ORDER.index(self.estimator) if self.estimator in _LEARNER_ORDER else len(_LEARNER_ORDER)
        return learner, len(self.features), WEIGHT_SCHEMES.index(self.weights)

    def model(self, random_state: int = 0) -> EngagementModel:
        return EngagementModel(self.estimator, features=list(self.features) or None, random_state=random_state,
                               **dict(self.options))

    def fit(self, windows: pd.DataFrame, *, groups: str = "subject_id", random_state: int = 0) -> EngagementModel:
        """The candidate's model fitted on ``windows`` (a pooled table, or one set's) with its weights."""
        data = scorable_windows(windows, self.target)
        weight = None if self.weights == "none" else pool_weights(data, self.weights, groups=groups)
        return self.model(random_state).fit(data, data[self.target].to_numpy(), groups=data[groups].to_numpy(),
                                            sample_weight=weight)


def _scored(model: EngagementModel, test: pd.DataFrame, target: str, groups: str, fold: int | np.ndarray
            ) -> pd.DataFrame:
    labels = canonical_labels(test[target].to_numpy())
    unknown = sorted(set(labels.tolist()) - set(model.classes_.tolist()), key=str)
    if unknown:
        raise InvalidParameterError(f"test labels {unknown} are not training classes {model.classes_.tolist()}: "
                                    "map every data set onto one coding (label_maps).")
    proba = model.predict_proba(test)
    table = prediction_table(test, fold, groups, labels, model.classes_[model.decide(proba)], proba,
                             tuple(model.classes_.tolist()), tuple(model.positive_.tolist()))
    table["n_out_of_range"] = [len(names) for names in model.out_of_range(test)]
    if "coverage" in test.columns:
        table["coverage"] = test["coverage"].to_numpy(np.float64)
    return table


def _result(candidate: Candidate, model: EngagementModel, predictions: pd.DataFrame, split: str,
            shared: list[str]) -> CVResult:
    audit = {"subjects_in_train_and_test": shared, "n_subjects_in_train_and_test": len(shared),
             "n_near_duplicate_test_windows": None, "leak_free": not shared}
    return CVResult(predictions, tuple(model.classes_.tolist()), tuple(model.features_), candidate.estimator, split,
                    audit, tuple(model.positive_.tolist()), {"0": model.decision_record()})


def _shared_subjects(train: pd.DataFrame, test: pd.DataFrame, groups: str) -> list[str]:
    return sorted(set(train[groups].dropna().astype(str)) & set(test[groups].dropna().astype(str)))


def leave_one_dataset_out(pooled: pd.DataFrame, candidate: Candidate, *, groups: str = "subject_id",
                          random_state: int = 0) -> dict[str, CVResult]:
    """For each data set of ``pooled``: the candidate trained on all the others, scored on it (``split`` is
    ``"held-out data set"``). Returns data set name -> result (its ``predictions.group`` are the held-out
    subjects, so :func:`geoengage.report.metrics.summarize` bootstraps them)."""
    if DATASET not in pooled.columns:
        raise SchemaError(f"leave_one_dataset_out needs the pooled table's {DATASET!r} column (pool_datasets).")
    data = scorable_windows(pooled, candidate.target)
    names = list(pd.unique(data[DATASET]))
    if len(names) < 2:
        raise InvalidParameterError(f"leave-one-data-set-out needs two data sets with labels. Got {names}.")
    results = {}
    for name in names:
        train, test = data[data[DATASET] != name], data[data[DATASET] == name].reset_index(drop=True)
        model = candidate.fit(train, groups=groups, random_state=random_state)
        results[name] = _result(candidate, model, _scored(model, test, candidate.target, groups, 0),
                                "held-out data set", _shared_subjects(train, test, groups))
    return results


#: :func:`held_out_subjects`' training data: the held-out set's other subjects, the other sets, or both.
TRAIN_ON = ("same", "other", "pooled")


def held_out_subjects(pooled: pd.DataFrame, candidate: Candidate, *, train_on: str = "pooled", n_splits: int = 5,
                      groups: str = "subject_id", random_state: int = 0) -> dict[str, CVResult]:
    """For each data set: its subjects in ``n_splits`` subject-grouped outer folds, each fold scored by the
    candidate trained on ``train_on``: ``"same"`` (the set's other folds: ordinary grouped CV), ``"other"``
    (every other set, as in :func:`leave_one_dataset_out`) or ``"pooled"`` (both). No subject is ever on both
    sides; the folds are the same for every candidate and every ``train_on``."""
    if train_on not in TRAIN_ON:
        raise InvalidParameterError(f"`train_on` must be one of {TRAIN_ON}. Got {train_on!r} instead.")
    data = scorable_windows(pooled, candidate.target)
    results = {}
    for name in pd.unique(data[DATASET]):
        inside = data[data[DATASET] == name].reset_index(drop=True)
        others = data[data[DATASET] != name]
        codes = pd.factorize(inside[candidate.target].astype(str))[0]
        folds = stratified_group_folds(codes, inside[groups].to_numpy(), n_splits, random_state)
        if train_on == "other":  # the folds do not change what is trained: one model scores them all
            model = candidate.fit(others, groups=groups, random_state=random_state)
            table = _scored(model, inside, candidate.target, groups, folds)
            results[name] = _result(candidate, model, table, f"held-out subjects ({train_on})",
                                    _shared_subjects(others, inside, groups))
            continue
        tables, shared = [], []
        for k in range(n_splits):
            train = inside[folds != k]
            if train_on == "pooled":
                train = pd.concat([others, train], ignore_index=True)
            test = inside[folds == k]
            model = candidate.fit(train, groups=groups, random_state=random_state)
            scored = _scored(model, test.reset_index(drop=True), candidate.target, groups, k)
            scored["row"] = np.flatnonzero(folds == k)
            tables.append(scored)
            shared += _shared_subjects(train, test, groups)
        table = pd.concat(tables).sort_values("row").reset_index(drop=True)
        results[name] = _result(candidate, model, table, f"held-out subjects ({train_on})", sorted(set(shared)))
    return results


def cross_dataset_matrix(pooled: pd.DataFrame, candidate: Candidate, *, n_splits: int = 5,
                         groups: str = "subject_id", random_state: int = 0) -> dict[tuple[str, str], CVResult]:
    """Each data set's model scored on every set: (trained on, tested on) -> result. Off the diagonal the candidate
    is trained on one set alone and scores all of another; on it, the set's own subjects in ``n_splits`` grouped
    folds (:func:`held_out_subjects` with ``train_on="same"``)."""
    data = scorable_windows(pooled, candidate.target)
    names = list(pd.unique(data[DATASET]))
    out = {(name, name): result for name, result in held_out_subjects(
        data, candidate, train_on="same", n_splits=n_splits, groups=groups, random_state=random_state).items()}
    for source in names:
        train = data[data[DATASET] == source]
        model = candidate.fit(train, groups=groups, random_state=random_state)
        for other in names:
            if other != source:
                test = data[data[DATASET] == other].reset_index(drop=True)
                out[(source, other)] = _result(candidate, model, _scored(model, test, candidate.target, groups, 0),
                                               "another data set", _shared_subjects(train, test, groups))
    return out


def _engaged_auc(truth: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(truth, score)) if 0 < truth.sum() < len(truth) else np.nan


def paired_worst_case(results: Mapping[str, Mapping[str, CVResult]], *, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict[str, dict[str, Any]]:
    """Each candidate's worst held-out engaged-vs-not AUC, and its difference from the best candidate's, with
    intervals from one subject bootstrap shared by every candidate (paired: each resample draws the same subjects
    of every held-out set for all candidates, so what the candidates have in common cancels).

    ``results``: candidate name -> {held-out set: result} (:func:`leave_one_dataset_out`), every candidate scored
    on the same windows. Returns name -> ``worst_auc``, ``worst_set``, ``worst_ci``, ``diff`` (worst AUC minus the
    best one's) and ``diff_ci``.
    """
    names = list(results)
    sets = list(results[names[0]])
    truth, scores, members = {}, {}, {}
    for held in sets:
        first = results[names[0]][held]
        table = first.predictions
        truth[held] = np.isin(table["y_true"].to_numpy(), np.asarray(first.positive, dtype=object))
        groups = table["group"].astype(str).to_numpy()
        members[held] = [np.flatnonzero(groups == g) for g in pd.unique(groups)]
        for name in names:
            other = results[name][held].predictions
            if len(other) != len(table) or (other["group"].astype(str).to_numpy() != groups).any():
                raise InvalidParameterError(f"candidate {name!r} was not scored on the same windows of {held!r}.")
            scores[(name, held)] = other["p_engaged"].to_numpy(np.float64)
    point = {n: {h: _engaged_auc(truth[h], scores[(n, h)]) for h in sets} for n in names}
    worst = {n: min(point[n].values()) for n in names}
    best = max(names, key=lambda n: worst[n])
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, len(names)))
    for b in range(n_boot):
        rows = {h: np.concatenate([members[h][i] for i in rng.integers(0, len(members[h]), len(members[h]))])
                for h in sets}
        for j, n in enumerate(names):
            draws[b, j] = min(_engaged_auc(truth[h][rows[h]], scores[(n, h)][rows[h]]) for h in sets)
    tail = (1 - level) / 2 * 100
    j_best = names.index(best)
    out = {}
    for j, n in enumerate(names):
        diff = draws[:, j] - draws[:, j_best]
        out[n] = {"worst_auc": worst[n], "worst_set": min(point[n], key=point[n].get),
                  "worst_ci": tuple(np.nanpercentile(draws[:, j], [tail, 100 - tail]).tolist()),
                  "diff": worst[n] - worst[best],
                  "diff_ci": tuple(np.nanpercentile(diff, [tail, 100 - tail]).tolist())}
    return out


def choose(rows: Sequence[Mapping[str, Any]], candidates: Mapping[str, Candidate], *,
           key: str = "worst_auc", interval: str = "worst_ci") -> dict[str, Any]:
    """The candidate with the best worst-case figure, or the simplest among its ties.

    ``rows`` hold each candidate's ``name``, ``key`` (its worst held-out AUC) and ``interval`` (that AUC's
    subject-bootstrap 95% interval), and, from :func:`paired_worst_case`, ``diff_ci``: the interval of its
    difference from the best. With ``diff_ci`` a candidate ties when that interval holds 0 (the paired test: both
    scored on the same subjects); without it, when its figure lies inside the best one's interval (wider: it ignores
    that the candidates share their test subjects). Among the ties the simplest (:attr:`Candidate.complexity`) wins,
    then the higher figure.
    """
    if not rows:
        raise InvalidParameterError("choose needs at least one candidate's row.")
    best = max(rows, key=lambda r: r[key])
    if all("diff_ci" in r for r in rows):  # paired (paired_worst_case): a tie where the difference's interval holds 0
        ties = [r for r in rows if r["diff_ci"][1] >= 0]
        how = "whose paired difference from it has an interval holding 0"
    else:
        ties = [r for r in rows if r[key] >= best[interval][0]]
        how = "inside its interval"
    chosen = min(ties, key=lambda r: (candidates[r["name"]].complexity, -r[key]))
    low, high = best[interval]
    return {"chosen": chosen["name"], "best": best["name"], "ties": [r["name"] for r in ties],
            "rule": f"best worst-case {key} {best[key]:.3f} [{low:.3f}, {high:.3f}] ({best['name']}); "
                    f"{len(ties)} candidates {how}; the simplest of them is chosen"}
