"""Requests per second and latency of ``POST /predict`` on a single image, over real HTTP.

For each ``--workers`` count, starts ``geoengage serve --workers N`` in a child process on
127.0.0.1, waits for ``/health``, sends scikit-image's astronaut photo (one face, JPEG, 512x512)
``--requests`` times from one client and then from ``--clients`` concurrent clients, and prints
requests per second, latency percentiles (median, 95th) and ``/health`` latency under that load.
Worker counts are run in turn, ``--rounds`` times (the machine's speed drifts between minutes),
and each figure is the median over rounds; the 4-client throughput of each worker count is also
printed as the median of its per-round ratios to the first count's. The baseline, measured in the
same run and in this process with one thread, is the same work without HTTP
(:func:`geoengage.predict.predict_media` on the file), so the ratio shows what the service adds.

    python benchmarks/serve_predict.py [--requests 40] [--clients 4] [--workers 1 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np

from geoengage.config import ExtractConfig
from geoengage.datasets import sample_image
from geoengage.predict import PredictConfig, predict_media


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(client: httpx.Client, jpeg: bytes) -> float:
    start = time.perf_counter()
    answer = client.post("/predict", files={"file": ("astronaut.jpg", jpeg)})
    answer.raise_for_status()
    return time.perf_counter() - start


def _serve(workers: int, jpeg: bytes, n_requests: int, n_clients: int) -> dict[str, list[float] | float]:
    """Latencies of one server with ``workers`` analysis workers: 1 client, then ``n_clients``, and /health."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "geoengage.cli", "-q", "serve", "--port", str(port),
                               "--workers", str(workers)])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in range(3):
                _post(client, jpeg)
            start = time.perf_counter()
            serial = [_post(client, jpeg) for _ in range(n_requests)]
            serial_rps = n_requests / (time.perf_counter() - start)
        clients = [httpx.Client(base_url=url, timeout=300) for _ in range(n_clients)]
        for i in range(n_clients * 2):
            _post(clients[i % n_clients], jpeg)
        health: list[float] = []
        finished: list[float] = []

        def post(i: int) -> float:
            latency = _post(clients[i % n_clients], jpeg)
            finished.append(time.perf_counter())
            return latency

        with ThreadPoolExecutor(n_clients) as pool, httpx.Client(base_url=url, timeout=60) as probe:
            start = time.perf_counter()
            running = pool.map(post, range(n_requests))
            while len(health) < 20 and len(finished) < n_requests:  # /health while clients wait on analyses
                tick = time.perf_counter()
                probe.get("/health").raise_for_status()
                health.append(time.perf_counter() - tick)
                time.sleep(0.05)
            parallel = list(running)
            # up to the last answer (the /health loop's own pauses are not the service's time)
            parallel_rps = n_requests / (max(finished) - start)
        for c in clients:
            c.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"serial": serial, "serial_rps": serial_rps, "parallel": parallel, "parallel_rps": parallel_rps,
            "health": health}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="geoengage serve --workers, each")
    parser.add_argument("--rounds", type=int, default=3, help="times each worker count is run, in turn")
    args = parser.parse_args()
    jpeg = cv2.imencode(".jpg", sample_image())[1].tobytes()
    rounds = [{workers: _serve(workers, jpeg, args.requests, args.clients) for workers in args.workers}
              for _ in range(args.rounds)]

    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)  # as in a worker process
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "astronaut.jpg"
        path.write_bytes(jpeg)
        config, extract = PredictConfig(), ExtractConfig(face_policy="all")
        for _ in range(3):
            predict_media(path, extract=extract, config=config)
        direct = []
        for _ in range(args.requests):
            start = time.perf_counter()
            predict_media(path, extract=extract, config=config)
            direct.append(time.perf_counter() - start)

    def ms(values: list[float], q: float) -> float:
        return 1000 * float(np.quantile(values, q))

    def median_ms(workers: int, key: str, q: float) -> float:
        return statistics.median(ms(r[workers][key], q) for r in rounds)  # type: ignore[arg-type]

    def median_of(workers: int, key: str) -> float:
        return statistics.median(float(r[workers][key]) for r in rounds)  # type: ignore[arg-type]

    first = args.workers[0]
    print(f"POST /predict, one 512x512 JPEG with one face, {args.requests} requests per row; medians over "
          f"{args.rounds} rounds")
    for workers in args.workers:
        ratio = statistics.median(r[workers]["parallel_rps"] / r[first]["parallel_rps"] for r in rounds)  # type: ignore[operator]
        per_round = ", ".join(f"{r[workers]['parallel_rps']:.1f}" for r in rounds)
        print(f"{workers} analysis worker process(es):")
        print(f"  1 client : {median_of(workers, 'serial_rps'):6.2f} req/s, latency median "
              f"{median_ms(workers, 'serial', 0.5):6.1f} ms, p95 {median_ms(workers, 'serial', 0.95):6.1f} ms")
        print(f"  {args.clients} clients: {median_of(workers, 'parallel_rps'):6.2f} req/s (rounds: {per_round}), latency "
              f"median {median_ms(workers, 'parallel', 0.5):6.1f} ms, p95 {median_ms(workers, 'parallel', 0.95):6.1f} ms "
              f"-> {ratio:.2f}x the throughput of {first} worker(s)")
        print(f"  /health under that load: median {median_ms(workers, 'health', 0.5):6.1f} ms, max "
              f"{1000 * max(max(r[workers]['health']) for r in rounds):6.1f} ms")  # type: ignore[type-var]
        print(f"  service / direct latency ratio (1 client): {median_ms(workers, 'serial', 0.5) / ms(direct, 0.5):.2f}")
    print(f"baseline, same work without HTTP (predict_media, one thread): median {ms(direct, 0.5):6.1f} ms")


if __name__ == "__main__":
    main()
