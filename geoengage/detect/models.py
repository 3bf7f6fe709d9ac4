"""Locate and lazily load the dlib model files shipped by ``face-recognition-models``.

The files are found with :func:`importlib.util.find_spec`, without importing
``face_recognition_models`` (its ``__init__`` imports ``pkg_resources``, which
setuptools 81+ no longer ships). Nothing is downloaded: a missing file is a
:class:`~geoengage.exceptions.MissingDependencyError` naming the package to install.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

from ..exceptions import MissingDependencyError

__all__ = ["MODEL_FILES", "model_path", "model_sha256"]

#: Short names of the dlib model files geoengage uses.
MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "face_encoder": "dlib_face_recognition_resnet_model_v1.dat",
}


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
    """SHA-256 of a model file, recorded in every output's metadata."""
    digest = hashlib.sha256()
    with model_path(name).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
