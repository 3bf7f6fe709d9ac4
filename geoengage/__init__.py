"""geoengage: how engaged a person is, from face images and videos, and why.

Public API (the data flow, stage by stage):

- media -> frames: :func:`iter_frames`, :func:`read_image`, :func:`list_media`, :func:`read_manifest`
- frames -> faces -> landmarks: :func:`extract_frames`, :func:`extract_batch`, :class:`ExtractConfig`
- storage: :func:`write_frames`, :func:`read_frames`
- identity: :func:`enroll_people`, :func:`save_encodings`, :func:`load_encodings`
- samples: :func:`sample_image`, :func:`sample_video`
- frames -> cleaning -> windows (imported on first use): :func:`frames_to_windows` with a :class:`Recipe` (both in
  one call, as every entry point does), :func:`clean_frames`, :func:`make_windows`,
  :func:`relative_to_baseline`, :func:`build_dataset` (media -> frames -> windows tables on disk, resumable),
  :func:`import_dataset` (another tool's CSVs -> the same tables)
- models (one API, imported on first use): :func:`evaluate` (grouped CV, train -> test, set-up audit ->
  report), :func:`evaluate_datasets` (leave one data set out), :func:`train` (fit and save; several data sets
  pooled), :func:`score` (apply a saved model to windows), :func:`load_model`, :func:`read_windows`,
  :class:`EngagementModel` (a scikit-learn classifier), :func:`load_default_model` (the shipped one),
  :func:`predict_frames` and :class:`PredictConfig` (one recording's frames -> the model's cleaning and windows ->
  scores; :class:`WindowChanges` for other windows)
- figures (imported on first use): ``geoengage.plot`` (timelines, an annotated face, a window's reasons, SHAP, the
  set-up audit, ROC, reliability; matplotlib figures to restyle)
- sequences (imported on first use): :func:`read_window_table` (another tool's per-window table -> windows),
  :class:`SequenceModel` (GRU / LSTM over each recording's windows), :func:`evaluate_recordings`,
  :func:`load_sequence_model`

Later stages live in their modules (imported on use, so ``import geoengage`` stays light):
``geoengage.geometry`` (per-frame features), ``geoengage.importers`` (OpenFace, Py-Feat),
``geoengage.clean``, ``geoengage.windows``, ``geoengage.dataset`` (``build_dataset``),
``geoengage.normalize``, ``geoengage.modeling`` (estimators, grouped CV, ``fit_model``),
``geoengage.report`` (metrics, SHAP explanations, figures, HTML) and ``geoengage.detect.expression``.

torch, xgboost and shap are imported lazily, by the stages that need them.
"""

from __future__ import annotations

from ._version import __version__
from .config import ExtractConfig
from .datasets import sample_image, sample_video
from .detect.identity import enroll_people, load_encodings, save_encodings
from .exceptions import (
    GeoEngageError,
    GeoEngageWarning,
    InvalidParameterError,
    MediaReadError,
    MissingDependencyError,
    SchemaError,
)
from .extract import BatchResult, extract_batch, extract_frames, read_frames, write_frames
from .media import Frame, MediaItem, iter_frames, list_media, read_image, read_manifest

#: Names served lazily (their modules import xgboost, sklearn and shap on use).
_LAZY = {"evaluate": ("evaluation", "evaluate"), "train": ("modeling.protocol", "train"),
         "score": ("predict", "score"), "load_model": ("modeling.protocol", "load_model"),
         "EngagementModel": ("modeling.train", "EngagementModel"), "read_windows": ("dataset", "read_windows"),
         "read_window_table": ("window_tables", "read_window_table"),
         "SequenceModel": ("modeling.sequence", "SequenceModel"),
         "load_sequence_model": ("modeling.sequence", "load_sequence_model"),
         "evaluate_recordings": ("evaluation", "evaluate_recordings"),
         "evaluate_datasets": ("evaluation", "evaluate_datasets"), "clean_frames": ("clean", "clean_frames"),
         "make_windows": ("windows", "make_windows"), "relative_to_baseline": ("windows", "relative_to_baseline"),
         "build_dataset": ("dataset", "build_dataset"), "import_dataset": ("dataset", "import_dataset"),
         "predict_frames": ("predict", "predict_frames"),
         "PredictConfig": ("predict", "PredictConfig"), "WindowChanges": ("recipe", "WindowChanges"),
         "Recipe": ("recipe", "Recipe"), "frames_to_windows": ("recipe", "frames_to_windows"),
         "load_default_model": ("modeling.train", "load_default_model"),
         "plot": ("plot", None)}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        loaded = import_module(f".{module}", __name__)
        return loaded if attribute is None else getattr(loaded, attribute)
    raise AttributeError(f"module 'geoengage' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names with the lazily served ones (``dir(geoengage)``, tab completion)."""
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BatchResult",
    "EngagementModel",
    "ExtractConfig",
    "Frame",
    "GeoEngageError",
    "GeoEngageWarning",
    "InvalidParameterError",
    "MediaItem",
    "MediaReadError",
    "MissingDependencyError",
    "PredictConfig",
    "Recipe",
    "SchemaError",
    "SequenceModel",
    "WindowChanges",
    "__version__",
    "build_dataset",
    "clean_frames",
    "enroll_people",
    "evaluate",
    "evaluate_datasets",
    "evaluate_recordings",
    "extract_batch",
    "extract_frames",
    "frames_to_windows",
    "import_dataset",
    "iter_frames",
    "list_media",
    "load_default_model",
    "load_encodings",
    "load_model",
    "load_sequence_model",
    "make_windows",
    "plot",
    "predict_frames",
    "read_frames",
    "read_image",
    "read_manifest",
    "read_window_table",
    "read_windows",
    "relative_to_baseline",
    "sample_image",
    "sample_video",
    "save_encodings",
    "score",
    "train",
    "write_frames",
]
