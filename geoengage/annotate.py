"""Draw faces, boxes and landmarks from per-frame rows onto images (for previews and live video).

:func:`draw_face` draws the box, 68 landmarks and track label; :func:`draw_pose` adds the head-pose axes, the gaze
ray and the expression (``geoengage.plot.face``); :func:`draw_live` adds an engagement gauge (the annotated video of
``geoengage live``).
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from .geometry.gaze import POSE_COLUMNS, eyeball_origins, vectors_from_yaw_pitch
from .geometry.pose import camera_matrix, estimate_pose, rotation_from_angles
from .geometry.registry import CAMERA_FOCAL
from .schema import LANDMARK_COLUMNS

__all__ = ["draw_face", "draw_live", "draw_pose"]

_AXES = ((np.array([1.0, 0.0, 0.0]), (0, 0, 255)),    # the face's right-to-left axis, red
         (np.array([0.0, -1.0, 0.0]), (0, 200, 0)),   # up, green
         (np.array([0.0, 0.0, -1.0]), (255, 80, 0)))  # where the face points, blue


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


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _draw_gaze(out: np.ndarray, row: Mapping[str, object], points: np.ndarray) -> None:
    """The gaze ray (the CNN's where present, else the geometric estimate), 200 mm long, drawn from between the
    eyes in magenta; nothing when the row has no gaze."""
    for yaw_key, pitch_key in (("gaze_cnn_yaw_deg", "gaze_cnn_pitch_deg"), ("gaze_yaw_deg", "gaze_pitch_deg")):
        gaze_yaw, gaze_pitch = _finite(row.get(yaw_key)), _finite(row.get(pitch_key))
        if gaze_yaw is not None and gaze_pitch is not None:
            break
    else:
        return
    width, height = _finite(row.get("frame_width_px")), _finite(row.get("frame_height_px"))
    if width is None or height is None:
        return
    focal = _finite(row.get(CAMERA_FOCAL))
    pose = [_finite(row.get(k)) for k in POSE_COLUMNS]
    if None in pose:  # an uncalibrated frame's table has no position in mm: the assumed camera's, again
        pose = estimate_pose(np.asarray(points, dtype=np.float64), width, height, focal)[:6].tolist()
        if not np.isfinite(pose).all():
            return
    origin = eyeball_origins(np.array([pose], dtype=np.float64))[0]
    tip = origin + 200.0 * vectors_from_yaw_pitch(np.radians([gaze_yaw, gaze_pitch]))
    camera = camera_matrix(width, height, focal)
    projected, _ = cv2.projectPoints(np.stack([origin, tip]), np.zeros(3), np.zeros(3), camera, None)
    start, end = projected[:, 0]
    between_eyes = (points[36:42].mean(axis=0) + points[42:48].mean(axis=0)) / 2
    cv2.arrowedLine(out, tuple(int(v) for v in between_eyes), tuple(int(v) for v in end - start + between_eyes),
                    (255, 0, 255), 2, cv2.LINE_AA, tipLength=0.15)


def draw_pose(image: np.ndarray, row: Mapping[str, object]) -> np.ndarray:
    """:func:`draw_face` plus the head-pose axes (red: across the face, green: up, blue: where it points), the gaze
    ray (magenta) and the expression class of one per-frame row with features (``yaw_deg``, ``pitch_deg``,
    ``roll_deg``, ``expr_class``, gaze)."""
    out = draw_face(image, row)
    yaw, pitch, roll = (_finite(row.get(k)) for k in ("yaw_deg", "pitch_deg", "roll_deg"))
    if bool(row.get("face_found", False)) and None not in (yaw, pitch, roll):
        points = np.array([row[c] for c in LANDMARK_COLUMNS], dtype=np.float64).reshape(-1, 2)
        nose = points[30]
        length = 1.5 * float(np.linalg.norm(points[42:48].mean(axis=0) - points[36:42].mean(axis=0)))
        rotation = rotation_from_angles(yaw, pitch, roll)  # type: ignore[arg-type]
        for axis, color in _AXES:
            tip = nose + length * (rotation @ axis)[:2]
            cv2.arrowedLine(out, tuple(int(v) for v in nose), tuple(int(v) for v in tip), color, 2, cv2.LINE_AA,
                            tipLength=0.2)
        _draw_gaze(out, row, points)
        label = row.get("expr_class")
        if isinstance(label, str):
            bottom = int(float(row["face_top_px"]) + float(row["face_height_px"])) + 18  # type: ignore[arg-type]
            cv2.putText(out, label, (int(float(row["face_left_px"])), bottom),  # type: ignore[arg-type]
                        cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def draw_live(image: np.ndarray, row: Mapping[str, object], *, engagement: float | None = None,
              dropped: int = 0) -> np.ndarray:
    """:func:`draw_pose` plus an engagement gauge and a drop count.

    ``engagement`` is the latest window's engagement probability (0-1), drawn as a bar on the left.
    """
    out = draw_pose(image, row)
    height = out.shape[0]
    top, bottom = 40, height - 40
    cv2.rectangle(out, (10, top), (26, bottom), (80, 80, 80), 1)
    if engagement is not None and np.isfinite(engagement):
        level = int(bottom - (bottom - top) * float(np.clip(engagement, 0, 1)))
        color = (0, int(80 + 175 * engagement), int(255 * (1 - engagement)))
        cv2.rectangle(out, (11, level), (25, bottom - 1), color, -1)
        cv2.putText(out, f"{engagement:.2f}", (4, top - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
    if dropped:
        cv2.putText(out, f"dropped {dropped}", (out.shape[1] - 130, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 255), 1, cv2.LINE_AA)
    return out
