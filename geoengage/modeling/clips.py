"""Face crops -> CNN embeddings -> GRU: a sequence model over fixed-length clips of a labelled video folder.

Each clip (a video file, or a list of frames in memory) is sampled at ``n_frames`` evenly spaced frames. Every frame
goes through the landmark stage (dlib detection, tracking, 68 landmarks, aligned face crop) and the per-frame
features; the **expression CNN's penultimate layer** (frozen; its 16-dimensional projection ``expr_emb_00..15``,
:mod:`geoengage.geometry.expression_cnn`) is concatenated with geometric signals (head pose, eye closure, gaze,
mouth) and ``face_found``. The result is a step table in the windows layout (``video_id``, ``window_idx`` = frame
position in the clip, ``<signal>__value`` columns), so the clip model *is* a
:class:`~geoengage.modeling.sequence.SequenceModel`: the same masking, scaling inside the fold, early stopping on
held-out subjects, saving (tensor-only state dict) and
:func:`~geoengage.modeling.recording_cv.cross_validate_recordings`.
A frame without a face has every face signal missing and ``face_found__value`` 0.

Training on a real labelled video folder (a manifest CSV with ``path``, ``label`` and ``subject_id``)::

    from geoengage.modeling.clips import clip_steps_from_manifest
    from geoengage.modeling.recording_cv import cross_validate_recordings
    from geoengage.modeling.sequence import SequenceModel
    steps, failures = clip_steps_from_manifest("clips.csv", n_frames=30)
    results = cross_validate_recordings(steps, target="label", task="classification")   # vs aggregate baselines
    model = SequenceModel("classification").fit(steps, "label"); model.save("models/clip_gru")

(``models/train_clip_gru.py`` does this from the command line.) On one core of this machine a 640x480 frame with one
face costs 9-11 ms (measured on the generated clip, 30 consecutive frames; frames sampled far apart are tracked less
and cost more, up to the ~25 ms of a full detection), so 300 clips of 30 frames take 1.5-4 minutes to extract; the
GRU trains in seconds to minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ExtractConfig
from ..exceptions import GeoEngageError, InvalidParameterError, MediaReadError
from ..extract import frames_from_rows, iter_face_rows
from ..geometry.expression_cnn import EMBEDDING_COLUMNS
from ..geometry.registry import compute_frame_features
from ..media import Frame, iter_frames, probe_video, read_manifest

__all__ = ["CLIP_SIGNALS", "clip_steps", "clip_steps_from_manifest", "sample_clip_frames"]

logger = logging.getLogger(__name__)

#: Per-frame geometric signals fed to the GRU beside the CNN embedding (``face_found`` is added as 0/1).
CLIP_SIGNALS = ("yaw_deg", "pitch_deg", "roll_deg", "eye_closure", "ear", "blink", "gaze_yaw_deg", "gaze_pitch_deg",
                "mouth_open_iod", "smile_width_iod", "brow_raise_iod")


def sample_clip_frames(source: str | Path, n_frames: int = 30) -> list[Frame]:
    """``n_frames`` evenly spaced frames of a video (all of them when it has fewer)."""
    if n_frames < 1:
        raise InvalidParameterError(f"`n_frames` must be >= 1. Got {n_frames!r} instead.")
    info = probe_video(source)
    total = info.n_frames if info.n_frames and info.n_frames > 0 else None
    wanted = None if total is None else set(np.linspace(0, total - 1, min(n_frames, total)).round().astype(int))
    frames = [f for f in iter_frames(source) if wanted is None or f.frame_idx in wanted]
    if not frames:
        raise MediaReadError(source, "has no frames")
    if len(frames) > n_frames:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, n_frames).round().astype(int)]
    return frames


def clip_steps(frames: Sequence[np.ndarray | Frame], *, video_id: str, config: ExtractConfig | None = None,
               signals: Sequence[str] = CLIP_SIGNALS) -> pd.DataFrame:
    """One clip's step table: one row per frame (``window_idx`` = its position), the CNN embedding and ``signals``
    as ``<name>__value`` columns, and ``face_found__value``."""

    config = config or ExtractConfig()
    stream = [f if isinstance(f, Frame) else Frame(k, k / 30.0, f) for k, f in enumerate(frames)]
    rows = [{"video_id": video_id, "source_path": video_id, **row} for row in iter_face_rows(stream, config=config)]
    table = compute_frame_features(frames_from_rows(rows), options=config.feature_options())
    # one row per frame: the largest face (the first row of a frame), or the faceless row
    table = table.drop_duplicates("frame_idx", keep="first").sort_values("frame_idx").reset_index(drop=True)
    found = table["face_found"].fillna(False).to_numpy(dtype=bool)
    columns = [c for c in (*EMBEDDING_COLUMNS, *signals) if c in table.columns]
    steps = pd.DataFrame({"video_id": video_id, "track_id": 0, "window_idx": np.arange(len(table)),
                          "window_ok": True})
    for column in columns:
        values = table[column].to_numpy(dtype=np.float64)
        steps[f"{column}__value"] = np.where(found, values, np.nan)
    steps["face_found__value"] = found.astype(np.float64)
    return steps


def clip_steps_from_manifest(manifest: str | Path, *, n_frames: int = 30, config: ExtractConfig | None = None,
                             signals: Sequence[str] = CLIP_SIGNALS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Step tables of every clip in a manifest CSV (``path`` and any of ``label``, ``subject_id``, ...), the manifest's
    columns carried on every row. Returns ``(steps, failures)``: a clip that cannot be read is recorded (file and
    problem) and the others go on."""
    items = read_manifest(manifest)
    parts, failures = [], []
    for item in items:
        try:
            frames = sample_clip_frames(item.path, n_frames)
            steps = clip_steps(frames, video_id=item.video_id, config=config, signals=signals)
        except (GeoEngageError, OSError, ValueError) as err:
            failures.append({"path": str(item.path), "error": type(err).__name__, "message": str(err)})
            logger.warning("skipped %s: %s", item.path, err)
            continue
        for key, value in item.extra.items():
            steps[key] = value
        parts.append(steps)
    if not parts:
        raise MediaReadError(manifest, f"no clip could be read ({len(failures)} failed)")
    return pd.concat(parts, ignore_index=True), pd.DataFrame(failures, columns=["path", "error", "message"])
