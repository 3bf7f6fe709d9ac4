"""modeling/face_cnn.py: the expression CNN fine-tuned on aligned faces learns named classes, sklearn-style."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from geoengage.exceptions import InvalidParameterError
from geoengage.modeling.face_cnn import FaceCropClassifier
from geoengage.normalize import normalize_face


def _faces(astronaut, landmarks, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Aligned faces of the real photo in two named classes: eyes open ("engaged") or painted shut ("away")."""
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    rng = np.random.default_rng(seed)
    faces, labels = [], []
    for i in range(n):
        image = gray.copy()
        if i % 2:
            for eye in (landmarks[36:42], landmarks[42:48]):
                cv2.fillPoly(image, [eye.round().astype(np.int32)], 150)
        noisy = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
        faces.append(normalize_face(noisy, landmarks + rng.normal(0, 1.0, (68, 2))))
        labels.append("away" if i % 2 else "engaged")
    return np.stack(faces), np.array(labels, dtype=object)


def test_fine_tuning_learns_named_classes(astronaut, astronaut_landmarks) -> None:
    faces, labels = _faces(astronaut, astronaut_landmarks, 48, seed=0)
    model = FaceCropClassifier(epochs=4, batch_size=16).fit(faces, labels)
    assert list(model.classes_) == ["away", "engaged"]
    test_faces, test_labels = _faces(astronaut, astronaut_landmarks, 16, seed=1)
    proba = model.predict_proba(test_faces)
    assert proba.shape == (16, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (model.predict(test_faces) == test_labels).mean() >= 0.9
    again = FaceCropClassifier(epochs=4, batch_size=16).fit(faces, labels)
    assert np.allclose(again.predict_proba(test_faces), proba, atol=1e-5)  # same data and seed, same model


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="48, 48"):
        FaceCropClassifier().fit(np.zeros((4, 32, 32), np.float32), np.array([0, 1, 0, 1]))
    with pytest.raises(InvalidParameterError, match="two classes"):
        FaceCropClassifier().fit(np.zeros((4, 48, 48), np.float32), np.array([1, 1, 1, 1]))
