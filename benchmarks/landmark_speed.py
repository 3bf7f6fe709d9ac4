"""Frames per second of the landmark stage on a 640x480 one-face video, beside decoding alone.

Runs pinned to one core (``os.sched_setaffinity``, ``cv2.setNumThreads(1)`` and ``torch.set_num_threads(1)``).
The clip is made from scikit-image's astronaut photo (``geoengage.datasets.sample_video``); the real
640x360 clip in ../shared/data/face_samples is measured too when present.

For each clip it prints the median over ``--repeats`` runs of:
- decode: reading the file into frames (``iter_frames``), no face work;
- landmarks with tracking / without tracking: the landmark stage on frames already decoded
  in memory (detection, landmarks, tracks), so decode time is not counted twice; with the default detector (YuNet)
  and, for comparison in the same run, with dlib's HOG detector at its former default (``detector="hog"``,
  ``min_face_px=80``), and without re-identification (``reidentify=False``: MediaPipe's set-up, which has no face
  identities; each face >= 64 px that appears while a track has ended otherwise costs a ~20 ms face encoding, dlib's
  network run in torch; dlib's own run took ~0.17 s).
  The default keeps and follows one face (``face_policy="largest"``), as MediaPipe does here with
  ``max_num_faces=1``; ``face_policy="all"`` (every face followed, up to 8) is measured too;
- tracking + CNNs: the same with the expression and gaze CNNs on every face (batches of 32),
  as ``geoengage extract`` runs by default;
- landmarks with tracking, full-frame detection free: the same, with the default detector's full-frame
  answers computed beforehand and looked up (region checks, landmarks, re-identification still
  run): the most any cheaper full-frame detector could give this stage;
- MediaPipe FaceMesh (when ``mediapipe`` is importable): its video mode (it tracks, and detects
  only when it loses the face) on the same decoded frames, BGR -> RGB conversion included, and
  geoengage's tracking rates as ratios of it;
and the ratio of each landmark rate to the decode rate measured in the same run; the work behind the default's and
``face_policy="all"``'s rates (68-point fits and re-identification encodings, counted in one more run of each, outside
the timing); then the per-frame feature stage (pose, blink, mouth/brow geometry, gaze direction: everything that
works on the table after extraction) on the tracked rows.

MediaPipe is never a geoengage dependency, and not an extra either: ``mediapipe==0.10.14`` requires
``opencv-contrib-python``, which would replace geoengage's ``opencv-python-headless`` in the same
environment. To compare, give it an environment of its own that also sees geoengage's, e.g.::

    python -m venv /tmp/mpv
    echo "import site; site.addsitedir('$PWD/.venv/lib/python3.11/site-packages')" \
        > /tmp/mpv/lib/python3.11/site-packages/geoengage.pth
    /tmp/mpv/bin/pip install --no-deps mediapipe==0.10.14
    /tmp/mpv/bin/pip install absl-py attrs flatbuffers "protobuf<5"
    /tmp/mpv/bin/python benchmarks/landmark_speed.py

    python benchmarks/landmark_speed.py [--frames 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import ClassVar
from unittest import mock

import cv2
import numpy as np
from timing import SHARED_CLIP, pin_one_core

from geoengage.config import ExtractConfig
from geoengage.datasets import sample_video
from geoengage.detect import tracking
from geoengage.detect.faces import Detection, YuNetFaceDetector, make_detector
from geoengage.detect.landmarks import DlibLandmarker
from geoengage.extract import frames_from_rows, iter_face_rows
from geoengage.geometry.registry import compute_frame_features
from geoengage.media import iter_frames


def _fps(n: int, seconds: float) -> float:
    return n / seconds


def _mediapipe_rate(frames: list) -> tuple[float, float] | None:
    """(frames per second, share of frames with a face) of MediaPipe FaceMesh in video mode; None without it."""
    try:
        import mediapipe as mp
    except ImportError:
        return None
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
        mesh.process(cv2.cvtColor(frames[0].image, cv2.COLOR_BGR2RGB))  # graph set up outside the timing
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
        start, found = time.perf_counter(), 0
        for frame in frames:
            found += mesh.process(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)).multi_face_landmarks is not None
        return _fps(len(frames), time.perf_counter() - start), found / len(frames)


def _fingerprint(gray: np.ndarray) -> bytes:
    return gray[::16, ::16].tobytes()


class _AnsweredDetector(YuNetFaceDetector):
    """The default detector whose full-frame answers were computed beforehand (:data:`answers`, by frame) and are
    only looked up; its region checks run as usual."""

    answers: ClassVar[dict[bytes, list[Detection]]] = {}

    def __call__(self, image: np.ndarray) -> list[Detection]:
        return self.answers[_fingerprint(image)]


def _answered(name: str, *, min_face_px: int, threshold: float | None = None) -> YuNetFaceDetector:
    return _AnsweredDetector(min_face_px=min_face_px) if threshold is None else _AnsweredDetector(
        min_face_px=min_face_px, threshold=threshold)


def work(frames: list, config: ExtractConfig) -> tuple[int, int]:
    """(68-point fits, re-identification encodings) of the landmark stage on ``frames``."""
    fit = DlibLandmarker.__call__
    with mock.patch.object(DlibLandmarker, "__call__", autospec=True, side_effect=fit) as fits, \
            mock.patch.object(tracking, "encode_face", side_effect=tracking.encode_face) as encodings:
        list(iter_face_rows(frames, config=config))
    return fits.call_count, encodings.call_count


def measure(clip: Path, repeats: int) -> dict[str, float]:
    frames = list(iter_frames(clip))
    default = ExtractConfig()
    detector = make_detector(default.detector, min_face_px=default.min_face_px, threshold=default.detect_threshold)
    _AnsweredDetector.answers = {_fingerprint(f.image): detector(f.image) for f in frames}
    list(iter_face_rows(frames[:2], config=ExtractConfig()))  # load the models once, outside the timing
    decode, tracked, detected, expressed, features, yields, mediapipe = [], [], [], [], [], {}, []
    free, hog, no_reid, every = [], [], [], []
    landmarks_only = {"expression": False, "gaze_cnn": False}
    for _ in range(repeats):
        start = time.perf_counter()
        n = sum(1 for _ in iter_frames(clip))
        decode.append(_fps(n, time.perf_counter() - start))
        for label, config, out in (("tracking", ExtractConfig(**landmarks_only), tracked),
                                   ("hog", ExtractConfig(detector="hog", min_face_px=80, **landmarks_only), hog),
                                   ("no_reid", ExtractConfig(reidentify=False, **landmarks_only), no_reid),
                                   ("all", ExtractConfig(face_policy="all", **landmarks_only), every),
                                   ("detection", ExtractConfig(tracking=False, **landmarks_only), detected),
                                   ("expression", ExtractConfig(), expressed)):
            start = time.perf_counter()
            rows = list(iter_face_rows(frames, config=config))
            out.append(_fps(len(frames), time.perf_counter() - start))
            yields[label] = sum(bool(r["face_found"]) for r in rows) / len(frames)
            if label == "tracking":
                table = frames_from_rows([{"video_id": "clip", "source_path": str(clip), **r} for r in rows])
                start = time.perf_counter()
                compute_frame_features(table)
                features.append(_fps(len(table), time.perf_counter() - start))
        with mock.patch("geoengage.extract.make_detector", _answered):
            start = time.perf_counter()
            rows = list(iter_face_rows(frames, config=ExtractConfig(**landmarks_only)))
            free.append(_fps(len(frames), time.perf_counter() - start))
            yields["free"] = sum(bool(r["face_found"]) for r in rows) / len(frames)
        rate = _mediapipe_rate(frames)
        if rate is not None:
            mediapipe.append(rate[0])
            yields["mediapipe"] = rate[1]
    result = {"frames": len(frames), "decode_fps": statistics.median(decode),
              "tracking_fps": statistics.median(tracked), "detection_fps": statistics.median(detected),
              "expression_fps": statistics.median(expressed),
              "features_fps": statistics.median(features), "free_detector_fps": statistics.median(free),
              "face_yield_free": yields["free"], "hog_fps": statistics.median(hog), "face_yield_hog": yields["hog"],
              "no_reid_fps": statistics.median(no_reid), "all_fps": statistics.median(every)}
    result["work"], result["work_all"] = (work(frames, ExtractConfig(**landmarks_only)),
                                          work(frames, ExtractConfig(face_policy="all", **landmarks_only)))
    result["tracking_vs_decode"] = result["tracking_fps"] / result["decode_fps"]
    result["detection_vs_decode"] = result["detection_fps"] / result["decode_fps"]
    result["face_yield_tracking"] = yields["tracking"]
    result["face_yield_detection"] = yields["detection"]
    if mediapipe:
        result["mediapipe_fps"] = statistics.median(mediapipe)
        result["tracking_vs_mediapipe"] = statistics.median(t / m for t, m in zip(tracked, mediapipe, strict=True))
        result["free_vs_mediapipe"] = statistics.median(t / m for t, m in zip(free, mediapipe, strict=True))
        result["hog_vs_mediapipe"] = statistics.median(t / m for t, m in zip(hog, mediapipe, strict=True))
        result["no_reid_vs_mediapipe"] = statistics.median(t / m for t, m in zip(no_reid, mediapipe, strict=True))
        result["all_vs_mediapipe"] = statistics.median(t / m for t, m in zip(every, mediapipe, strict=True))
        result["face_yield_mediapipe"] = yields["mediapipe"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pin_one_core()
    with tempfile.TemporaryDirectory() as tmp:
        clips = {"astronaut 640x480 (generated)": sample_video(Path(tmp) / "clip.avi", n_frames=args.frames)}
        if SHARED_CLIP.is_file():
            clips["hamilton 640x360 (real, shared/)"] = SHARED_CLIP
        print(f"landmark stage, one core, median of {args.repeats} runs")
        for name, clip in clips.items():
            r = measure(clip, args.repeats)
            print(f"{name}: {r['frames']} frames")
            print(f"  decode only            {r['decode_fps']:8.1f} fps")
            print(f"  landmarks, tracking    {r['tracking_fps']:8.1f} fps  ({r['tracking_vs_decode']:.2f} x decode)"
                  f"  face in {r['face_yield_tracking']:.1%} of frames")
            print(f"  landmarks, tracking, HOG detector (former default) {r['hog_fps']:8.1f} fps  face in "
                  f"{r['face_yield_hog']:.1%} of frames")
            print(f"  landmarks, tracking, no re-identification (MediaPipe's set-up) {r['no_reid_fps']:8.1f} fps")
            print(f"  landmarks, tracking every face (face_policy='all') {r['all_fps']:8.1f} fps")
            print(f"  work: 68-point fits / re-identification encodings: default {r['work'][0]} / {r['work'][1]}, "
                  f"every face followed {r['work_all'][0]} / {r['work_all'][1]}")
            print(f"  landmarks, no tracking {r['detection_fps']:8.1f} fps  ({r['detection_vs_decode']:.2f} x decode)"
                  f"  face in {r['face_yield_detection']:.1%} of frames")
            print(f"  tracking, full-frame detection free (bound) {r['free_detector_fps']:8.1f} fps  face in "
                  f"{r['face_yield_free']:.1%} of frames")
            print(f"  tracking + both CNNs   {r['expression_fps']:8.1f} fps  "
                  f"({r['expression_fps'] / r['tracking_fps']:.2f} x landmarks alone)")
            if "mediapipe_fps" in r:
                print(f"  MediaPipe FaceMesh     {r['mediapipe_fps']:8.1f} fps  face in {r['face_yield_mediapipe']:.1%} "
                      f"of frames; geoengage tracking / MediaPipe {r['tracking_vs_mediapipe']:.2f} (HOG detector "
                      f"{r['hog_vs_mediapipe']:.2f}; without re-identification {r['no_reid_vs_mediapipe']:.2f}; "
                      f"every face followed {r['all_vs_mediapipe']:.2f}), "
                      f"with full-frame detection free {r['free_vs_mediapipe']:.2f} "
                      "(medians of the per-run ratios)")
            else:
                print("  MediaPipe FaceMesh     not installed (see this script's docstring to compare)")
            print(f"  feature stage          {r['features_fps']:8.1f} rows/s (after extraction)")


if __name__ == "__main__":
    main()
