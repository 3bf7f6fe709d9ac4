"""Images per second of `geoengage extract` (build_dataset) on ../shared/data/engagement_wacv, 1 and 2 workers.

Each run extracts every image (crop_mode="fallback", threshold 0, as for face crops) into a fresh
folder, then cleans and windows them; the figure is images / wall-clock seconds of the whole
build, model loading included. Medians over --repeats runs; the 2-worker figure is also given
as a ratio to the 1-worker one measured in the same session. Skips when the data is absent.

    python benchmarks/extract_throughput.py [--limit 1200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from geoengage.config import ExtractConfig
from geoengage.dataset import build_dataset
from geoengage.media import MediaItem

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "engagement_wacv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all 3,724)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        sys.exit(0)
    labels = pd.read_csv(DATA / "labels.csv")
    if args.limit:
        labels = labels.head(args.limit)
    items = [MediaItem(str(DATA / p), p, {"subject_id": str(s), "engagement": int(e)})
             for p, s, e in zip(labels.path, labels.subject_id, labels.engagement)]
    config = ExtractConfig(crop_mode="fallback")
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for jobs in (1, 2):
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                result = build_dataset(items, out, extract=config, n_jobs=jobs)
                rates[jobs].append(len(items) / (time.perf_counter() - start))
                assert len(result.failures) == 0
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"engagement_wacv: {len(items)} images, median of {args.repeats} runs (extract + clean + windows)")
    print(f"  1 worker : {one:7.1f} images/s")
    print(f"  2 workers: {two:7.1f} images/s  ({two / one:.2f} x 1 worker)")


if __name__ == "__main__":
    main()
