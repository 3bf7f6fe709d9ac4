"""detect/identity.py: enrol people from photos, match faces, store encodings as JSON."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from geoengage.detect.identity import encode_face, enroll_people, load_encodings, save_encodings
from geoengage.exceptions import InvalidParameterError

from .test_faces import ASTRONAUT_BOX


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray, no_face_image: np.ndarray):
    root = tmp_path_factory.mktemp("people")
    (root / "astronaut").mkdir()
    (root / "nobody").mkdir()
    cv2.imwrite(str(root / "astronaut" / "a.jpg"), astronaut)
    cv2.imwrite(str(root / "astronaut" / "b.png"), cv2.convertScaleAbs(astronaut, alpha=0.8, beta=20))
    cv2.imwrite(str(root / "nobody" / "coffee.jpg"), no_face_image)
    return enroll_people(root)


def test_enroll_skips_photos_without_one_face(enrolled) -> None:
    people, skipped = enrolled
    assert people.names == ("astronaut",) and people.encodings.shape == (2, 128)
    assert len(skipped) == 1 and skipped[0][0].endswith("coffee.jpg") and "0 faces" in skipped[0][1]


def test_match_recognises_a_changed_photo(enrolled, astronaut: np.ndarray) -> None:
    people, _ = enrolled
    turned = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((222, 128), 10, 1.2), (512, 512))
    gray = cv2.cvtColor(turned, cv2.COLOR_BGR2GRAY)
    from geoengage.detect.faces import HogFaceDetector

    (found,) = HogFaceDetector(threshold=0.3)(gray)
    encoding = encode_face(turned, found.box)
    assert encoding.shape == (128,) and np.isfinite(encoding).all()
    name, distance = people.match(encoding)
    assert name == "astronaut" and distance < 0.4
    stranger = np.random.default_rng(0).normal(size=128)
    stranger *= np.linalg.norm(encoding) / np.linalg.norm(stranger)
    name, distance = people.match(stranger)
    assert name is None and distance > 0.6


def test_encodings_round_trip_as_json(enrolled, tmp_path: Path) -> None:
    people, _ = enrolled
    save_encodings(people, tmp_path / "enc.json")
    again = load_encodings(tmp_path / "enc.json")
    assert again.names == people.names and np.allclose(again.encodings, people.encodings, atol=1e-6)
    (tmp_path / "bad.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(InvalidParameterError, match="bad.json: not a geoengage encodings file"):
        load_encodings(tmp_path / "bad.json")


def test_same_encodings_as_face_recognition(astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the face_recognition package is installed (`pip install --no-deps face_recognition`), our
    encodings equal its own. Its model module imports pkg_resources, gone from setuptools 81+, so the
    test stands in a module with the same four functions, pointing at the same files."""
    from geoengage.detect.models import model_path

    paths = {name: str(model_path(name)) for name in ("landmarks68", "landmarks5", "face_encoder")}
    cnn = str(model_path("landmarks5").with_name("mmod_human_face_detector.dat"))
    models = types.ModuleType("face_recognition_models")
    models.pose_predictor_model_location = lambda: paths["landmarks68"]  # type: ignore[attr-defined]
    models.pose_predictor_five_point_model_location = lambda: paths["landmarks5"]  # type: ignore[attr-defined]
    models.face_recognition_model_location = lambda: paths["face_encoder"]  # type: ignore[attr-defined]
    models.cnn_face_detector_model_location = lambda: cnn  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "face_recognition_models", models)
    face_recognition = pytest.importorskip("face_recognition")
    rgb = np.ascontiguousarray(astronaut[:, :, ::-1])
    left, top, right, bottom = ASTRONAUT_BOX.astype(int)
    theirs = face_recognition.face_encodings(rgb, [(top, right - 1, bottom - 1, left)])[0]
    assert np.allclose(encode_face(astronaut, ASTRONAUT_BOX), theirs, atol=1e-6)


def test_known_people_are_recognised(shared_data: Path) -> None:
    """Enrol knn_train/<person>/, then name every face in knn_test/ as the file names say."""
    from geoengage.config import ExtractConfig
    from geoengage.extract import extract_batch

    people, skipped = enroll_people(shared_data / "face_samples" / "knn_train")
    assert set(people.names) == {"alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"} and not skipped
    folder = shared_data / "face_samples" / "knn_test"
    enc = Path(pytest.importorskip("tempfile").mkdtemp()) / "enc.json"
    save_encodings(people, enc)
    config = ExtractConfig(identify=True, encodings_path=str(enc), face_policy="all", min_face_px=40)
    frames = extract_batch(folder, config=config).frames
    named = frames.groupby("video_id")["person"].apply(lambda s: set(s.dropna()))
    assert named["alex_lacamoire1.jpg"] == {"alex_lacamoire"}
    assert named["johnsnow_test1.jpg"] == {"kit_harington"}
    assert named["kit_with_rose.jpg"] == {"kit_harington", "rose_leslie"}
    assert named["obama1.jpg"] == {"obama"}
    assert {"obama", "biden"} <= named["obama_and_biden.jpg"]


def test_encodings_equal_dlibs_own_network(astronaut: np.ndarray) -> None:
    """The torch run of dlib's network gives dlib's own encodings (``compute_face_descriptor``, no jitter), here for
    the astronaut as she is, turned and scaled, and darker."""
    import dlib

    from geoengage.detect.identity import _five_point_predictor
    from geoengage.detect.models import model_path

    dlibs = dlib.face_recognition_model_v1(str(model_path("face_encoder")))
    turned = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((222, 128), 10, 1.2), (512, 512))
    darker = cv2.convertScaleAbs(astronaut, alpha=0.6, beta=0)
    encodings = []
    for image in (astronaut, turned, darker):
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        rect = max(dlib.get_frontal_face_detector()(rgb, 1), key=lambda r: r.area())
        theirs = np.array(dlibs.compute_face_descriptor(rgb, _five_point_predictor()(rgb, rect), 1))
        ours = encode_face(image, np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1]))
        assert ours.shape == (128,) and ours.dtype == np.float64
        assert np.abs(ours - theirs).max() < 1e-5
        encodings.append(ours)
    assert 0.05 < np.linalg.norm(encodings[0] - encodings[1]) < 0.6  # the same person, not the same numbers


def test_a_damaged_encoder_file_is_named(tmp_path: Path) -> None:
    from geoengage.detect.face_encoder import read_dlib_resnet
    from geoengage.detect.models import model_path
    from geoengage.exceptions import ModelFileError

    data = model_path("face_encoder").read_bytes()
    (tmp_path / "cut.dat").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"cut\.dat: not dlib's face-encoder network"):
        read_dlib_resnet(tmp_path / "cut.dat")
    with pytest.raises(ModelFileError, match="shape_predictor_5_face_landmarks.dat: not dlib's face-encoder"):
        read_dlib_resnet(model_path("landmarks5"))
    with pytest.raises(ModelFileError, match="missing.dat: cannot read"):
        read_dlib_resnet(tmp_path / "missing.dat")
