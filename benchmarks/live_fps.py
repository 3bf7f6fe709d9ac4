"""Live-mode frames per second on a 640x480 stream, and how many frames it drops to keep up.

The stream is a generated 640x480 one-face clip (scikit-image's astronaut moving, 30 fps)
served from 127.0.0.1 as an IP camera sends it, an MJPEG stream (``multipart/x-mixed-replace``)
whose frames leave the server at 30 per second, and read by ``run_live`` as a stream address
(``http://...``); then the same clip as a file played at its own rate. For each it prints the
analysed frames per second, frames dropped and the latency of the last frame records (file only). The baseline in
the same run is ``--every-frame`` on the file (no pacing: the most it can analyse) and the landmark
stage alone (no expression CNN, features or engagement windows) on the same decoded frames.
Medians over ``--repeats`` runs; ``--seconds`` of source each.

    python benchmarks/live_fps.py [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from geoengage.config import ExtractConfig
from geoengage.datasets import mjpeg_stream, sample_video
from geoengage.extract import iter_face_rows
from geoengage.live import LiveConfig, run_live
from geoengage.media import iter_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = sample_video(Path(tmp) / "clip.avi", n_frames=int(30 * args.seconds), fps=30.0)
        frames = list(iter_frames(clip))
        rows: dict[str, list[dict]] = {"stream": [], "file": [], "every": []}
        latency: list[float] = []
        with mjpeg_stream([frame.image for frame in frames], fps=30.0) as url:  # each connection: from frame 0
            for _ in range(args.repeats):
                for label, source, config in (("stream", url, LiveConfig()), ("file", clip, LiveConfig()),
                                              ("every", clip, LiveConfig(realtime=False))):
                    records: list[dict] = []
                    stats = run_live(source, records.append, config=config)
                    rows[label].append(stats.to_dict())
                    if label == "file":
                        frame_latency = [r["latency_ms"] for r in records if r["type"] == "frame"]
                        latency.append(statistics.median(frame_latency[len(frame_latency) // 2:]))
        landmarks = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            list(iter_face_rows(frames, config=ExtractConfig(expression=False)))
            landmarks.append(len(frames) / (time.perf_counter() - start))

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[label])

    print(f"live mode, 640x480 one-face source at 30 fps, {args.seconds:g} s, median of {args.repeats} runs")
    print(f"  MJPEG stream : {med('stream', 'processed_fps'):6.1f} fps analysed, "
          f"{med('stream', 'n_dropped'):.0f} of {med('stream', 'n_read'):.0f} frames dropped")
    print(f"  file, paced  : {med('file', 'processed_fps'):6.1f} fps analysed, "
          f"{med('file', 'n_dropped'):.0f} of {med('file', 'n_read'):.0f} frames dropped, "
          f"latency median {statistics.median(latency):.0f} ms")
    print(f"  every frame  : {med('every', 'processed_fps'):6.1f} fps (no pacing, nothing dropped: the ceiling)")
    print(f"  baseline, landmark stage alone: {statistics.median(landmarks):6.1f} fps "
          f"-> live analysis runs at {med('every', 'processed_fps') / statistics.median(landmarks):.2f} x of it")


if __name__ == "__main__":
    main()
