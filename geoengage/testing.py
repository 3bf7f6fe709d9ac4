"""Synthetic per-frame and window tables for tests: geoengage's own and a user's.

:func:`png_bomb` writes a decompression bomb (a small PNG that decodes to a huge image) for upload-limit tests.
:func:`synthetic_frames` builds a per-frame table (:data:`geoengage.schema.FRAMES`) from the signals you give it, for
cleaning and window code. :func:`synthetic_windows` builds a window table (:mod:`geoengage.windows` schema:
``subject_id``, ``video_id``, ``window_idx``, ``window_ok``, ``coverage`` and ``<signal>__<agg>`` feature columns)
whose label a model can learn,
with a feature that identifies the subject, so that leakage, pooling and selection code can be checked against
known answers without extracting a video.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import FRAMES

__all__ = ["png_bomb", "synthetic_frames", "synthetic_windows"]


def synthetic_windows(rng: np.random.Generator | int = 0, *, n_subjects: int = 12, per_subject: int = 30,
                      classes: int = 2, label: str = "label", prefix: str = "s", shift: float = 0.0,
                      noise: float = 0.6) -> pd.DataFrame:
    """Windows where ``signal__mean`` carries the label, ``noise__std`` nothing and ``person__mean`` the subject.

    Parameters
    ----------
    rng : numpy Generator or int
        Random source (an int seeds one).
    n_subjects, per_subject : int
        Subjects, and windows per subject (one recording each, ``<prefix><k>.mp4``).
    classes : int
        Labels are 0..classes-1, drawn uniformly per window.
    label : str
        Name of the label column.
    prefix : str
        Subject ids are ``<prefix>0``, ``<prefix>1``...: two tables with one prefix share ids, as two labs' might.
    shift : float
        Added to every feature: a data set recorded with another set-up.
    noise : float
        Standard deviation of ``signal__mean`` around the label.
    """
    rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
    rows = []
    for s in range(n_subjects):
        offset = rng.normal(0, 1)
        for w in range(per_subject):
            value = int(rng.integers(0, classes))
            rows.append({"subject_id": f"{prefix}{s}", "video_id": f"{prefix}{s}.mp4", "window_idx": w,
                         "start_s": 5.0 * w, "window_ok": True, "coverage": 1.0, label: value,
                         "signal__mean": value + rng.normal(0, noise) + shift,
                         "noise__std": rng.normal(0, 1) + shift, "person__mean": offset + rng.normal(0, 0.01) + shift})
    return pd.DataFrame(rows)


def synthetic_frames(values: dict[str, np.ndarray], *, fps: float = 30.0, video: str = "v",
                     subject: str = "s1") -> pd.DataFrame:
    """A per-frame table of one recording (640x480 at ``fps``, one face track) holding ``values`` (column -> one value
    per frame) and NaN in every other schema column. Frames where ``yaw_deg`` is NaN have no face (``face_found``
    False, ``track_id`` -1)."""
    n = len(next(iter(values.values())))
    table = pd.DataFrame({c.name: np.nan for c in FRAMES}, index=range(n))
    found = ~np.isnan(values.get("yaw_deg", np.zeros(n)))
    return table.assign(video_id=video, source_path=video, frame_idx=np.arange(n), time_s=np.arange(n) / fps,
                        frame_width_px=640, frame_height_px=480, frame_readable=True, face_found=found,
                        n_faces=found.astype(int), track_id=np.where(found, 0, -1), subject_id=subject, **values)


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A real PNG of width x height black 8-bit gray pixels: a few hundred KB on disk, width * height bytes decoded
    (a decompression bomb, to check that a reader or a service refuses it before decoding)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 + the row's pixels
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path

