"""Draw faces, boxes and landmarks from per-frame rows onto images (for previews and live video)."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from .schema import LANDMARK_COLUMNS

__all__ = ["draw_face"]


def draw_face(image: np.ndarray, row: Mapping[str, object]) -> np.ndarray:
    """A copy of a BGR ``image`` with the face box, 68 landmarks and track label of one per-frame row."""
    out = image.copy()
    if not bool(row.get("face_found", False)):
        cv2.putText(out, "no face", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2, cv2.LINE_AA)
        return out
    left, top = float(row["face_left_px"]), float(row["face_top_px"])  # type: ignore[arg-type]
    right, bottom = left + float(row["face_width_px"]), top + float(row["face_height_px"])  # type: ignore[arg-type]
    cv2.rectangle(out, (int(left), int(top)), (int(right), int(bottom)), (0, 200, 0), 2)
    points = np.array([row[c] for c in LANDMARK_COLUMNS], dtype=np.float64).reshape(-1, 2)
    for x, y in points:
        cv2.circle(out, (int(round(x)), int(round(y))), 2, (0, 255, 255), -1, cv2.LINE_AA)
    label = f"track {row['track_id']}"
    person = row.get("person")
    if isinstance(person, str):
        label += f": {person}"
    cv2.putText(out, label, (int(left), max(15, int(top) - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 0), 1,
                cv2.LINE_AA)
    return out
