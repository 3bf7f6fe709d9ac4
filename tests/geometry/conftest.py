from __future__ import annotations

import cv2
import numpy as np
import pytest

from geoengage.detect.landmarks import DlibLandmarker

ASTRONAUT_BOX = np.array([179.0, 83.0, 267.0, 171.0])


@pytest.fixture(scope="session")
def astronaut_landmarks(astronaut: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks of the astronaut photo, (68, 2) pixels."""
    return DlibLandmarker()(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY), ASTRONAUT_BOX)
