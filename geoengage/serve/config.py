"""The service's settings (:class:`ServeConfig`) and the error a bad upload raises (:class:`UploadError`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import check_setting
from ..exceptions import GeoEngageError
from ..recipe import WindowChanges

__all__ = ["ServeConfig", "UploadError"]


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """Limits and processing settings of the service.

    Parameters
    ----------
    max_upload_mb : float
        Largest upload accepted (413 above it; checked from ``Content-Length`` and while reading).
    max_video_s : float
        Longest video accepted (413 above it): by the duration its container states, and by the frames actually
        decoded (a header that understates the length does not get past it).
    max_queue : int
        Requests allowed to wait for a free slot; one more gets 503 with ``Retry-After`` at once.
    max_request_s : float
        Time budget of one analysis: a video whose frames are still being analysed after it gets 413 (and frees the
        slot for the next request). With ``workers``, a worker still inside one long call (dlib's detector on a huge
        image, a decoder) 2 s + 10% after the budget is killed and the request gets 413 (:class:`AnalysisPool`).
    threads : int
        Threads OpenCV and torch use for one analysis (1: requests do not fight over the cores).
    max_image_megapixels : float
        Largest image accepted, by the size its header declares, before any pixel is decoded (413 above it; images
        are also bounded by :data:`geoengage.media.MAX_IMAGE_PIXELS` wherever they are read).
    video_fps : float
        Video frames analysed per second (the rest are skipped).
    windows : WindowChanges
        Windows scored in videos other than the engagement model's own (by default none: its training settings;
        in JSON, an object of ``window_s``, ``step_s``, ``min_coverage``).
    max_concurrent : int
        With ``workers=0``: requests analysed at the same time in the web process; the others wait their turn.
    workers : int
        Worker processes analysing uploads (one upload at a time each; ``max_concurrent`` is then ignored), started
        with the application and ended with it (also when the web process is killed). 0: analyse in the web
        process's threads.
    screen_width_mm, screen_height_mm, screen_centre_x_mm, screen_top_mm : float
        The screen behind ``on_screen`` (see :class:`~geoengage.config.ExtractConfig`).
    gaze_cnn : bool
        Run the gaze CNN on every face (``gaze_cnn_*``, ``on_screen_cnn``; about 1 ms per face).
    sequence_model : str, optional
        Folder of a saved sequence model (``geoengage train --model gru`` on geoengage windows): videos also get
        ``sequence``, its prediction from each face's windows so far (:func:`geoengage.predict.sequence_windows`).
    """

    max_upload_mb: float = 50.0
    max_video_s: float = 120.0
    video_fps: float = 10.0
    windows: WindowChanges = field(default_factory=WindowChanges)
    max_concurrent: int = 1
    screen_width_mm: float = 345.0
    screen_height_mm: float = 194.0
    screen_centre_x_mm: float = 0.0
    screen_top_mm: float = 0.0
    sequence_model: str | None = None
    max_image_megapixels: float = 50.0
    max_queue: int = 16
    max_request_s: float = 120.0
    threads: int = 1
    gaze_cnn: bool = True
    workers: int = 0

    def __post_init__(self) -> None:
        check_setting(0 <= self.max_queue <= 10_000, "max_queue", "between 0 and 10000", self.max_queue)
        check_setting(0 < self.max_request_s <= 3600, "max_request_s", "between 0 and 3600", self.max_request_s)
        check_setting(1 <= self.threads <= 256, "threads", "between 1 and 256", self.threads)
        check_setting(0 < self.max_image_megapixels <= 1000, "max_image_megapixels", "between 0 and 1000",
                      self.max_image_megapixels)
        check_setting(0 < self.max_upload_mb <= 4096, "max_upload_mb", "between 0 and 4096", self.max_upload_mb)
        check_setting(0 < self.max_video_s <= 3600, "max_video_s", "between 0 and 3600", self.max_video_s)
        check_setting(0 < self.video_fps <= 120, "video_fps", "between 0 and 120", self.video_fps)
        check_setting(1 <= self.max_concurrent <= 64, "max_concurrent", "between 1 and 64", self.max_concurrent)
        check_setting(0 <= self.workers <= 256, "workers", "between 0 and 256", self.workers)

    @property
    def running(self) -> int:
        """Analyses that run at the same time."""
        return self.workers or self.max_concurrent


class UploadError(GeoEngageError):
    """A bad upload: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail

    def __reduce__(self) -> tuple[type, tuple[int, str]]:  # crosses from worker processes intact
        return UploadError, (self.status, self.detail)
