"""Shared fixtures: media the tests make themselves from photos scikit-image ships."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from geoengage.datasets import sample_image, sample_video

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The astronaut photo, BGR uint8 (one face near x=222, y=128)."""
    return sample_image()


@pytest.fixture(scope="session")
def no_face_image() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def two_face_image(astronaut: np.ndarray) -> np.ndarray:
    """Two astronauts side by side, the right one at 80% size (so 'largest' is the left one)."""
    small = cv2.resize(astronaut, None, fx=0.8, fy=0.8)
    canvas = np.full((512, 512 + small.shape[1], 3), 128, np.uint8)
    canvas[:, :512] = astronaut
    canvas[: small.shape[0], 512:] = small
    return canvas


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory, astronaut, no_face_image, two_face_image) -> Path:
    """A folder with a one-face clip, a face-leaves-and-returns clip and 0/1/2-face images."""
    root = tmp_path_factory.mktemp("media")
    sample_video(root / "one_face.avi", n_frames=60)
    sample_video(root / "leaves.avi", n_frames=90, absent=(1.05, 2.05))
    cv2.imwrite(str(root / "one_face.jpg"), astronaut)
    cv2.imwrite(str(root / "no_face.png"), no_face_image)
    cv2.imwrite(str(root / "two_faces.png"), two_face_image)
    return root


@pytest.fixture(scope="session")
def astronaut_landmarks(astronaut: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks of the astronaut photo, (68, 2) pixels, in its detector box."""
    from geoengage.detect.landmarks import DlibLandmarker

    return DlibLandmarker()(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY), np.array([179.0, 83.0, 267.0, 171.0]))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


class RunningApp:
    """A geoengage service listening on 127.0.0.1 (uvicorn in a thread), for tests with a real HTTP client."""

    def __init__(self, config=None) -> None:
        import socket
        import threading
        import time

        import uvicorn

        from geoengage.serve import create_app

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def running_app(tmp_path_factory: pytest.TempPathFactory):
    """The service with small limits (8 MB uploads, 10 s videos) and short windows (2 s every 1 s, where the model
    learnt from 10 s windows) so that a few seconds of video give several windows; temp files in one folder."""
    import tempfile

    from geoengage.recipe import WindowChanges
    from geoengage.serve import ServeConfig

    temp = tmp_path_factory.mktemp("server_tmp")
    before, tempfile.tempdir = tempfile.tempdir, str(temp)
    app = RunningApp(ServeConfig(max_upload_mb=8.0, max_video_s=10.0, windows=WindowChanges(window_s=2.0, step_s=1.0)))
    app.temp = temp
    yield app
    app.close()
    tempfile.tempdir = before
