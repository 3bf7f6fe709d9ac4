"""Locate and lazily load the dlib model files shipped by ``face-recognition-models``, and read the CNN weights
geoengage ships (tensors only, never unpickled).

The files are found with :func:`importlib.util.find_spec`, without importing
``face_recognition_models`` (its ``__init__`` imports ``pkg_resources``, which
setuptools 81+ no longer ships). Nothing is downloaded: a missing file is a
:class:`~geoengage.exceptions.MissingDependencyError` naming the package to install.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..exceptions import MissingDependencyError, ModelFileError, SchemaError

__all__ = ["MODEL_FILES", "PACKAGED_MODELS", "load_weights", "model_path", "model_sha256", "packaged_model"]

M = TypeVar("M")

#: Short names of the dlib model files geoengage uses.
MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "face_encoder": "dlib_face_recognition_resnet_model_v1.dat",
}


#: Model files shipped inside geoengage (``geoengage/models/``): short name -> (relative path, SHA-256).
PACKAGED_MODELS = {
    "face_detector": ("face_detection/face_detection_yunet_2023mar.onnx",
                      "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"),
    "expression_cnn": ("expression_cnn.pt", "68e38240be80916a84c80777c7467e611c8fcbea2cc5225aab175971fdb11448"),
    "gaze_cnn": ("gaze_cnn.pt", "687115364c667e8092eb9257484386989d042308412d796b843d05f2d79776bd"),
    "expression_embedding": ("expression_embedding.npz",
                             "8938f7a08f1f3710c7c13dbb33bcd1334940342bf51b7c4025267bfc207db123"),
}
_PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def packaged_model(name: str) -> Path:
    """Path of the model file ``name`` shipped in the package (a key of :data:`PACKAGED_MODELS`), checked against its
    SHA-256: a missing file is a :class:`MissingDependencyError`, a truncated or altered one a
    :class:`~geoengage.exceptions.ModelFileError` naming the file and the hash it must have."""
    relative, expected = PACKAGED_MODELS[name]
    path = _PACKAGE_MODELS / relative
    if not path.is_file():
        raise MissingDependencyError(f"{path}: the {name.replace('_', ' ')} model file is missing; reinstall geoengage.")
    actual = _sha256(path)
    if actual != expected:
        raise ModelFileError(f"{path}: damaged or altered model file: SHA-256 {actual[:16]}..., expected {expected} "
                             f"({path.stat().st_size} bytes); reinstall geoengage.")
    return path


def model_path(name: str) -> Path:
    """Path of the dlib model file ``name`` (a key of :data:`MODEL_FILES`)."""
    if name not in MODEL_FILES:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODEL_FILES)}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "The dlib model files are missing: install them with `pip install face-recognition-models`.")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILES[name]
    if not path.is_file():
        raise MissingDependencyError(f"{path} is missing: reinstall `face-recognition-models`.")
    return path


@functools.cache
def model_sha256(name: str) -> str:
    """SHA-256 of a model file (dlib's or one shipped in the package), recorded in every output's metadata."""
    return PACKAGED_MODELS[name][1] if name in PACKAGED_MODELS else _sha256(model_path(name))


def load_weights(path: str | Path, build: Callable[[dict[str, Any]], M], *, what: str, remedy: str) -> M:
    """``build(state_dict)`` from a file of tensors read with ``torch.load(..., weights_only=True)``.

    A missing file is a :class:`MissingDependencyError` saying ``remedy``; the package's own weights
    (:data:`PACKAGED_MODELS`) are checked against their SHA-256 first (:func:`packaged_model`); a file that is not such
    a state dict (a pickled object, other layers) is a :class:`SchemaError` naming ``what`` it should have been.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingDependencyError(f"{path}: the {what}'s weights are missing; reinstall geoengage or {remedy}.")
    shipped = {(_PACKAGE_MODELS / relative).resolve(): name for name, (relative, _) in PACKAGED_MODELS.items()}
    if path.resolve() in shipped:  # the package's own weights: checked against their hash, by name
        packaged_model(shipped[path.resolve()])
    try:
        return build(torch.load(path, map_location="cpu", weights_only=True))
    except (pickle.UnpicklingError, RuntimeError, KeyError, ValueError, OSError) as err:  # e.g. a pickled object
        raise SchemaError(f"{path}: not {what} weights ({str(err).splitlines()[0]}).") from err
