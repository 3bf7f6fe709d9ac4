"""Uploads -> analyses in worker processes: :class:`AnalysisPool`, each worker with its own models, warmed before the
first request, one compute thread, and killed when it overruns the request's time budget."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from ..dataset import one_thread_per_worker
from ..datasets import sample_image
from .analysis import analyse
from .config import ServeConfig, UploadError

__all__ = ["AnalysisPool", "set_threads"]

logger = logging.getLogger(__name__)


def set_threads(n: int) -> None:
    """One analysis uses ``n`` OpenCV and torch threads (the service's parallelism is its requests)."""
    import cv2
    import torch

    cv2.setNumThreads(n)
    torch.set_num_threads(n)


#: Settings of the analyses in this worker process (set by :func:`_start_worker`).
_WORKER_CONFIG: ServeConfig | None = None


def _start_worker(config: ServeConfig, parent_pid: int) -> None:
    """A pool worker's start: one compute thread, a watch on the web process, and every model loaded and warm
    (the bundled sample image analysed once), so that the first request costs what any other does."""
    global _WORKER_CONFIG

    one_thread_per_worker(parent_pid)
    set_threads(config.threads)
    _WORKER_CONFIG = config
    with tempfile.TemporaryDirectory(prefix="geoengage-warm-") as folder:
        import cv2

        path = Path(folder) / "warm.png"
        cv2.imwrite(str(path), sample_image())
        # the first analysis loads every model: not subject to the per-request budget
        analyse(path, "image", dataclasses.replace(config, max_request_s=3600.0), False)


#: Written beside the upload when a worker starts on it: that worker's process id and the start time.
_STARTED = "worker-started"


def _worker_analyse(path: str, kind: str, timeline: bool) -> dict[str, Any]:
    assert _WORKER_CONFIG is not None, "the pool's initializer did not run"
    started = Path(path).parent / _STARTED
    # written whole, then renamed: the web process never reads it half-written (an empty file read as "not started
    # yet" would spare a stuck worker from the kill, and the request would wait for ever)
    partial = started.with_name(f"{_STARTED}.{os.getpid()}.partial")
    partial.write_text(f"{os.getpid()} {time.time()}")
    os.replace(partial, started)
    return analyse(Path(path), kind, _WORKER_CONFIG, timeline)


def _worker_ready(hold_s: float) -> int:
    time.sleep(hold_s)  # held a moment, so one ready worker cannot answer for another still loading its models
    return os.getpid()


class AnalysisPool:
    """``workers`` processes that analyse uploads, each with its own models (see :func:`_start_worker`).

    A worker that dies (killed, out of memory) breaks the pool: the request it held gets 503 and the pool is
    started again for the next ones.
    """

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # forkserver, not fork: a child forked from a process whose torch/OpenMP threads ran can hang
                self._executor = ProcessPoolExecutor(
                    max_workers=self.config.workers, mp_context=multiprocessing.get_context("forkserver"),
                    initializer=_start_worker, initargs=(self.config, os.getpid()))
            return self._executor

    def start(self, timeout_s: float = 600.0) -> list[int]:
        """Start every worker and wait until each has loaded its models; returns their process ids."""
        pool, ready = self._pool(), set()
        deadline = time.monotonic() + timeout_s
        while len(ready) < self.config.workers and time.monotonic() < deadline:
            ready |= {f.result() for f in [pool.submit(_worker_ready, 0.05) for _ in range(self.config.workers)]}
        return sorted(ready)

    def analyse(self, path: Path, kind: str, timeline: bool) -> dict[str, Any]:
        """The ``/predict`` answer for one upload (raises :class:`UploadError` for bad input).

        The worker checks the time budget between frames; one that is still on the upload ``grace_s`` after its
        budget ran out (inside one long call: dlib's detector on a huge image, a decoder) is killed, and the
        request gets 413. Like any dead worker, that breaks the pool: requests other workers were on get 503.
        """
        pool = self._pool()
        future = pool.submit(_worker_analyse, str(path), kind, timeline)
        limit = self.config.max_request_s + self.grace_s
        # no worker can have overrun before the request has waited that long: one wait, then a check a second
        wait, killed = limit, False
        try:
            while True:
                try:
                    return future.result(timeout=wait)
                except FutureTimeout:
                    killed = killed or self._kill_overrun(path.parent / _STARTED, limit)
                    wait = 1.0
        except BrokenProcessPool as err:
            with self._lock:
                if self._executor is pool:  # the first request to see it starts a new pool
                    self._executor = None
                    pool.shutdown(wait=False, cancel_futures=True)
            if killed:
                logger.error("an analysis overran its %g s budget by %g s and its worker was stopped; the pool "
                             "starts again", self.config.max_request_s, self.grace_s)
                raise UploadError(413, f"the {kind} took longer than the {self.config.max_request_s:g} s budget per "
                                       "request to analyse; send a smaller file or a shorter clip") from err
            logger.error("an analysis worker died; the pool starts again: %s", err)
            raise UploadError(503, "the analysis worker stopped unexpectedly; try again") from err

    @property
    def grace_s(self) -> float:
        """How long past the budget a worker may stay on one upload before it is killed."""
        return 2.0 + 0.1 * self.config.max_request_s

    @staticmethod
    def _kill_overrun(started: Path, limit: float) -> bool:
        """Kill the worker named in ``started`` if it has been on the upload longer than ``limit`` seconds."""
        try:
            pid, since = started.read_text().split()
        except (OSError, ValueError):  # not started yet: still queued behind other uploads
            return False
        if time.time() - float(since) <= limit:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
        return True

    def close(self, timeout_s: float | None = None) -> None:
        """Stop the workers: queued uploads are cancelled, one on an upload may finish it for ``timeout_s`` (the
        budget and its grace by default), and a worker still alive after that is killed, so closing never hangs on
        a worker stuck inside one call."""
        with self._lock:
            pool, self._executor = self._executor, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + (self.config.max_request_s + self.grace_s if timeout_s is None else timeout_s)
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.error("analysis worker %s did not stop; killed", process.pid)
                process.kill()
                process.join(5.0)
