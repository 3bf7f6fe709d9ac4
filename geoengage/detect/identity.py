"""Faces -> identities: dlib's ResNet face encoder, enrolment and matching.

Encodings are the 128-d vectors ``face_recognition.face_encodings`` returns with
its defaults (5-point alignment, no jitter): dlib's 5-point predictor and face chip,
then dlib's network run in torch (:mod:`geoengage.detect.face_encoder`; the same weights,
the same numbers within 1e-6, about 20 ms a face on one core, 6.5-7x faster than dlib's own run:
``benchmarks/face_encoder_speed.py``).
Two faces whose encodings lie closer than 0.6 (euclidean) are the same person by
dlib's rule. Enrolled people are stored as JSON (never pickle)::

    {"schema": "geoengage.encodings/1", "model_sha256": "...",
     "people": {"obama": [[...128 floats...], ...], ...}}
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np

from ..exceptions import InvalidParameterError, MediaReadError
from ..media import IMAGE_EXTENSIONS, read_image
from .faces import HogFaceDetector
from .models import model_path, model_sha256

__all__ = ["EnrolledPeople", "encode_face", "enroll_people", "load_encodings", "save_encodings"]

logger = logging.getLogger(__name__)
ENCODINGS_SCHEMA = "geoengage.encodings/1"


@functools.cache
def _five_point_predictor() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(model_path("landmarks5")))


def encode_face(image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """128-d face encoding of the face in ``box`` of a BGR frame (about 20 ms on one core)."""

    # here, not at the top: the encoder imports torch, which extraction without a face to encode never needs
    from .face_encoder import CHIP_PADDING, CHIP_SIZE, face_encoder

    rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1)
    chip = dlib.get_face_chip(rgb, _five_point_predictor()(rgb, rect), size=CHIP_SIZE, padding=CHIP_PADDING)
    return face_encoder()(chip[None])[0]


@dataclass(frozen=True)
class EnrolledPeople:
    """Known people and their encodings; :meth:`match` names the closest one within tolerance."""

    names: tuple[str, ...]
    encodings: np.ndarray  # (n_encodings, 128)
    owners: np.ndarray  # (n_encodings,) index into names

    def match(self, encoding: np.ndarray, *, tolerance: float = 0.6) -> tuple[str | None, float]:
        """The enrolled person closest to ``encoding`` and the distance; name None beyond ``tolerance``."""
        if len(self.encodings) == 0:
            return None, float("nan")
        distances = np.linalg.norm(self.encodings - encoding, axis=1)
        best = int(np.argmin(distances))
        distance = float(distances[best])
        return (self.names[self.owners[best]] if distance <= tolerance else None), distance

    def to_json(self) -> dict[str, object]:
        people: dict[str, list[list[float]]] = {name: [] for name in self.names}
        for owner, enc in zip(self.owners, self.encodings, strict=True):
            people[self.names[owner]].append([round(float(v), 7) for v in enc])
        return {"schema": ENCODINGS_SCHEMA, "model_sha256": model_sha256("face_encoder"), "people": people}


def enroll_people(
    folder: str | Path, *, min_face_px: int = 40, threshold: float = 0.3
) -> tuple[EnrolledPeople, list[tuple[str, str]]]:
    """Encode the people in ``folder/<person>/*.jpg`` (one face per photo).

    Enrolment photos are portraits, so the detector threshold is stricter than in
    extraction (0.3 instead of 0): weak false positives would make a photo ambiguous.

    Returns
    -------
    people : EnrolledPeople
    skipped : list of (path, reason)
        Photos with no face, several faces, or that cannot be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MediaReadError(folder, "enrolment needs a folder with one sub-folder of photos per person")
    detector = HogFaceDetector(min_face_px=min_face_px, threshold=threshold)
    names, encodings, owners, skipped = [], [], [], []
    for person_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        photos = sorted(p for p in person_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        person_encodings = []
        for photo in photos:
            try:
                image = read_image(photo)
            except MediaReadError as err:
                skipped.append((str(photo), err.problem))
                continue
            found = detector(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
            if len(found) != 1:
                skipped.append((str(photo), f"{len(found)} faces found; enrolment needs exactly one"))
                continue
            person_encodings.append(encode_face(image, found[0].box))
        if person_encodings:
            owners += [len(names)] * len(person_encodings)
            names.append(person_dir.name)
            encodings += person_encodings
        else:
            logger.warning("%s: no usable photo; this person is not enrolled", person_dir)
    if not names:
        raise InvalidParameterError(f"{folder}: no person could be enrolled (no sub-folder has a photo with one face).")
    people = EnrolledPeople(tuple(names), np.array(encodings), np.array(owners, dtype=int))
    return people, skipped


def save_encodings(people: EnrolledPeople, path: str | Path) -> None:
    """Write enrolled people as JSON."""
    Path(path).write_text(json.dumps(people.to_json()))


def load_encodings(path: str | Path) -> EnrolledPeople:
    """Read a JSON file written by :func:`save_encodings`, checking its schema and shapes."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InvalidParameterError(f"{path}: cannot read the encodings file ({err}).") from err
    if not isinstance(data, dict) or data.get("schema") != ENCODINGS_SCHEMA:
        raise InvalidParameterError(
            f"{path}: not a geoengage encodings file (schema {data.get('schema') if isinstance(data, dict) else None!r}, "
            f"expected {ENCODINGS_SCHEMA!r}). Write one with `geoengage enroll`.")
    names, encodings, owners = [], [], []
    for name, vectors in data["people"].items():
        array = np.asarray(vectors, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != 128:
            raise InvalidParameterError(f"{path}: encodings of {name!r} must be lists of 128 numbers.")
        owners += [len(names)] * len(array)
        names.append(name)
        encodings.append(array)
    return EnrolledPeople(tuple(names), np.concatenate(encodings) if encodings else np.empty((0, 128)),
                          np.array(owners, dtype=int))
