"""Media -> frames: images, folders, manifests, videos, image sequences and live streams.

Every source becomes the same stream of :class:`Frame` objects (``frame_idx``,
``time_s``, ``image``), produced lazily: a video is never decoded whole into memory.
Images come out as 8-bit BGR (OpenCV's order) whatever they were on disk
(grayscale, RGBA, 16-bit), turned upright by their EXIF orientation.

Bad input raises :class:`~geoengage.exceptions.MediaReadError` naming the file and
the problem, never an OpenCV traceback.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .exceptions import InvalidParameterError, MediaReadError, MediaTooLargeError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "VIDEO_EXTENSIONS",
    "Frame",
    "ImageHeader",
    "MediaItem",
    "VideoInfo",
    "check_image_size",
    "exif_orientation",
    "image_header",
    "iter_frames",
    "list_media",
    "media_kind",
    "opencv_errors_only",
    "probe_video",
    "read_image",
    "read_manifest",
    "sniff_media",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
_VIDEO_RETRIES = 3
STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes
    ----------
    frame_idx : int
        Index in the decoded stream (0-based, counted before sampling).
    time_s : float
        Presentation time in seconds (``frame_idx / fps`` for files; wall-clock time since
        the first frame for live sources).
    image : ndarray of shape (height, width, 3), uint8, BGR; or None
        None for a frame that could not be decoded (a corrupt file in an image sequence, a
        broken frame inside a video that decodes again after it): it stays in the stream,
        explicitly, so it is counted instead of silently dropped.
    """

    frame_idx: int
    time_s: float
    image: np.ndarray | None = field(repr=False)

    @property
    def readable(self) -> bool:
        return self.image is not None


@dataclass(frozen=True)
class MediaItem:
    """One input of a batch: a media path, its recording id and manifest columns."""

    path: str
    video_id: str
    extra: dict[str, object] = field(default_factory=dict)


def media_kind(source: str | int | Path) -> str:
    """Classify a source as ``"image"``, ``"video"``, ``"sequence"`` (a folder of images) or ``"stream"``.

    Raises
    ------
    MediaReadError
        The path does not exist, is empty, or has an extension geoengage does not read.
    """
    if isinstance(source, int) or (isinstance(source, str) and (source.isdigit() or source.startswith(STREAM_PREFIXES))):
        return "stream"
    path = Path(source)
    if not path.exists():
        raise MediaReadError(path, "no such file or folder")
    if path.is_dir():
        return "sequence"
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        kind = "image"
    elif suffix in VIDEO_EXTENSIONS:
        kind = "video"
    else:
        supported = ", ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
        raise MediaReadError(path, f"unsupported file extension {suffix!r}; geoengage reads {supported}")
    if path.stat().st_size == 0:
        raise MediaReadError(path, "the file is empty (0 bytes)")
    return kind


#: Largest image decoded, in pixels (width x height): 50 megapixels, above the photos of a 45-MP camera. Checked from
#: the file's header before any pixel is decoded (a 30000 x 30000 PNG of 2.6 MB is refused without using memory);
#: raise it (``geoengage.media.MAX_IMAGE_PIXELS = ...``) or pass ``max_pixels`` to :func:`read_image` for larger
#: images.
MAX_IMAGE_PIXELS = 50_000_000


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header states, read without decoding its pixels: size (None when the header cannot be
    parsed), EXIF orientation (1 when absent), and the pixel count when only that is known (a header over Pillow's
    decompression-bomb limit)."""

    width: int | None
    height: int | None
    orientation: int = 1
    declared_pixels: int | None = None

    @property
    def pixels(self) -> int | None:
        if self.declared_pixels is not None:
            return self.declared_pixels
        return None if self.width is None or self.height is None else self.width * self.height


def image_header(path: str | Path) -> ImageHeader:
    """The size and EXIF orientation an image file declares (Pillow reads the header only; no pixels are decoded).

    A header declaring more pixels than Pillow's decompression-bomb limit gives that size too, never Pillow's error.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                try:
                    orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1))
                except (OSError, ValueError, SyntaxError):
                    orientation = 1
                return ImageHeader(int(width), int(height), orientation)
    except Image.DecompressionBombError as err:
        sizes = [int(v) for v in re.findall(r"\d+", str(err))[:1]]  # "Image size (N pixels) exceeds limit ..."
        return ImageHeader(None, None, declared_pixels=sizes[0] if sizes else 1 << 31)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return ImageHeader(None, None)


def exif_orientation(path: Path) -> int:
    """EXIF orientation tag (1..8) of an image file, 1 when absent or unreadable (5-8: turned by 90 degrees)."""
    return image_header(path).orientation


def check_image_size(path: str | Path, header: ImageHeader, max_pixels: int | None = None) -> None:
    """Raise :class:`MediaTooLargeError` when ``header`` declares more than ``max_pixels`` (default
    :data:`MAX_IMAGE_PIXELS`)."""
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if header.pixels is not None and header.pixels > limit:
        size = f"{header.pixels}" if header.width is None else f"{header.width} x {header.height}"
        raise MediaTooLargeError(path, f"declares {size} pixels ({header.pixels / 1e6:.0f} megapixels); the limit is "
                                       f"{limit / 1e6:g} megapixels (geoengage.media.MAX_IMAGE_PIXELS)")


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an image stored with EXIF ``orientation`` upright."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1, :],
    }
    op = ops.get(orientation)
    return image if op is None else np.ascontiguousarray(op(image))


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, BGR, BGRA; 8/16-bit or float) as 8-bit BGR.

    16-bit images are scaled by 1/257, floats are taken to lie in [0, 1], and
    transparent pixels of a BGRA image are composited onto white.
    """
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif image.dtype.kind == "f":
        image = (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InvalidParameterError(f"`image` must be uint8, uint16 or float. Got dtype {image.dtype} instead.")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        blended = image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return blended.round().astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise InvalidParameterError(f"`image` must have 1, 3 or 4 channels. Got shape {image.shape} instead.")


def read_image(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as upright 8-bit BGR.

    Parameters
    ----------
    path : str or Path
        A jpg, png, bmp, tiff or webp file: grayscale, RGB, RGBA, 8 or 16 bit.
    max_pixels : int, optional
        Refuse images whose header declares more pixels (default :data:`MAX_IMAGE_PIXELS`), before decoding.

    Returns
    -------
    ndarray of shape (height, width, 3), uint8, BGR

    Raises
    ------
    MediaReadError
        Missing, empty, unsupported or undecodable file; the message names it.
    MediaTooLargeError
        The header declares more than ``max_pixels`` pixels (nothing is decoded).
    """
    path = Path(path)
    kind = media_kind(path)
    if kind != "image":
        raise MediaReadError(path, f"expected an image file, but this is a {kind}")
    header = image_header(path)
    check_image_size(path, header, max_pixels)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise MediaReadError(path, f"cannot be read ({err.strerror or err})") from err
    try:
        decoded = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:  # a header OpenCV refuses (a huge declared size, a fuzzed BMP)
        problem = str(err).strip().splitlines()[-1] if str(err).strip() else "OpenCV error"
        raise MediaReadError(path, f"cannot be decoded as an image ({problem})") from err
    if decoded is None or decoded.size == 0:
        raise MediaReadError(path, "cannot be decoded as an image (corrupt, truncated, or not the format its extension says)")
    check_image_size(path, ImageHeader(decoded.shape[1], decoded.shape[0]), max_pixels)  # a header that lied
    return to_bgr8(_apply_orientation(decoded, header.orientation))


def _natural_key(name: str) -> list[object]:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _sequence_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise MediaReadError(folder, "the folder holds no images to read as an image sequence")
    return sorted(files, key=lambda p: _natural_key(p.name))


@contextlib.contextmanager
def opencv_errors_only() -> Iterator[None]:
    """OpenCV's own log at errors only inside the block: its warnings about a file or model geoengage opens (a backend
    that cannot read a file, a DNN target) say again, in OpenCV's words, what geoengage reports itself.

    FFmpeg's own lines (``moov atom not found``) are set by ``OPENCV_FFMPEG_LOGLEVEL`` when the first video is
    opened; the ``geoengage`` command sets it to quiet unless ``-v`` is given."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _open_video(source: str | int, backend: int = cv2.CAP_ANY) -> cv2.VideoCapture:
    with opencv_errors_only():
        return cv2.VideoCapture(source, backend)


def _keep(time_s: float, sample_fps: float | None, last_slot: list[int]) -> bool:
    """True for the first frame in each ``1 / sample_fps`` slot."""
    if sample_fps is None:
        return True
    slot = int(np.floor(time_s * sample_fps + 1e-6))
    if slot > last_slot[0]:
        last_slot[0] = slot
        return True
    return False


def _iter_video(path: Path, *, sample_fps: float | None, default_fps: float, max_frames: int | None) -> Iterator[Frame]:
    cap = _open_video(str(path), cv2.CAP_FFMPEG)  # not the image-sequence backend: it misreads bad files
    try:
        if not cap.isOpened():
            raise MediaReadError(path, "cannot be opened as a video (corrupt container, truncated file or unsupported codec)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps or not np.isfinite(fps) or fps <= 0:
            logger.warning("%s: the video states no frame rate; assuming %.2f fps", path, default_fps)
            fps = default_fps
        expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        last_slot, idx, kept = [-1], 0, 0
        while max_frames is None or kept < max_frames:
            time_s = idx / fps
            if _keep(time_s, sample_fps, last_slot):
                ok, image = cap.read()
                broken = 0
                while (not ok or image is None) and broken < _VIDEO_RETRIES and (expected == 0 or idx < expected - 1):
                    broken += 1  # a frame that does not decode: try the next ones before calling it the end
                    ok, image = cap.read()
                if not ok or image is None:
                    break
                for lost in range(broken):
                    logger.warning("%s: frame %d (t = %.2f s) cannot be decoded", path, idx + lost, (idx + lost) / fps)
                    yield Frame(idx + lost, (idx + lost) / fps, None)
                idx += broken
                kept += 1
                yield Frame(idx, idx / fps, to_bgr8(image))
            elif not cap.grab():
                break
            idx += 1
        at_limit = max_frames is not None and kept >= max_frames  # stopped by the caller's limit, not the file
        if not at_limit and idx == 0:
            raise MediaReadError(path, "no frame could be decoded (corrupt or truncated video)")
        if not at_limit and expected > 0 and idx < 0.9 * expected - 1:
            raise MediaReadError(
                path, f"decoding stopped at frame {idx} of the {expected} the file announces "
                f"(t = {idx / fps:.2f} s): the video is truncated or corrupt")
    finally:
        cap.release()


def _iter_stream(source: str | int, *, sample_fps: float | None, max_frames: int | None) -> Iterator[Frame]:
    index = int(source) if isinstance(source, int) or str(source).isdigit() else None
    cap = _open_video(index if index is not None else str(source))
    try:
        if not cap.isOpened():
            raise MediaReadError(source, "cannot open the camera or stream (wrong index or address, or it is busy)")
        start = None
        last_slot, idx, kept = [-1], 0, 0
        while max_frames is None or kept < max_frames:
            ok, image = cap.read()
            if not ok or image is None:
                break
            now = time.monotonic()
            start = now if start is None else start
            if _keep(now - start, sample_fps, last_slot):
                kept += 1
                yield Frame(idx, now - start, to_bgr8(image))
            idx += 1
    finally:
        cap.release()


#: Leading bytes of each container geoengage reads, and the extension a sniffed file is saved under.
_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\xff\xd8\xff", "image", ".jpg"),
    (0, b"\x89PNG\r\n\x1a\n", "image", ".png"),
    (0, b"BM", "image", ".bmp"),
    (0, b"II*\x00", "image", ".tif"),
    (0, b"MM\x00*", "image", ".tif"),
    (8, b"WEBP", "image", ".webp"),
    (8, b"AVI ", "video", ".avi"),
    (4, b"ftyp", "video", ".mp4"),
    (0, b"\x1a\x45\xdf\xa3", "video", ".mkv"),
)


def sniff_media(head: bytes) -> tuple[str, str] | None:
    """``(kind, extension)`` of a file from its first bytes (at least 12), or ``None`` when unknown.

    Decides by content, not by name: JPEG, PNG, BMP, TIFF, WebP images; AVI, MP4/MOV (ISO base
    media), Matroska/WebM videos. A RIFF file must also carry its form type (``"WEBP"``/``"AVI "``).
    """
    for offset, magic, kind, extension in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic and (offset != 8 or head[:4] == b"RIFF"):
            return kind, extension
    return None


@dataclass(frozen=True)
class VideoInfo:
    """What a video's container states: frame rate, frame count, duration (s) and frame size (px)."""

    fps: float
    n_frames: int
    duration_s: float
    width: int
    height: int


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video and read its stated frame rate, length and size, without decoding it.

    Raises
    ------
    MediaReadError
        The file cannot be opened as a video, or states no frames.
    """
    path = Path(path)
    cap = _open_video(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise MediaReadError(path, "cannot be opened as a video (corrupt container, truncated file or unsupported codec)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    finally:
        cap.release()
    if n <= 0 or width <= 0 or height <= 0:
        raise MediaReadError(path, "the video states no frames or no frame size (corrupt or truncated)")
    fps = fps if np.isfinite(fps) and fps > 0 else 30.0
    return VideoInfo(fps, n, n / fps, width, height)


def iter_frames(
    source: str | int | Path,
    *,
    sample_fps: float | None = None,
    sequence_fps: float = 30.0,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """Stream the frames of an image, video, image-sequence folder, camera or stream.

    Parameters
    ----------
    source : str, int or Path
        An image or video file, a folder of images (read as a sequence in natural
        name order), a camera index (``0``) or a stream address (``rtsp://...``).
    sample_fps : float or None
        Keep the first frame of every ``1 / sample_fps`` seconds; ``None`` keeps all.
        Skipped video frames are grabbed but not converted.
    sequence_fps : float
        Frame rate of an image sequence, and of a video that states none.
    max_frames : int or None
        Stop after this many kept frames (useful for live sources).

    Yields
    ------
    Frame
        ``frame_idx`` counts decoded frames before sampling; a still image is one frame at 0 s.

    Raises
    ------
    MediaReadError
        The source is missing, empty, unsupported, undecodable or truncated.
    """
    if sample_fps is not None and sample_fps <= 0:
        raise InvalidParameterError(f"`sample_fps` must be None or > 0. Got {sample_fps!r} instead.")
    kind = media_kind(source)
    if kind == "image":
        yield Frame(0, 0.0, read_image(Path(source)))
    elif kind == "video":
        yield from _iter_video(Path(source), sample_fps=sample_fps, default_fps=sequence_fps, max_frames=max_frames)
    elif kind == "sequence":
        last_slot, kept = [-1], 0
        for idx, file in enumerate(_sequence_files(Path(source))):
            if max_frames is not None and kept >= max_frames:
                break
            time_s = idx / sequence_fps
            if _keep(time_s, sample_fps, last_slot):
                kept += 1
                try:
                    image = read_image(file)
                except MediaReadError as err:
                    logger.warning("%s (frame %d of the sequence %s)", err, idx, source)
                    image = None
                yield Frame(idx, time_s, image)
    else:
        yield from _iter_stream(source if isinstance(source, int) else str(source),
                                sample_fps=sample_fps, max_frames=max_frames)


def list_media(root: str | Path) -> list[MediaItem]:
    """Every image and video below ``root`` (recursive, natural order) as batch items.

    A single file gives one item. ``video_id`` is the path relative to ``root``
    (with ``/`` separators), so it stays stable when the folder moves.
    Files with other extensions are skipped with a log line.
    """
    root = Path(root)
    if not root.exists():
        raise MediaReadError(root, "no such file or folder")
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return read_manifest(root)
        return [MediaItem(str(root), root.name)]
    items = []
    for path in sorted(root.rglob("*"), key=lambda p: _natural_key(str(p.relative_to(root)))):
        if not path.is_file():
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
            items.append(MediaItem(str(path), path.relative_to(root).as_posix()))
        else:
            logger.info("skipping %s: not an image or video extension", path)
    return items


def read_manifest(path: str | Path) -> list[MediaItem]:
    """Batch items from a CSV manifest with a ``path`` column and optional extra columns.

    Relative paths are taken from the manifest's folder. Every other column
    (``label``, ``subject_id``, ...) is carried into each output row of that item.
    ``video_id`` is the ``video_id`` column when present, else the ``path`` text.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(path, "no such manifest file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise MediaReadError(path, f"a manifest needs a 'path' column; it has {reader.fieldnames}")
        items = []
        for line, row in enumerate(reader, start=2):
            if not row.get("path"):
                raise MediaReadError(path, f"line {line}: empty 'path'")
            media = Path(row["path"])
            media = media if media.is_absolute() else path.parent / media
            extra = {k: v for k, v in row.items() if k not in ("path", "video_id") and k is not None}
            items.append(MediaItem(str(media), row.get("video_id") or row["path"], extra))
    return items
