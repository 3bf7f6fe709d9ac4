"""Service limits checked before work: image pixel budget from the header, video length by frames decoded."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from geoengage import serve
from geoengage.datasets import sample_video
from geoengage.media import VideoInfo
from geoengage.serve import ServeConfig, UploadError, analysis, app
from geoengage.serve import analyse as _analyse
from geoengage.serve import pool as serve_pool
from geoengage.testing import png_bomb


def test_image_over_the_pixel_budget_is_a_413(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(UploadError) as err:
        _analyse(bomb, "image", ServeConfig(), timeline=False)
    assert err.value.status == 413 and "400 megapixels" in err.value.detail
    small = png_bomb(tmp_path / "small.png", 400, 300)
    with pytest.raises(UploadError) as err:
        _analyse(small, "image", ServeConfig(max_image_megapixels=0.1), timeline=False)
    assert err.value.status == 413 and "400 x 300" in err.value.detail


def test_video_longer_than_its_header_says_is_stopped_by_decoded_frames(tmp_path: Path, monkeypatch) -> None:
    clip = sample_video(tmp_path / "clip.avi", n_frames=60, fps=30.0)  # 2 s
    honest = analysis.probe_video(clip)
    lying = VideoInfo(honest.fps, 15, 0.5, honest.width, honest.height)
    monkeypatch.setattr(analysis, "probe_video", lambda path: lying)
    with pytest.raises(UploadError) as err:  # the header claims 0.5 s; the limit is 1 s; 2 s of frames decode
        _analyse(clip, "video", ServeConfig(max_video_s=1.0, video_fps=5.0), timeline=False)
    assert err.value.status == 413 and "runs past the 1 s limit" in err.value.detail
    answer = _analyse(clip, "video", ServeConfig(max_video_s=3.0, video_fps=5.0), timeline=False)
    assert answer["n_frames"] == 10  # 2 s at 5 frames per second: within the limit, all analysed


def test_queue_is_bounded_and_health_never_waits(monkeypatch, astronaut) -> None:
    import threading
    import time

    import cv2
    from fastapi.testclient import TestClient

    release = threading.Event()

    def slow(path, kind, config, timeline):  # an analysis that holds its slot until released
        release.wait(30)
        return {"kind": kind}

    monkeypatch.setattr(app, "analyse", slow)
    client = TestClient(serve.create_app(ServeConfig(max_concurrent=1, max_queue=1)))
    jpeg = cv2.imencode(".jpg", astronaut)[1].tobytes()
    answers: list[int] = []
    runners = [threading.Thread(target=lambda: answers.append(
        client.post("/predict", files={"file": ("a.jpg", jpeg)}).status_code)) for _ in range(2)]
    for runner in runners:  # one running, one waiting: the queue is full
        runner.start()
    deadline = time.monotonic() + 10
    while client.get("/health").json()["busy"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    health = client.get("/health")
    assert health.status_code == 200 and time.perf_counter() - started < 0.5 and health.json()["busy"] == 2
    refused = client.post("/predict", files={"file": ("a.jpg", jpeg)})
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5" and "busy" in refused.json()["detail"]
    release.set()
    for runner in runners:
        runner.join(30)
    assert answers == [200, 200]


def test_time_budget_and_string_details(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    clip = sample_video(tmp_path / "clip.avi", n_frames=60, fps=30.0)
    with pytest.raises(UploadError) as err:
        _analyse(clip, "video", ServeConfig(max_request_s=0.001, video_fps=30.0), timeline=False)
    assert err.value.status == 413 and "budget per request" in err.value.detail
    client = TestClient(serve.create_app(ServeConfig()))
    answer = client.post("/predict", data={"nothing": "here"})  # no file field: FastAPI's validation, as a string
    assert answer.status_code == 422 and isinstance(answer.json()["detail"], str) and "file" in answer.json()["detail"]


def test_two_worker_server_answers_fast_and_its_workers_die_with_it(astronaut) -> None:
    """`geoengage serve --workers 2`: one web process and two analysis worker processes. /health is answered without
    delayed-ACK stalls (once ~40 ms with uvicorn's own worker processes), an upload is analysed by a worker, and
    `kill -9` of the server leaves no worker process behind."""
    import os
    import signal
    import socket
    import statistics
    import subprocess
    import sys
    import time

    import cv2
    import httpx

    psutil = pytest.importorskip("psutil")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "geoengage.cli", "-q", "serve", "--port", str(port),
                               "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:  # the server listens once both workers have loaded their models
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            times = []
            for _ in range(15):
                start = time.perf_counter()
                assert client.get("/health").status_code == 200
                times.append(time.perf_counter() - start)
            answer = client.post("/predict", files={"file": ("a.jpg", cv2.imencode(".jpg", astronaut)[1].tobytes())})
            broken = client.post("/predict", files={"file": ("b.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 200)})
        assert statistics.median(times) < 0.02, f"median /health {statistics.median(times) * 1000:.1f} ms"
        assert answer.status_code == 200 and len(answer.json()["faces"]) == 1
        assert broken.status_code == 422 and "cannot be decoded" in broken.json()["detail"]  # raised in a worker
        family = psutil.Process(server.pid).children(recursive=True)
        assert len(family) >= 2, f"expected the analysis workers, found {family}"
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        _, alive = psutil.wait_procs(family, timeout=15)
        assert not alive, f"orphaned: {[(p.pid, p.name()) for p in alive]}"
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


def test_pool_survives_a_dead_worker(tmp_path: Path, astronaut) -> None:
    """A worker killed mid-flight (out of memory, say): that request gets 503, the pool starts again for the next."""
    import os
    import signal

    import cv2

    image = tmp_path / "a.png"
    cv2.imwrite(str(image), astronaut)
    pool = serve.AnalysisPool(ServeConfig(workers=1, gaze_cnn=False))
    try:
        (pid,) = pool.start()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(UploadError) as err:
            pool.analyse(image, "image", False)
        assert err.value.status == 503 and "stopped unexpectedly" in err.value.detail
        answer = pool.analyse(image, "image", False)
        assert len(answer["faces"]) == 1 and answer["faces"][0]["engagement_probability"] is not None
        with pytest.raises(UploadError) as err:  # a bad-input error raised in the worker arrives whole
            pool.analyse(tmp_path / "missing.png", "image", False)
        assert err.value.status == 422
    finally:
        pool.close()


def test_content_length_is_checked_before_the_body_is_read() -> None:
    """The ASGI size check: a non-number is 400, over the limit 413, both as JSON, and the app never runs."""
    import asyncio
    import json

    from geoengage.serve.app import _ContentLengthLimit as ContentLengthLimit

    async def call(length: bytes | None, path: str = "/predict") -> tuple[int | None, dict | None, bool]:
        ran, messages = [], []

        async def app(scope, receive, send) -> None:
            ran.append(True)

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            messages.append(message)

        headers = [] if length is None else [(b"content-length", length)]
        limit = ContentLengthLimit(app, limit=1000, limit_mb=0.001)
        await limit({"type": "http", "path": path, "method": "POST", "headers": headers}, receive, send)
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        return (start or {}).get("status"), (json.loads(body) if body else None), bool(ran)

    status, body, ran = asyncio.run(call(b"12x"))
    assert status == 400 and "not a number" in body["detail"] and not ran
    status, body, ran = asyncio.run(call(str(1000 + 65537).encode()))
    assert status == 413 and "0.001 MB limit" in body["detail"] and not ran
    assert asyncio.run(call(b"500"))[2] and asyncio.run(call(None))[2]  # within the limit, or chunked: the app runs
    assert asyncio.run(call(b"10000000", path="/health"))[2]  # only uploads are checked


def test_pool_kills_a_worker_stuck_past_the_budget(tmp_path: Path, astronaut) -> None:
    """The budget is checked between frames; a worker stuck inside one call (here: stopped with SIGSTOP once it has
    started on the upload) is killed once the budget and its grace are over, the request gets 413, and the pool
    starts again for the next upload."""
    import os
    import signal
    import threading
    import time

    import cv2

    folder = tmp_path / "request"
    folder.mkdir()
    upload = folder / "upload.jpg"
    cv2.imwrite(str(upload), cv2.resize(astronaut, (2500, 2500)))  # a few hundred ms of detection: time to stop it
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), astronaut)
    pool = serve.AnalysisPool(ServeConfig(workers=1, max_request_s=1.0, gaze_cnn=False))
    pid = None
    try:
        (pid,) = pool.start()
        errors: list[UploadError] = []

        def request() -> None:
            try:
                pool.analyse(upload, "image", False)
            except UploadError as err:
                errors.append(err)

        runner = threading.Thread(target=request)
        start = time.monotonic()
        runner.start()
        while not (folder / serve_pool._STARTED).exists():
            assert time.monotonic() - start < 60, "the worker never started on the upload"
            time.sleep(0.005)
        # the marker is renamed into place whole: once it exists it names the worker and its start
        assert (folder / serve_pool._STARTED).read_text().split()[0] == str(pid)
        os.kill(pid, signal.SIGSTOP)  # frozen mid-analysis: the check between frames never comes
        runner.join(60)
        elapsed = time.monotonic() - start
        assert errors and errors[0].status == 413 and "1 s budget" in errors[0].detail
        assert elapsed < 1.0 + pool.grace_s + 5, f"answered after {elapsed:.1f} s"
        answer = pool.analyse(small, "image", False)  # a new pool, a new worker
        assert len(answer["faces"]) == 1
    finally:
        if pid is not None:  # never leave a stopped process behind, whatever failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pool.close()


def test_close_kills_a_worker_that_does_not_stop() -> None:
    """Closing the pool waits for a worker at most its timeout, then kills it (a stopped or stuck worker would
    otherwise hold ``close``, and the server's shutdown, for ever)."""
    import os
    import signal
    import time

    import psutil

    pool = serve.AnalysisPool(ServeConfig(workers=1, gaze_cnn=False))
    (pid,) = pool.start()
    os.kill(pid, signal.SIGSTOP)
    start = time.monotonic()
    pool.close(timeout_s=1.0)
    assert time.monotonic() - start < 10
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_python_string_storage_changes_no_value_and_stays_inside_the_call(tmp_path: Path, astronaut) -> None:
    import cv2
    import pandas as pd

    path = tmp_path / "a.jpg"
    cv2.imwrite(str(path), astronaut)
    before = pd.get_option("mode.string_storage")
    answer = _analyse(path, "image", ServeConfig(), timeline=True)  # tables in Python string storage
    assert pd.get_option("mode.string_storage") == before  # the caller's setting is back
    plain = analysis._analyse_upload(path, "image", ServeConfig(), timeline=True)  # the caller's (Arrow) storage
    assert answer == plain and answer["faces"]  # every value of the answer, reasons and timeline included
