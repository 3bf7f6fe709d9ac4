"""Frames -> faces -> 68 landmarks: the per-frame table (:data:`~geoengage.schema.FRAMES`).

:func:`extract_frames` runs one source (image, video, image sequence, camera or
stream) and raises on bad input; :func:`extract_batch` runs a folder or manifest,
records each failure with the file and the problem, and goes on.
:func:`write_frames` / :func:`read_frames` store the table as parquet with a JSON
sidecar (config, versions, model hashes).
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ._version import __version__
from .config import ExtractConfig, config_to_dict, parse_focal_px
from .detect.faces import make_detector
from .detect.identity import EnrolledPeople, encode_face, load_encodings
from .detect.landmarks import get_landmark_backend
from .detect.models import PACKAGED_MODELS, model_sha256
from .detect.tracking import FaceTracker, TrackedFace
from .exceptions import GeoEngageError, InvalidParameterError, SchemaError
from .geometry.expression_cnn import EXPRESSION_CLASSES
from .geometry.registry import (
    FEATURES_VERSION,
    compute_frame_features,
    distance_features,
    eye_patch_features,
    face_crop_features,
    feature_specs,
    image_features,
)
from .media import Frame, MediaItem, iter_frames, list_media
from .normalize import EyePatches, normalize_eyes, normalize_face
from .progress import Hook
from .schema import DETECTOR_POINT_COLUMNS, FRAMES, LANDMARK_COLUMNS, Column, validate

__all__ = [
    "FAILURE_COLUMNS",
    "FRAMES_SCHEMA_VERSION",
    "ITEM_FOCAL",
    "BatchResult",
    "extract_batch",
    "extract_frames",
    "extract_items",
    "frames_from_rows",
    "item_config",
    "iter_face_rows",
    "read_frames",
    "write_frames",
]

logger = logging.getLogger(__name__)
_IMAGE_FEATURES = tuple(spec.name for spec in feature_specs("image"))
#: Features the CNNs fill in batches (expression on aligned faces, gaze on normalised eyes): NaN until scored.
_BATCH_FEATURES = tuple(spec.name for spec in (*feature_specs("faces"), *feature_specs("eyes")))

#: /3: ``camera_focal_px`` added, features in mm only for frames from a calibrated camera. A /2 table is read as /3
#: (its frames had no calibration: their features in mm are set missing).
FRAMES_SCHEMA_VERSION = "geoengage.frames/3"
_READABLE_SCHEMAS = ("geoengage.frames/2", FRAMES_SCHEMA_VERSION)


class _Identifier:
    """Names each face track once (and retries an unknown track every ``retry_every`` frames)."""

    def __init__(self, people: EnrolledPeople, tolerance: float, retry_every: int) -> None:
        self.people, self.tolerance, self.retry_every = people, tolerance, retry_every
        self._known: dict[int, tuple[str | None, float, int]] = {}

    def __call__(self, image: np.ndarray, face: TrackedFace, frame_no: int) -> tuple[str | None, float]:
        cached = self._known.get(face.track_id)
        if cached is None or (cached[0] is None and frame_no - cached[2] >= self.retry_every):
            name, distance = self.people.match(encode_face(image, face.box), tolerance=self.tolerance)
            cached = (name, distance, frame_no)
            self._known[face.track_id] = cached
        return cached[0], cached[1]


def _empty_row() -> dict[str, object]:
    row: dict[str, object] = {name: np.nan for name in (*LANDMARK_COLUMNS, *DETECTOR_POINT_COLUMNS, *_IMAGE_FEATURES,
                                                        *_BATCH_FEATURES)}
    row.update(face_found=False, n_faces=0, track_id=-1, person=None, identity_distance=np.nan,
               face_left_px=np.nan, face_top_px=np.nan, face_width_px=np.nan, face_height_px=np.nan,
               detect_score=np.nan, face_source=None, expr_class=None)
    return row


def _face_row(face: TrackedFace, n_faces: int, identity: tuple[str | None, float]) -> dict[str, object]:
    box = face.box
    row: dict[str, object] = dict(zip(LANDMARK_COLUMNS, face.landmarks.ravel().tolist(), strict=True))
    points = face.points.ravel().tolist() if face.points is not None else [np.nan] * len(DETECTOR_POINT_COLUMNS)
    row.update(zip(DETECTOR_POINT_COLUMNS, points, strict=True))
    row.update(face_found=True, n_faces=n_faces, track_id=face.track_id, person=identity[0],
               identity_distance=identity[1], face_left_px=box[0], face_top_px=box[1],
               face_width_px=box[2] - box[0], face_height_px=box[3] - box[1], detect_score=face.score,
               face_source=face.source, expr_class=None, **dict.fromkeys(_BATCH_FEATURES, np.nan))
    return row


def iter_face_rows(frames: Iterable[Frame], *, config: ExtractConfig) -> Iterator[dict[str, object]]:
    """Rows of the per-frame table (without the source columns) for a stream of frames.

    One row per kept face per frame, or one ``face_found=False`` row for a frame with no face.
    Used by :func:`extract_frames` and by live mode, which consumes rows as they come. With
    ``config.expression`` or ``config.gaze_cnn``, rows are held until ``config.expression_batch`` faces (or rows)
    are pending, so the expression and gaze CNNs score them in one call each; the rows keep their order.
    """
    tracker = FaceTracker(
        make_detector(config.detector, min_face_px=config.min_face_px, threshold=config.detect_threshold),
        get_landmark_backend("dlib"),
        tracking=config.tracking, detect_every=config.detect_every, search_every=config.search_every,
        verify_every=config.verify_every, skip_verify_ncc=config.skip_verify_ncc,
        max_faces=1 if config.face_policy == "largest" and config.crop_mode != "off" else config.max_faces,
        crop_mode=config.crop_mode, crop_fractions=config.crop_box, reidentify=config.reidentify,
        reid_tolerance=config.reid_tolerance, largest_only=config.face_policy == "largest")
    identify = None
    if config.identify:
        identify = _Identifier(load_encodings(config.encodings_path), config.identity_tolerance, config.detect_every)
    pending: list[dict[str, object]] = []
    crops: list[tuple[int, np.ndarray]] = []  # (index in pending, aligned face)
    eyes: list[tuple[int, EyePatches]] = []  # (index in pending, both eyes normalised)
    width = height = None
    for frame_no, frame in enumerate(frames):
        if frame.image is None:
            pending.append({"frame_idx": frame.frame_idx, "time_s": frame.time_s, "frame_width_px": width,
                            "frame_height_px": height, "camera_focal_px": config.camera_focal(width),
                            "frame_readable": False, **_empty_row()})
        else:
            height, width = frame.image.shape[:2]
            gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
            faces = tracker.update(gray, frame.image)
            kept = faces[:1] if config.face_policy == "largest" else faces
            model_focal = config.model_focal(width)  # the camera model: calibrated, crop or (NaN) full-frame
            base = {"frame_idx": frame.frame_idx, "time_s": frame.time_s, "frame_width_px": width,
                    "frame_height_px": height, "camera_focal_px": config.camera_focal(width), "frame_readable": True}
            if not kept:
                pending.append({**base, **_empty_row()})
            for face in kept:
                identity = (None, np.nan) if identify is None else identify(frame.image, face, frame_no)
                if config.expression:
                    crops.append((len(pending), normalize_face(gray, face.landmarks)))
                patches = normalize_eyes(gray, face.landmarks, focal_px=model_focal) if config.gaze_cnn else None
                if patches is not None:
                    eyes.append((len(pending), patches))
                pending.append({**base, **_face_row(face, tracker.n_faces, identity),
                                **image_features(gray, face.landmarks)})
        if len(pending) >= config.expression_batch:
            yield from _score_batch(pending, crops, eyes)
            pending, crops, eyes = [], [], []
    yield from _score_batch(pending, crops, eyes)


def _score_batch(rows: list[dict[str, object]], crops: list[tuple[int, np.ndarray]],
                 eyes: list[tuple[int, EyePatches]]) -> list[dict[str, object]]:
    """``rows`` with the CNNs' columns filled in for the faces in ``crops`` (expression) and ``eyes`` (gaze)."""
    if crops:
        scores = face_crop_features(np.stack([crop for _, crop in crops]))
        proba = np.column_stack([scores[f"expr_{c}"] for c in EXPRESSION_CLASSES])
        for j, (i, _) in enumerate(crops):
            rows[i].update({name: float(values[j]) for name, values in scores.items()},
                           expr_class=EXPRESSION_CLASSES[int(proba[j].argmax())])
    if eyes:
        scores = eye_patch_features(EyePatches.stack([patches for _, patches in eyes]))
        for j, (i, _) in enumerate(eyes):
            rows[i].update({name: float(values[j]) for name, values in scores.items()})
    return rows


_PANDAS_DTYPES = {"string": "string", "int": "Int64", "float": "float64", "bool": "bool"}


def frames_from_rows(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Rows of :func:`iter_face_rows` (plus ``video_id`` and ``source_path``) as the typed per-frame
    table, built column by column, before :func:`~geoengage.geometry.registry.compute_frame_features`."""
    columns = {}
    for col in (*FRAMES, *(Column(name, "float", "", "") for name in (*_IMAGE_FEATURES, *_BATCH_FEATURES))):
        values = [row[col.name] for row in rows]
        if col.dtype == "float":
            columns[col.name] = np.asarray(values, dtype=np.float64)
        else:
            columns[col.name] = pd.array(values, dtype=_PANDAS_DTYPES[col.dtype])
    return pd.DataFrame(columns)


def _source_rows(source: str | int | Path, config: ExtractConfig, *, video_id: str,
                 hook: Hook | None = None, max_frames: int | None = None) -> list[dict[str, object]]:
    keys = {"video_id": video_id, "source_path": str(source)}
    rows = []
    frames = iter_frames(source, sample_fps=config.sample_fps, sequence_fps=config.sequence_fps, max_frames=max_frames)
    for row in iter_face_rows(frames, config=config):
        rows.append({**keys, **row})
        if hook is not None:
            hook("frames", len(rows), None)
    return rows


def extract_frames(
    source: str | int | Path,
    *,
    config: ExtractConfig | None = None,
    hook: Hook | None = None,
    video_id: str | None = None,
    max_frames: int | None = None,
) -> pd.DataFrame:
    """Faces and 68 landmarks for every (sampled) frame of one source.

    Parameters
    ----------
    source : str, int or Path
        Image, video, image-sequence folder, camera index or stream address.
    config : ExtractConfig, optional
        Defaults to ``ExtractConfig()``.
    hook : Hook, optional
        Called as ``hook("frames", n_done, None)``.
    video_id : str, optional
        Recording id written in every row (default: the file name).
    max_frames : int, optional
        Stop after this many (sampled) frames, whatever the container states (a limit on frames actually decoded).

    Returns
    -------
    DataFrame
        The per-frame table: columns :data:`~geoengage.schema.FRAMES`, then every per-frame
        feature of the registry (``geoengage features`` lists them).

    Raises
    ------
    MediaReadError
        The source is missing, empty, unsupported, undecodable or truncated.
    """
    config = config or ExtractConfig()
    if not isinstance(config, ExtractConfig):
        raise InvalidParameterError(f"`config` must be an ExtractConfig. Got {type(config).__name__} instead.")
    name = video_id if video_id is not None else (Path(str(source)).name if not isinstance(source, int) else str(source))
    return compute_frame_features(frames_from_rows(_source_rows(source, config, video_id=name, hook=hook,
                                                                max_frames=max_frames)),
                                  options=config.feature_options())


@dataclass(frozen=True)
class BatchResult:
    """What a batch produced: the per-frame table and one row per failed item.

    ``failures`` has columns ``video_id``, ``source_path``, ``error`` (the exception class)
    and ``message`` (which names the file and the problem).
    """

    frames: pd.DataFrame
    failures: pd.DataFrame

    def to_dict(self) -> dict[str, object]:
        return {"n_rows": len(self.frames), "n_items": int(self.frames["video_id"].nunique()) if len(self.frames) else 0,
                "failures": self.failures.to_dict(orient="records")}


#: Columns of a failure record (``failures`` of a batch, ``failures.csv`` of a dataset).
FAILURE_COLUMNS = ["video_id", "source_path", "error", "message"]


def _failure(item: MediaItem, err: Exception) -> dict[str, str]:
    message = str(err) if isinstance(err, GeoEngageError) else f"{item.path}: unexpected {type(err).__name__}: {err}"
    return {"video_id": item.video_id, "source_path": item.path, "error": type(err).__name__, "message": message}


#: Manifest column giving one item's calibrated focal length (px at its decoded resolution): items from several
#: cameras each get their own (:func:`item_config`).
ITEM_FOCAL = "focal_px"


def item_config(item: MediaItem, config: ExtractConfig) -> tuple[MediaItem, ExtractConfig]:
    """An item's own extraction settings: a manifest column ``focal_px`` (a number; empty: none) replaces the
    batch's camera calibration for that item and is taken out of the columns carried into its rows (the frames
    record it as ``camera_focal_px``). Raises :class:`~geoengage.exceptions.InvalidParameterError` naming the
    item for a value that is not a focal length, or one given for face crops."""
    if ITEM_FOCAL not in item.extra:
        return item, config
    extra = {k: v for k, v in item.extra.items() if k != ITEM_FOCAL}
    focal = parse_focal_px(item.extra[ITEM_FOCAL], where=f"{item.path}: manifest column {ITEM_FOCAL!r}")
    if focal is None:
        return MediaItem(item.path, item.video_id, extra), config
    try:
        own = replace(config, focal_px=focal, camera_hfov_deg=None)
    except InvalidParameterError as err:  # a face crop has no camera
        raise InvalidParameterError(f"{item.path}: manifest column {ITEM_FOCAL!r}: {err}") from err
    return MediaItem(item.path, item.video_id, extra), own


def extract_items(
    items: Iterable[MediaItem],
    *,
    config: ExtractConfig | None = None,
    hook: Hook | None = None,
    catch: tuple[type[Exception], ...] = (GeoEngageError,),
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """The per-frame table of several items (features computed once for all) and their failure records.

    Exceptions of the ``catch`` types become failure records (``video_id``, ``source_path``,
    ``error``, ``message``) and the loop goes on; manifest columns are carried into each row (a ``focal_px``
    column sets that item's camera calibration instead: :func:`item_config`).
    """
    config = config or ExtractConfig()
    items = list(items)
    reserved = {c.name for c in FRAMES} | {s.name for s in feature_specs()} | {"interpolated"}
    rows: list[dict[str, object]] = []
    extras: list[dict[str, object]] = []
    failures = []
    for done, item in enumerate(items, start=1):
        try:
            clashes = sorted(set(item.extra) & reserved)
            if clashes:
                raise SchemaError(
                    f"{item.path}: manifest columns {clashes} clash with per-frame columns; rename them.")
            item, own = item_config(item, config)
            item_rows = _source_rows(item.path, own, video_id=item.video_id)
        except catch as err:
            if not isinstance(err, GeoEngageError):
                logger.exception("%s: unexpected error", item.path)
            logger.warning("%s", err)
            failures.append(_failure(item, err))
        else:
            rows += item_rows
            extras += [item.extra] * len(item_rows)
        if hook is not None:
            hook("files", done, len(items))
    table = compute_frame_features(frames_from_rows(rows), options=config.feature_options())
    if any(extras):
        table = pd.concat([table, pd.DataFrame.from_records(extras, index=table.index)], axis=1)
    return table, failures


def extract_batch(
    source: str | Path | Iterable[MediaItem],
    *,
    config: ExtractConfig | None = None,
    hook: Hook | None = None,
) -> BatchResult:
    """Run the landmark and feature stages over a folder (recursive), a CSV manifest or a list of items.

    A failing item (missing, empty, corrupt, truncated) is recorded in ``failures`` and the
    batch goes on; rows a truncated video yielded before it broke are not kept, so every
    kept recording is whole. Manifest columns (``label``, ``subject_id``, ...) are carried into
    every row of their item. Everything stays in memory: for large jobs use
    :func:`geoengage.dataset.build_dataset` (what ``geoengage extract`` runs), which is resumable.
    """
    items = list(source) if not isinstance(source, (str, Path)) else list_media(source)
    frames, failures = extract_items(items, config=config, hook=hook)
    return BatchResult(frames, pd.DataFrame(failures, columns=FAILURE_COLUMNS))


def _versions() -> dict[str, str]:
    import dlib
    import pyarrow


    return {"geoengage": __version__, "dlib": dlib.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "pyarrow": pyarrow.__version__, "python": platform.python_version()}


def _model_hashes(config: ExtractConfig) -> dict[str, str]:
    """SHA-256 of every model file the extraction ran: dlib's landmark model, the face detector (YuNet's file; HOG's
    model is part of dlib, whose version is recorded), the expression CNN and its embedding projection, the gaze CNN."""
    hashes = {"landmarks68": model_sha256("landmarks68")}
    if config.detector == "yunet":
        hashes["face_detector"] = model_sha256("face_detector")
    if config.expression:
        hashes["expression_cnn"] = PACKAGED_MODELS["expression_cnn"][1]
        hashes["expression_embedding"] = PACKAGED_MODELS["expression_embedding"][1]
    if config.gaze_cnn:
        hashes["gaze_cnn"] = PACKAGED_MODELS["gaze_cnn"][1]
    return hashes


def write_frames(frames: pd.DataFrame, path: str | Path, *, config: ExtractConfig | None = None) -> Path:
    """Write the per-frame table to ``path`` (parquet) and ``<stem>.meta.json`` beside it, atomically."""
    validate(frames, FRAMES, where="write_frames")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frames.to_parquet(tmp, index=False)
    meta = {
        "schema": FRAMES_SCHEMA_VERSION,
        "features_version": FEATURES_VERSION,  # geoengage.geometry.registry: which computation made the values
        "config": config_to_dict(config or ExtractConfig()),
        "versions": _versions(),
        "models": _model_hashes(config or ExtractConfig()),
        "n_rows": len(frames),
        "n_recordings": int(frames["video_id"].nunique()),
        "n_unreadable_frames": int((~frames["frame_readable"]).sum()),
        # face rows whose eye closure is measured against the population open-eye EAR (stills, short tracks)
        "n_rows_population_ear_baseline": int((frames["ear_baseline_population"] == 1).sum())
        if "ear_baseline_population" in frames else None,
        "face_yield": float(frames.groupby(["video_id", "frame_idx"])["face_found"].any().mean()) if len(frames) else None,
    }
    meta_path = path.with_name(path.stem + ".meta.json")
    meta_tmp = meta_path.with_name(meta_path.name + ".tmp")
    meta_tmp.write_text(json.dumps(meta, indent=2))
    os.replace(meta_tmp, meta_path)
    os.replace(tmp, path)
    return path


def read_frames(path: str | Path) -> pd.DataFrame:
    """Read a per-frame table written by :func:`write_frames`, checking its schema version."""
    path = Path(path)
    meta_path = path.with_name(path.stem + ".meta.json")
    schema = FRAMES_SCHEMA_VERSION
    if meta_path.is_file():
        schema = json.loads(meta_path.read_text()).get("schema")
        if schema not in _READABLE_SCHEMAS:
            raise SchemaError(f"{path}: written as {schema!r}; this geoengage reads {_READABLE_SCHEMAS}. "
                              "Re-run `geoengage extract` with this version.")
    frames = pd.read_parquet(path)
    validate(frames, FRAMES, where=f"read_frames({path})")
    if schema != FRAMES_SCHEMA_VERSION:  # written before calibrations were recorded: no distances in mm
        distances = [name for name in distance_features() if name in frames.columns]
        frames = frames.assign(camera_focal_px=np.nan, **dict.fromkeys(distances, np.nan))
    return frames


