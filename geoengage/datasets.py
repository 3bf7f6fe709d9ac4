"""Small bundled inputs made from a real photo that scikit-image ships (NASA's astronaut portrait).

Nothing is downloaded: :func:`sample_image` and :func:`sample_video` build their
output from ``skimage.data.astronaut()`` (public domain), so the demo, the docs
examples and the tests run offline. :func:`mjpeg_stream` serves frames as an IP camera
would, for trying live mode (``geoengage live http://...``) without one.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = ["mjpeg_stream", "sample_frames", "sample_image", "sample_video"]


def sample_image() -> np.ndarray:
    """The astronaut portrait (one face, about 90 px wide) as a (512, 512, 3) uint8 BGR array."""
    from skimage import data

    return np.ascontiguousarray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


def _pose(t: float) -> tuple[float, float, float, float]:
    """Slow head-like motion of the camera at time ``t``: shift x/y (px), zoom, rotation (deg)."""
    return (40 * np.sin(2 * np.pi * t / 4.0), 20 * np.sin(2 * np.pi * t / 3.0),
            1.6 + 0.15 * np.sin(2 * np.pi * t / 5.0), 8 * np.sin(2 * np.pi * t / 6.0))


def sample_frames(n_frames: int = 90, *, fps: float = 30.0, size: tuple[int, int] = (640, 480),
                  absent: tuple[float, float] | None = None) -> list[np.ndarray]:
    """Frames of a clip that moves, zooms and turns over the astronaut's face.

    Parameters
    ----------
    n_frames : int
    fps : float
    size : (width, height)
    absent : (start_s, end_s), optional
        During this interval the camera shows scikit-image's coffee-cup photo instead, so the
        face leaves and returns (for tracking tests).
    """
    from skimage import data

    photo = sample_image()
    empty = np.ascontiguousarray(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    width, height = size
    face_centre = np.array([222.0, 128.0])  # centre of the face in the photo
    frames = []
    for i in range(n_frames):
        t = i / fps
        dx, dy, zoom, angle = _pose(t)
        source, centre = photo, face_centre
        if absent is not None and absent[0] <= t < absent[1]:
            source, centre, zoom = empty, np.array([300.0, 200.0]), 1.3
        matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, zoom)
        matrix[:, 2] += np.array([width / 2 + dx, height / 2 + dy]) - centre
        frames.append(cv2.warpAffine(source, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT))
    return frames


def sample_video(path: str | Path, *, n_frames: int = 90, fps: float = 30.0, size: tuple[int, int] = (640, 480),
                 absent: tuple[float, float] | None = None) -> Path:
    """Write :func:`sample_frames` as an MJPEG ``.avi`` (readable by every OpenCV build) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter.fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write this video format here")
    try:
        for frame in sample_frames(n_frames, fps=fps, size=size, absent=absent):
            writer.write(frame)
    finally:
        writer.release()
    return path


@contextlib.contextmanager
def mjpeg_stream(frames: Sequence[np.ndarray], *, fps: float = 30.0, quality: int = 90) -> Iterator[str]:
    """Serve BGR ``frames`` on 127.0.0.1 as an IP camera's MJPEG stream; yields its ``http://`` address.

    Each client gets every frame once, as one JPEG part of a ``multipart/x-mixed-replace`` answer, at ``fps``
    frames per second from the moment it connects (a slow reader gets them late, as from a camera whose socket
    buffers fill), and then the end of the stream. The server stops when the ``with`` block ends.

    >>> with mjpeg_stream(sample_frames(60)) as url:       # doctest: +SKIP
    ...     run_live(url, print)
    """
    jpegs = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes() for frame in frames]

    class Camera(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            start = time.perf_counter()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the reader stopped
                for index, jpeg in enumerate(jpegs):
                    time.sleep(max(0.0, start + index / fps - time.perf_counter()))
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                     % (len(jpeg), jpeg))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    finally:
        server.shutdown()
        server.server_close()
