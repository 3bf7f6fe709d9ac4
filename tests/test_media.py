"""media.py: every format in, 8-bit upright BGR out; clear errors naming the file."""

from __future__ import annotations

import functools
import http.server
import itertools
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from geoengage.datasets import sample_video
from geoengage.exceptions import MediaReadError
from geoengage.media import _apply_orientation, iter_frames, list_media, read_image, read_manifest
from geoengage.testing import png_bomb


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tiff", ".webp"])
def test_read_image_formats(tmp_path: Path, astronaut: np.ndarray, ext: str) -> None:
    path = tmp_path / f"a{ext}"
    assert cv2.imwrite(str(path), astronaut)
    image = read_image(path)
    assert image.shape == astronaut.shape and image.dtype == np.uint8
    tolerance = 0 if ext in (".png", ".bmp", ".tiff") else 12  # lossy codecs
    assert np.abs(image.astype(int) - astronaut).mean() <= tolerance


def test_read_grayscale_rgba_and_16bit(tmp_path: Path, astronaut: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out = read_image(tmp_path / "g.png")
    assert out.shape == (512, 512, 3) and np.array_equal(out[:, :, 0], gray) and np.array_equal(out[:, :, 2], gray)

    rgba = cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA)
    rgba[:100, :, 3] = 0  # transparent top band -> white
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    out = read_image(tmp_path / "a.png")
    assert out.shape == (512, 512, 3)
    assert (out[:100] == 255).all() and np.array_equal(out[100:], astronaut[100:])

    deep = astronaut.astype(np.uint16) * 257  # 16-bit with the same picture
    for ext in (".png", ".tiff"):
        cv2.imwrite(str(tmp_path / f"d{ext}"), deep)
        assert np.array_equal(read_image(tmp_path / f"d{ext}"), astronaut)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    pixels = rng.integers(0, 255, (6, 10, 3), dtype=np.uint8)
    assert np.array_equal(
        _apply_orientation(pixels, orientation),
        np.asarray(ImageOps.exif_transpose(_with_orientation(pixels, orientation, tmp_path))),
    )


def _with_orientation(pixels: np.ndarray, orientation: int, folder: Path) -> Image.Image:
    path = folder / "o.png"
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif)
    return Image.open(path)


def test_exif_rotated_jpeg_is_read_upright(tmp_path: Path, astronaut: np.ndarray) -> None:
    # A camera held sideways: pixels stored turned, EXIF orientation 6 says how to turn them upright.
    stored = np.ascontiguousarray(np.rot90(astronaut[:, :, ::-1]))  # RGB, rotated counter-clockwise
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "r.jpg", exif=exif, quality=95)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "r.jpg")))[:, :, ::-1]
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == expected.shape == (512, 512, 3)
    assert np.abs(out.astype(int) - expected).mean() < 1.0
    assert np.abs(out.astype(int) - astronaut).mean() < 2.0  # upright again: the original photo


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.jpg", None, "no such file"),
        ("empty.jpg", b"", "empty"),
        ("notes.txt", b"hello", "unsupported file extension '.txt'"),
        ("garbage.jpg", b"\x00\x01 not really a jpeg" * 50, "cannot be decoded"),
        ("garbage.mp4", b"\x00\x01 not really a video" * 50, "cannot be opened as a video"),
    ],
)
def test_bad_input_names_file_and_problem(tmp_path: Path, name: str, content: bytes | None, problem: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MediaReadError, match=problem) as info:
        list(iter_frames(path))
    assert name in str(info.value)


def test_truncated_image_and_video(tmp_path: Path, astronaut: np.ndarray) -> None:
    cv2.imwrite(str(tmp_path / "full.png"), astronaut)
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaReadError, match="cut.png"):
        read_image(tmp_path / "cut.png")

    clip = sample_video(tmp_path / "clip.avi", n_frames=60)
    data = clip.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaReadError, match=r"cut.avi.*(truncated|corrupt)"):
        list(iter_frames(tmp_path / "cut.avi"))


def test_video_streams_with_times_and_sampling(tmp_path: Path) -> None:
    clip = sample_video(tmp_path / "clip.avi", n_frames=45, fps=30.0)
    frames = list(iter_frames(clip))
    assert [f.frame_idx for f in frames] == list(range(45))
    assert frames[30].time_s == pytest.approx(1.0)
    assert frames[0].image.shape == (480, 640, 3)

    sampled = list(iter_frames(clip, sample_fps=10.0))
    assert [f.frame_idx for f in sampled] == list(range(0, 45, 3))
    assert [round(f.time_s, 6) for f in sampled] == [round(i / 30.0, 6) for i in range(0, 45, 3)]
    assert len(list(iter_frames(clip, max_frames=5))) == 5


def test_iter_frames_is_lazy(tmp_path: Path) -> None:
    clip = sample_video(tmp_path / "clip.avi", n_frames=30)
    stream = iter_frames(clip)
    first = next(stream)
    assert first.frame_idx == 0
    stream.close()  # releases the capture without decoding the rest


def test_image_sequence_folder_is_a_video(tmp_path: Path, astronaut: np.ndarray) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in (1, 2, 10):  # natural order, not 1, 10, 2
        shade = astronaut.copy()
        shade[:8, :8] = i
        cv2.imwrite(str(folder / f"frame_{i}.png"), shade)
    frames = list(iter_frames(folder, sequence_fps=10.0))
    assert [f.frame_idx for f in frames] == [0, 1, 2]
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert frames[2].time_s == pytest.approx(0.2)


def test_unreadable_frame_in_a_sequence_stays_in_the_stream(tmp_path: Path, astronaut: np.ndarray) -> None:
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), astronaut)
    (tmp_path / "f2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    frames = list(iter_frames(tmp_path))
    assert [f.frame_idx for f in frames] == [0, 1, 2, 3]
    assert [f.readable for f in frames] == [True, True, False, True] and frames[2].image is None


def test_list_media_and_manifest(tmp_path: Path, astronaut: np.ndarray) -> None:
    (tmp_path / "s1").mkdir()
    cv2.imwrite(str(tmp_path / "s1" / "a.jpg"), astronaut)
    cv2.imwrite(str(tmp_path / "b.png"), astronaut)
    (tmp_path / "readme.txt").write_text("not media")
    items = list_media(tmp_path)
    assert [i.video_id for i in items] == ["b.png", "s1/a.jpg"]

    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,subject_id\ns1/a.jpg,2,s01\nb.png,0,s02\n")
    rows = read_manifest(manifest)
    assert [r.extra for r in rows] == [{"label": "2", "subject_id": "s01"}, {"label": "0", "subject_id": "s02"}]
    assert Path(rows[0].path) == tmp_path / "s1" / "a.jpg"
    assert list_media(manifest) == rows

    (tmp_path / "bad.csv").write_text("file,label\na.jpg,1\n")
    with pytest.raises(MediaReadError, match="bad.csv: a manifest needs a 'path' column"):
        read_manifest(tmp_path / "bad.csv")


def test_live_stream_over_http(tmp_path: Path) -> None:
    """A stream address yields the same frames as the file, with wall-clock times."""
    clip = sample_video(tmp_path / "clip.avi", n_frames=20)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
        frames = list(iter_frames(url, max_frames=10))
    finally:
        server.shutdown()
    assert [f.frame_idx for f in frames] == list(range(10))
    assert all(b.time_s >= a.time_s for a, b in itertools.pairwise(frames))
    reference = [f.image for f in iter_frames(clip, max_frames=10)]
    assert all(np.array_equal(a.image, b) for a, b in zip(frames, reference))


def test_missing_camera_is_a_clear_error() -> None:
    with pytest.raises(MediaReadError, match="cannot open the camera or stream"):
        list(iter_frames(97, max_frames=1))


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    import resource

    from geoengage.exceptions import MediaTooLargeError

    bomb = png_bomb(tmp_path / "bomb.png", 20000, 20000)  # 400 megapixels in a small file
    assert bomb.stat().st_size < 2_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(MediaTooLargeError, match=r"bomb.png: declares .*\(400 megapixels\); the limit is 50 megapixels"):
        read_image(bomb)
    with pytest.raises(MediaTooLargeError):
        list(iter_frames(bomb))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KB: nothing decoded
    # a budget is a parameter: a small image over a small budget is refused the same way
    small = png_bomb(tmp_path / "small.png", 300, 200)
    assert read_image(small).shape == (200, 300, 3)
    with pytest.raises(MediaTooLargeError, match="300 x 200"):
        read_image(small, max_pixels=50_000)


def test_lying_and_fuzzed_headers_give_media_read_errors(tmp_path: Path, astronaut) -> None:
    jpeg = bytearray(cv2.imencode(".jpg", astronaut)[1].tobytes())
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = (65500).to_bytes(2, "big") * 2  # height, width: 65500 x 65500
    (tmp_path / "huge.jpg").write_bytes(bytes(jpeg))
    with pytest.raises(MediaReadError, match=r"huge.jpg: declares 4290250000 pixels \(4290 megapixels\)"):
        read_image(tmp_path / "huge.jpg")
    bmp = bytearray(cv2.imencode(".bmp", astronaut[:64, :64])[1].tobytes())
    rng = np.random.default_rng(0)
    outcomes = set()
    for k in range(40):  # random bytes in the 54-byte BMP header: an image or a MediaReadError, nothing else
        fuzzed = bytearray(bmp)
        for at in rng.integers(2, 54, size=3):
            fuzzed[at] = int(rng.integers(0, 256))
        path = tmp_path / f"fuzz{k}.bmp"
        path.write_bytes(bytes(fuzzed))
        try:
            image = read_image(path)
            outcomes.add("image")
            assert image.dtype == np.uint8 and image.ndim == 3
        except MediaReadError as err:
            outcomes.add("error")
            assert str(path) in str(err)
    assert "error" in outcomes
