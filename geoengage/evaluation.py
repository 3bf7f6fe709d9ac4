"""Windows -> evaluation report: grouped cross-validation, a held-out or other data set, set-up audit, SHAP.

:func:`evaluate` is what ``geoengage evaluate`` runs and what ``ge.evaluate`` exposes:

1. the windows with a label and enough face (``window_ok``) are split into subject-grouped folds
   (:func:`geoengage.modeling.cv.make_folds`); XGBoost, logistic regression and the majority class are
   cross-validated on the same folds, each with its class weights, calibration, decision threshold and
   (``tune=True``) hyperparameters fitted inside the training folds only;
2. with ``test=`` (another table: a validation split, or another data set with its labels mapped onto
   these classes) every estimator is also trained on all of ``windows`` and scored on ``test``, reported
   beside the cross-validated figures ("train -> test");
3. the **set-up audit** (:func:`geoengage.modeling.audit.setup_audit`) measures which features identify
   the subject rather than behaviour;
4. metrics with subject-bootstrap 95% intervals, the decision thresholds and the minority class's recall,
   ROC and confusion figures, SHAP importance and example reasons, data quality, and the configuration
   go to ``report.html``, ``report.md`` and ``report.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .dataset import read_windows
from .exceptions import InvalidParameterError, SchemaError
from .modeling.audit import setup_audit
from .modeling.cv import CVResult, cross_validate, feature_columns, make_folds, prediction_table, scorable_windows
from .modeling.labels import canonical_labels, describe_classes, map_labels
from .modeling.pooling import DATASET, pool_datasets
from .modeling.protocol import check_kind, default_task, labelled_table
from .modeling.recording_cv import cross_validate_recordings, feature_importance, time_importance
from .modeling.recordings import RECORDING_KEYS
from .modeling.selection import Candidate, cross_dataset_matrix, leave_one_dataset_out
from .modeling.sequence import SequenceModel
from .modeling.train import EngagementModel
from .report.explain import explain_model, explain_windows, global_importance
from .report.figures import (
    confusion_figure,
    importance_figure,
    matrix_figure,
    reliability_figure,
    roc_figure,
    setup_audit_figure,
    shap_beeswarm_figure,
)
from .report.metrics import summarize
from .report.render import write_report

__all__ = ["evaluate", "evaluate_datasets", "evaluate_recordings", "transfer"]

#: The baselines every report shows beside the main estimator (the last is the majority class).
BASELINES = ("logistic", "majority")


def _model_params(params: Mapping[str, Any]) -> dict[str, Any]:
    known = set(EngagementModel().get_params()) - {"estimator", "features", "classes", "positive", "random_state"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidParameterError(f"unknown model options {unknown}; known: {sorted(known)}.")
    return dict(params)


def transfer(train: pd.DataFrame, test: pd.DataFrame, *, target: str, estimator: str = "xgboost",
             test_target: str | None = None, label_map: Mapping[object, object] | None = None,
             groups: str = "subject_id", features: Sequence[str] | None = None, classes: Sequence[object] | None = None,
             positive: Sequence[object] | None = None, random_state: int = 0, **params: Any) -> CVResult:
    """Train on every window of ``train`` and predict ``test`` (a held-out split or another data set).

    ``test_target`` (default ``target``) is read from ``test`` and passed through ``label_map`` onto the training
    classes. The result has the shape of a cross-validation result (one "fold"), so the same metrics,
    subject-bootstrap intervals and report apply; its ``split`` is ``"transfer"``.
    """
    data = scorable_windows(train, target)
    test_target = test_target or target
    if test_target not in test.columns:
        raise SchemaError(f"transfer: the test windows lack the target column {test_target!r}.")
    other = scorable_windows(test, test_target)
    mapped = map_labels(other[test_target], label_map)
    keep = np.array([v is not None for v in mapped])
    other, mapped = other[keep].reset_index(drop=True), mapped[keep]
    chosen = list(features or feature_columns(data))
    missing = [f for f in chosen if f not in other.columns]
    if missing:
        raise SchemaError(f"transfer: the test windows lack {len(missing)} training features, e.g. {missing[:5]}.")
    model = EngagementModel(estimator, features=chosen, classes=None if classes is None else list(classes),
                            positive=None if positive is None else list(positive), random_state=random_state,
                            **_model_params(params))
    model.fit(data, data[target].to_numpy())
    unknown = sorted(set(mapped.tolist()) - set(model.classes_.tolist()), key=str)
    if unknown:
        raise InvalidParameterError(f"transfer: test labels {unknown} are not training classes "
                                    f"{model.classes_.tolist()}; map them with label_map.")
    proba = model.predict_proba(other)
    classes, positive = tuple(model.classes_.tolist()), tuple(model.positive_.tolist())
    predictions = prediction_table(other, 0, groups, mapped, model.classes_[model.decide(proba)], proba, classes,
                                   positive)
    shared = sorted(set(data.get(groups, pd.Series(dtype=object)).dropna().astype(str))
                    & set(other.get(groups, pd.Series(dtype=object)).dropna().astype(str)))
    audit = {"subjects_in_train_and_test": shared, "n_subjects_in_train_and_test": len(shared),
             "n_near_duplicate_test_windows": None, "leak_free": not shared}
    return CVResult(predictions, classes, tuple(chosen), estimator, "transfer", audit, positive,
                    {"0": model.decision_record()})


def evaluate(windows: pd.DataFrame | str | Path, *, target: str, out: str | Path, groups: str = "subject_id",
             n_splits: int = 5, split: str = "subject", seed: int = 0, n_boot: int = 1000,
             classes: Sequence[object] | None = None, positive: Sequence[object] | None = None,
             features: Sequence[str] | None = None, test: pd.DataFrame | str | Path | None = None,
             test_target: str | None = None, label_map: Mapping[object, object] | None = None,
             test_name: str = "test", audit: bool = True, estimator: str = "xgboost", model: str = "tabular",
             **params: Any) -> dict[str, Any]:
    """Cross-validate (and optionally train -> test) every estimator and write the report into ``out``.

    ``model`` is the kind (:data:`geoengage.modeling.protocol.MODEL_KINDS`): ``"tabular"`` (default) evaluates
    window models as described in the module docstring; ``"gru"`` or ``"lstm"`` evaluates a sequence model per
    recording (:func:`evaluate_recordings`, with ``params`` its options and ``task``).

    ``estimator`` is the main window model (``"xgboost"`` or ``"xgboost_ordinal"``), shown beside logistic
    regression and the majority class; ``params`` are model options (``class_weight``, ``calibrate``,
    ``decision``, ``threshold``, ``tune``, ``inner_splits``; see :class:`~geoengage.modeling.train.EngagementModel`).
    Returns the headline figures per estimator and the report's path.
    """

    if check_kind(model) != "tabular":
        if test is not None or split != "subject" or positive is not None:
            raise InvalidParameterError("sequence models are evaluated by subject-grouped CV per recording: `test`, "
                                        "`split` and `positive` apply to window (tabular) models.")
        return evaluate_recordings(windows, target=target, out=out, groups=groups, cell=model, n_splits=n_splits,
                                   seed=seed, n_boot=n_boot, features=features, classes=classes, **params)
    source = Path(windows) if isinstance(windows, (str, Path)) else None
    table, data = labelled_table(windows, target, where="evaluate")
    options = _model_params(params)
    classes = None if classes is None else list(classes)
    positive = None if positive is None else list(positive)
    chosen = list(features or feature_columns(data))
    folds = make_folds(data, target=target, groups=groups, n_splits=n_splits, split=split, random_state=seed)
    cv = {name: cross_validate(data, target=target, groups=groups, estimator=name, features=chosen, folds=folds,
                               split=split, random_state=seed, classes=classes, positive=positive, **options)
          for name in (estimator, *BASELINES)}
    results = {name: summarize(result, n_boot=n_boot, seed=seed) for name, result in cv.items()}
    other = None
    if test is not None:
        other = read_windows(test) if isinstance(test, (str, Path)) else test
        for name in (estimator, *BASELINES):
            moved = transfer(data, other, target=target, estimator=name, test_target=test_target,
                             label_map=label_map, groups=groups, features=chosen, classes=classes,
                             positive=positive, random_state=seed, **options)
            results[f"{name}: train -> {test_name}"] = summarize(moved, n_boot=n_boot, seed=seed)
    model = EngagementModel(estimator, features=chosen, classes=classes, positive=positive, random_state=seed,
                            **options).fit(data, data[target].to_numpy())
    explanation = explain_model(model, data)
    importance = global_importance(explanation).mean(axis=1)
    figures = {"ROC curves, out-of-fold": roc_figure({k: cv[k] for k in (estimator, "logistic")}),
               f"{estimator} confusion matrix, out-of-fold": confusion_figure(cv[estimator]),
               "Global SHAP importance (model fitted on all windows)": importance_figure(explanation)}
    for k, cls in enumerate(model.classes_):
        figures[f"SHAP beeswarm, class {cls}"] = shap_beeswarm_figure(explanation, k)
    labels = canonical_labels(data[target].to_numpy())
    examples = pd.Series(np.arange(len(data))).groupby(labels.astype(str)).head(2).to_numpy()
    texts = explain_windows(explanation, predicted=model.decide(model.predict_proba(data)))
    keys = [c for c in ("video_id", "window_idx", "start_s") if c in data]
    shown = {k: _relative_paths(data[k]) if k == "video_id" else data[k] for k in keys}
    explanations = [f"{', '.join(f'{k}={shown[k].iat[i]}' for k in keys)} (true {labels[i]}): {texts[i]}"
                    for i in examples]
    protocol: dict[str, object] = {
        "target": target, **describe_classes(model.classes_.tolist(), model.positive_.tolist(),
                                             ordered=model.classes_ordered_),
        "engaged classes (engagement_probability, auc_engaged)": model.positive_.tolist(),
        "split": f"{split} ({n_splits} folds, grouped by {groups})" if split == "subject"
        else f"random ({n_splits} folds)", "windows": len(data),
        "subjects": int(data[groups].nunique()) if groups in data else None,
        "model options (fitted inside each training fold)": {k: v for k, v in model.get_params().items()
                                                              if k not in ("features", "classes", "positive")},
        f"decision thresholds per fold ({estimator})": [d.get("threshold") for d in cv[estimator].decision.values()],
    }
    if other is not None:
        protocol["train -> test"] = (f"trained on all {len(data)} windows, scored on {test_name} "
                                     f"({len(other)} windows; labels mapped {dict(label_map or {})})")
    quality = _data_quality(table, data, model, source)
    audit_result = setup_audit(data, features=chosen, groups=groups).to_dict() if audit and groups in data else None
    if audit_result is not None:
        figures["Set-up audit: each feature's share of variance between subjects"] = setup_audit_figure(audit_result)
    config: dict[str, object] = {"evaluate": {"target": target, "groups": groups, "n_splits": n_splits,
                                              "split": split, "seed": seed, "n_boot": n_boot,
                                              "estimator": estimator, **options},
                                 **table.attrs.get("geoengage", {})}
    path = write_report(results, out, title=f"geoengage evaluation: {target}", protocol=protocol, figures=figures,
                        importance=importance.round(5).to_dict(), explanations=explanations, data_quality=quality,
                        config=config, setup_audit=audit_result)
    headline = {name: {k: round(r["metrics"][k], 4) for k in ("balanced_accuracy", "f1_macro", "auc_roc",
                                                              "auc_engaged", "minority_recall")}
                for name, r in results.items()}
    return {**headline, "report": str(path)}


def evaluate_datasets(tables: Mapping[str, pd.DataFrame | str | Path], *, target: str, out: str | Path,
                      label_maps: Mapping[str, Mapping[object, object]] | None = None, weights: str = "none",
                      groups: str = "subject_id", n_splits: int = 5, seed: int = 0, n_boot: int = 1000,
                      classes: Sequence[object] | None = None, positive: Sequence[object] | None = None,
                      features: Sequence[str] | None = None, audit: bool = True, estimator: str = "xgboost",
                      **params: Any) -> dict[str, Any]:
    """Leave one data set out: train on every data set but one, score the one left out, for each, and write the
    report into ``out``.

    ``tables`` maps each data set's name to its windows (a table or a ``windows.parquet`` path); ``label_maps``
    maps a set's own labels onto one coding ({set: {label: pooled label}}, see
    :func:`geoengage.modeling.selection.pool_datasets`); ``weights`` weighs the training windows (``"none"``, each
    ``"dataset"`` or each ``"subject"`` equal: :func:`~geoengage.modeling.selection.pool_weights`). Inside the
    training sets each model fits its calibration and decision rule on subject-grouped inner folds. The report:
    per held-out set, the main estimator, logistic regression and the majority class with subject-bootstrap
    intervals and calibration (ECE of P(engaged)); the cross-data-set matrix (each set's model on every set, its own
    subjects in ``n_splits`` grouped folds on the diagonal); SHAP of the model fitted on every set; the set-up audit
    by subject and by data set (features that tell the sets apart). Returns the headline figures and the report's
    path.
    """

    read = {name: read_windows(t) if isinstance(t, (str, Path)) else t for name, t in tables.items()}
    pooled = pool_datasets(read, target=target, label_maps=label_maps, groups=groups)
    options = _model_params(params)
    chosen = tuple(features or feature_columns(pooled))
    missing = [f for f in chosen if f not in pooled.columns]
    if missing:
        raise SchemaError(f"evaluate: not every data set has the features {missing[:5]}.")
    model_options = {"classes": None if classes is None else list(classes),
                     "positive": None if positive is None else list(positive), **options}
    candidates = {name: Candidate(name, target, name, chosen, weights, model_options)
                  for name in (estimator, *BASELINES)}
    held = {name: leave_one_dataset_out(pooled, c, groups=groups, random_state=seed) for name, c in candidates.items()}
    results = {f"{name}: held out {held_out}": summarize(result, n_boot=n_boot, seed=seed)
               for name, per_set in held.items() for held_out, result in per_set.items()}
    matrix_results = cross_dataset_matrix(pooled, candidates[estimator], n_splits=n_splits, groups=groups,
                                          random_state=seed)
    names = list(read)
    matrix = pd.DataFrame(np.nan, index=names, columns=names)
    for (source, other), result in matrix_results.items():
        matrix.loc[source, other] = summarize(result, n_boot=0)["metrics"]["auc_engaged"]
    model = candidates[estimator].fit(pooled, groups=groups, random_state=seed)
    data = scorable_windows(pooled, target)
    explanation = explain_model(model, data)
    importance = global_importance(explanation).mean(axis=1)
    figures = {f"ROC curves, {estimator} on each held-out data set": roc_figure(
                   {f"held out {k}": v for k, v in held[estimator].items()}),
               f"Reliability of P(engaged), {estimator} on each held-out data set": reliability_figure(
                   {f"held out {k}": results[f"{estimator}: held out {k}"] for k in held[estimator]}),
               f"Cross-data-set matrix: engaged-vs-not AUC of {estimator} (diagonal: {n_splits} subject-grouped folds)":
                   matrix_figure(matrix, title="trained on (rows) -> tested on (columns)"),
               "Global SHAP importance (model fitted on every data set)": importance_figure(explanation)}
    by_set = setup_audit(data, features=list(chosen), groups=DATASET) if audit else None
    protocol: dict[str, object] = {
        "target": target, "data sets": {n: {"windows": int((data[DATASET] == n).sum()),
                                            "subjects": int(data.loc[data[DATASET] == n, groups].nunique())}
                                        for n in names},
        "label maps (each set's label -> pooled label)": {k: dict(v) for k, v in (label_maps or {}).items()},
        "split": "leave one data set out: trained on every other set, scored on the one left out; inside the "
                 "training sets, calibration and decision rule fitted on subject-grouped inner folds",
        "training weights": weights,
        "classes": model.classes_.tolist(), "engaged classes (auc_engaged, P(engaged))": model.positive_.tolist(),
        f"cross-data-set matrix, engaged-vs-not AUC of {estimator} (rows trained on, columns tested on)":
            matrix.round(3).to_dict(orient="index"),
    }
    if by_set is not None:
        protocol["features that tell the data sets apart (set-up audit by data set)"] = by_set.flagged or "none"
    audit_result = setup_audit(data, features=list(chosen), groups=groups).to_dict() if audit else None
    config = {"evaluate": {"by": "dataset", "target": target, "groups": groups, "n_splits": n_splits, "seed": seed,
                           "n_boot": n_boot, "estimator": estimator, "weights": weights, **options}}
    path = write_report(results, out, title=f"geoengage evaluation by data set: {target}", protocol=protocol,
                        figures=figures, importance=importance.round(5).to_dict(), config=config,
                        setup_audit=audit_result)
    headline = {name: {k: round(r["metrics"][k], 4) for k in ("balanced_accuracy", "auc_engaged")}
                | {"ece_engaged": round(r["metrics"]["calibration"]["ece_engaged"], 4)}
                for name, r in results.items()}
    worst = min(held[estimator], key=lambda k: results[f"{estimator}: held out {k}"]["metrics"]["auc_engaged"])
    return {**headline, "worst_held_out": worst, "report": str(path)}


def _relative_paths(ids: pd.Series) -> pd.Series:
    """Recording ids that are absolute paths, relative to their common folder (a report names the recordings, not
    where they lay on the machine that made it); other ids as they are."""
    values = ids.astype(str)
    if len(values) == 0 or not all(os.path.isabs(v) for v in values):
        return values
    root = os.path.commonpath(values.tolist())
    if root in set(values):  # one recording: keep its file name
        root = os.path.dirname(root)
    return values.map(lambda v: os.path.relpath(v, root))


def _data_quality(table: pd.DataFrame, data: pd.DataFrame, model: EngagementModel, source: Path | None
                  ) -> dict[str, object]:
    quality: dict[str, object] = {
        "windows": len(table), "windows with window_ok": int(table["window_ok"].sum()) if "window_ok" in table else None,
        "windows evaluated (labelled, window_ok)": len(data),
        "median face coverage": round(float(table["coverage"].median()), 3) if "coverage" in table else None,
        "missing feature values": f"{data[model.features_].isna().to_numpy().mean():.1%}"}
    meta = table.attrs.get("geoengage_meta", {})
    if meta:
        cleaning = meta.get("cleaning", {})
        quality.update({"items": meta.get("n_items"), "failed items": meta.get("n_failures"),
                        "values masked by reason (quality, range, jump, level)": cleaning.get("masked_by_reason"),
                        "values masked per feature": cleaning.get("outliers"),
                        "values interpolated per feature": cleaning.get("filled")})
    if source is not None and source.with_name("frames.meta.json").is_file():
        frames_meta = json.loads(source.with_name("frames.meta.json").read_text())
        quality.update({"face yield (frames with a face)": frames_meta.get("face_yield"),
                        "unreadable frames": frames_meta.get("n_unreadable_frames")})
    return quality


def evaluate_recordings(windows: pd.DataFrame | str | Path, *, target: str, out: str | Path,
                        groups: str = "subject_id", task: str | None = None, cell: str = "gru", n_splits: int = 5,
                        seed: int = 0, n_boot: int = 1000, features: Sequence[str] | None = None,
                        **params: Any) -> dict[str, Any]:
    """Recording-level evaluation: the sequence model (:class:`~geoengage.modeling.sequence.SequenceModel`, ``cell``
    GRU or LSTM, ``params`` its options) beside the recording-level baselines (ridge or logistic, XGBoost on per
    recording median / sd / slope, the mean or majority) on the same subject-grouped folds; report with
    subject-bootstrap intervals, permutation importance over features and over time.

    ``task`` defaults to ``"regression"`` for numeric labels (intensities) and ``"classification"`` otherwise.
    """
    from sklearn.base import clone


    table, data = labelled_table(windows, target, where="evaluate")
    task = task or default_task(data, target)
    chosen = list(features or feature_columns(data))
    model = SequenceModel(task, cell=cell, features=chosen, random_state=seed, **params)
    cv = cross_validate_recordings(data, target=target, groups=groups, task=task, n_splits=n_splits,
                                   features=chosen, seed=seed, model=model)
    results = {name: summarize(result, n_boot=n_boot, seed=seed) for name, result in cv.items()}
    fitted = clone(model).fit(data, target)
    importance = feature_importance(fitted, data, target)
    over_time = time_importance(fitted, data, target)
    lengths = data.groupby([k for k in RECORDING_KEYS if k in data.columns], sort=False).size()
    protocol: dict[str, object] = {
        "target": target, "task": task, "unit": "recording (its windows in order)",
        "split": f"subject ({n_splits} folds, grouped by {groups}); one prediction per recording",
        "recordings": len(lengths), "windows": len(data),
        "subjects": int(data[groups].nunique()) if groups in data else None,
        "windows per recording (min / median / max)": (int(lengths.min()), float(lengths.median()),
                                                       int(lengths.max())),
        f"{cell} options (scaling, epoch count and weights fitted inside each training fold)":
            {k: v for k, v in model.get_params().items() if k not in ("features", "classes")},
        "epochs chosen per fold (inner subject split)": [d.get("epochs") for d in cv[cell].decision.values()],
        "baselines": "ridge / logistic regression and XGBoost on per-recording median, sd and slope of each "
                     "feature; the training mean / majority class",
        "importance": f"permutation importance of the {cell} fitted on every recording (rise in "
                      f"{'MSE' if task == 'regression' else 'log-loss'} when a feature is shuffled across recordings)",
        f"importance over time (rise in error when window k is blanked, k = 0..{len(over_time) - 1})":
            [round(float(v), 5) for v in over_time],
    }
    config = {"evaluate": {"target": target, "groups": groups, "task": task, "cell": cell, "n_splits": n_splits,
                           "seed": seed, "n_boot": n_boot, **params}, **table.attrs.get("geoengage", {})}
    quality = {"windows": len(table), "windows evaluated (labelled, window_ok)": len(data),
               "missing feature values": f"{data[chosen].isna().to_numpy().mean():.1%}"}
    path = write_report(results, out, title=f"geoengage recording-level evaluation: {target}", protocol=protocol,
                        importance=importance.round(6).to_dict(), data_quality=quality, config=config)
    keys = ("mse", "mae", "pearson", "spearman", "accuracy_rounded") if task == "regression" else (
        "balanced_accuracy", "f1_macro", "auc_roc")
    headline = {name: {k: round(float(r["metrics"][k]), 4) for k in keys if k in r["metrics"]}
                for name, r in results.items()}
    return {**headline, "report": str(path)}
