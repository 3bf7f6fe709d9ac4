"""annotate.py: the live drawing shows the gaze ray where the gaze points."""

from __future__ import annotations

import numpy as np
import pytest

from geoengage.annotate import draw_live
from geoengage.extract import extract_frames


@pytest.fixture(scope="module")
def astronaut_row(media_dir) -> dict:
    frames = extract_frames(media_dir / "one_face.jpg")
    return frames.iloc[0].to_dict()


@pytest.mark.parametrize(("yaw", "side"), [(30.0, -1), (-30.0, 1)])
def test_gaze_ray_points_where_the_gaze_goes(astronaut, astronaut_row, yaw, side) -> None:
    """+ yaw (towards the subject's right) is drawn towards the image left, and the ray is magenta."""
    row = {**astronaut_row, "gaze_cnn_yaw_deg": yaw, "gaze_cnn_pitch_deg": 0.0}
    drawn = draw_live(astronaut, row)
    magenta = (drawn[..., 0] == 255) & (drawn[..., 1] == 0) & (drawn[..., 2] == 255)
    assert magenta.sum() > 20
    between_eyes_x = np.mean([row[f"lm{k:02d}_x_px"] for k in range(36, 48)])
    xs = np.nonzero(magenta)[1]
    assert np.sign(np.median(xs) - between_eyes_x) == side


def test_no_gaze_no_ray(astronaut, astronaut_row) -> None:
    row = {**astronaut_row, "gaze_cnn_yaw_deg": np.nan, "gaze_yaw_deg": np.nan}
    drawn = draw_live(astronaut, row)
    assert not ((drawn[..., 0] == 255) & (drawn[..., 1] == 0) & (drawn[..., 2] == 255)).any()
