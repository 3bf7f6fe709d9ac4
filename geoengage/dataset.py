"""Folder or manifest -> frames.parquet and windows.parquet, for one video or ten thousand.

:func:`build_dataset` is what ``geoengage extract`` runs:

1. items are extracted in chunks (each video alone; up to ``chunk_size`` images together, so a
   dataset of small face crops does not pay a file per image) and each chunk is written to
   ``parts/<hash>.parquet`` atomically (a temporary file renamed into place), so a crash, a
   kill or Ctrl-C loses no finished chunk;
2. a second run skips every item already in a part (resume); failed items are retried. Parts are
   kept per configuration (``parts/<config key>/``: a hash of the extraction settings, the table's
   schema version, the features' computation version and the model files), so a run with other settings or
   earlier feature code recomputes every item and never mixes values made with different settings; it logs which
   options differ;
3. failures (missing, corrupt, truncated files, and any other error) are appended to
   ``failures.csv`` as they happen, with the file and the problem, and the batch goes on;
4. when every item is done, the parts are joined in item order into ``frames.parquet``
   (+ ``frames.meta.json``), cleaned (:mod:`geoengage.clean`) and windowed
   (:mod:`geoengage.windows`) into ``windows.parquet`` (+ ``windows.meta.json``).

**Faults** a long batch meets (the README's reliability table):

- a part that cannot be read, or does not match what was recorded in it when it was written (its configuration key,
  its row count, the size and content of each input: the content is read again only where the modification time
  differs, so a copied data set is not extracted again), is reported in one line, moved aside to
  ``parts/<key>/set_aside/`` (never deleted) and its items are extracted again; an input changed since its part was
  made is extracted again the same way;
- an output that cannot be written (a full disk, a read-only or vanished folder) stops the batch with one
  :class:`~geoengage.exceptions.OutputWriteError` saying what could not be written, that the finished parts are kept
  and how to resume; an input deleted or replaced between listing and reading is a recorded failure and the batch
  goes on;
- one run at a time writes into an output folder: a second one is refused
  (:class:`~geoengage.exceptions.OutputInUseError`) while the first holds ``.geoengage.lock``; a lock whose process is
  gone (a killed run) is recognised as stale and taken over.

Items run serially (``n_jobs=1``), on local processes (``n_jobs=N`` or ``-1`` for every core),
or on a Dask distributed cluster (``scheduler="tcp://host:8786"``). On a real cluster the
workers need geoengage installed and ``out_dir`` on storage they all see (NFS, a shared disk):
each worker writes its parts there itself.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import hashlib
import json
import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import outputs
from .clean import CleanConfig
from .config import ExtractConfig, config_to_dict
from .detect.models import model_sha256, packaged_model
from .exceptions import (
    GeoEngageError,
    InvalidParameterError,
    MediaReadError,
    MissingDependencyError,
    OutputInUseError,
    OutputWriteError,
    SchemaError,
)
from .extract import FAILURE_COLUMNS, FRAMES_SCHEMA_VERSION, ITEM_FOCAL, extract_items, item_config, write_frames
from .geometry.registry import FEATURES_VERSION
from .importers import ImportResult, import_tables, imported_feature_set
from .media import IMAGE_EXTENSIONS, MediaItem, list_media
from .progress import Hook
from .recipe import Recipe, frames_to_windows
from .windows import load_feature_set

__all__ = ["SETTINGS_KEYS", "DatasetResult", "ImportedDataset", "WindowConfig", "build_dataset", "config_key",
           "feature_models", "import_dataset", "one_thread_per_worker", "part_path", "read_windows",
           "write_windows"]

logger = logging.getLogger(__name__)
WINDOWS_SCHEMA_VERSION = "geoengage.windows/1"


@dataclass(frozen=True, kw_only=True)
class WindowConfig:
    """How a data set's cleaned frames become windows: the window part of its :class:`~geoengage.recipe.Recipe`
    (the cleaning is :class:`~geoengage.clean.CleanConfig`), checked as the recipe checks it."""

    window_s: float = 10.0
    step_s: float = 5.0
    feature_set: str = "default"
    min_coverage: float = 0.6

    def recipe(self, clean: CleanConfig) -> Recipe:
        """These window settings with ``clean``: the :class:`~geoengage.recipe.Recipe` the tables are made with."""
        return Recipe(clean=clean, window_s=self.window_s, step_s=self.step_s, min_coverage=self.min_coverage,
                      features=self.feature_set)

    def __post_init__(self) -> None:
        self.recipe(CleanConfig())  # the window length, step and coverage rule, checked once: by the recipe
        load_feature_set(self.feature_set)


@dataclass(frozen=True)
class DatasetResult:
    """Paths and counts of a finished :func:`build_dataset` run."""

    out_dir: Path
    n_items: int
    n_extracted: int
    n_skipped: int
    failures: pd.DataFrame
    #: Inputs in the tables with a face in at least one frame, and the median frame size (px, longer side) of the
    #: inputs: a first run on face crops finds no face, and says why (``geoengage extract``).
    n_with_face: int = 0
    median_size_px: float | None = None

    @property
    def frames_path(self) -> Path:
        return self.out_dir / "frames.parquet"

    @property
    def windows_path(self) -> Path:
        return self.out_dir / "windows.parquet"

    def to_dict(self) -> dict[str, object]:
        return {"out": str(self.out_dir), "n_items": self.n_items, "n_extracted": self.n_extracted,
                "n_skipped": self.n_skipped, "n_failures": len(self.failures), "n_with_face": self.n_with_face}


def _chunks(items: list[MediaItem], chunk_size: int) -> list[list[MediaItem]]:
    """Consecutive images up to ``chunk_size`` per chunk; every video (or sequence, stream) alone."""
    chunks: list[list[MediaItem]] = []
    images: list[MediaItem] = []
    for item in items:
        if Path(item.path).suffix.lower() in IMAGE_EXTENSIONS:
            images.append(item)
            if len(images) == chunk_size:
                chunks.append(images)
                images = []
        else:
            chunks.append([item])
    return chunks + ([images] if images else [])


def config_key(config: ExtractConfig) -> str:
    """A short hash of everything that decides a part's values: the extraction settings, the per-frame
    table's schema version, the features' computation (:data:`~geoengage.geometry.registry.FEATURES_VERSION`) and
    the model files (landmarks, expression CNN and its embedding projection)."""
    return _settings_key(_part_settings(config))


def _settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _part_settings(config: ExtractConfig) -> dict[str, Any]:
    """What :func:`config_key` hashes: the settings, the per-frame schema and features versions, the model files."""

    return {"config": config_to_dict(config), "schema": FRAMES_SCHEMA_VERSION, "features": FEATURES_VERSION,
            **feature_models(config)}


def feature_models(config: ExtractConfig) -> dict[str, str | None]:
    """SHA-256 of the model files behind the features: the landmark model, the YuNet face detector (when it runs) and
    (when they run) the expression CNN with its embedding projection and the gaze CNN. A scoring model refuses
    windows made with other ones."""
    expression = (hashlib.sha256(packaged_model("expression_cnn").read_bytes()
                                 + packaged_model("expression_embedding").read_bytes()).hexdigest()
                  if config.expression else None)
    gaze = hashlib.sha256(packaged_model("gaze_cnn").read_bytes()).hexdigest() if config.gaze_cnn else None
    models = {"landmarks": model_sha256("landmarks68"), "expression": expression, "gaze": gaze}
    if config.detector == "yunet":  # (HOG's model is inside dlib itself: its version is recorded with the tables)
        models["detector"] = model_sha256("face_detector")
    return models


def _note_other_configs(parts_root: Path, key: str, settings: dict[str, Any], current: set[str] | None = None,
                        *, warn: bool = True) -> None:
    """Record this configuration beside its parts, and (``warn``) log which options parts made with others differ
    in (``current``: the keys of this run, one per camera calibration, which are not "others").

    ``config.json`` holds the settings plus ``frames_schema``, ``features_version`` and ``model_files`` (parts of
    geoengage before 2026-12-03 recorded the settings only), compared as JSON reads them back (a tuple setting is
    then a list on both sides). ``settings`` are the configuration's :func:`_part_settings`, whose hash is ``key``."""
    mine = json.loads(json.dumps({**settings["config"], "frames_schema": settings["schema"],
                                  "features_version": settings["features"],
                                  "model_files": {k: settings[k] for k in ("landmarks", "detector", "expression",
                                                                           "gaze") if k in settings}},
                                 default=str))
    (parts_root / key).mkdir(parents=True, exist_ok=True)
    (parts_root / key / "config.json").write_text(json.dumps(mine, indent=2))
    if not warn:
        return
    for other in sorted(p for p in parts_root.iterdir() if p.is_dir() and p.name not in (current or {key})):
        try:
            theirs = json.loads((other / "config.json").read_text())
        except (OSError, ValueError):
            theirs = {}
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)) or ["model files or version"]
        logger.warning("%s: parts made with other settings (%s) are not reused; an item is extracted with the "
                       "current settings unless it already was", other, ", ".join(differ))
    loose = list(parts_root.glob("*.parquet"))
    if loose:
        logger.warning("%s: %d parts from an earlier geoengage (no configuration recorded) are not reused",
                       parts_root, len(loose))


def part_path(parts_dir: Path, chunk: list[MediaItem]) -> Path:
    """Where a chunk's per-frame rows are stored (named by a hash of its items' ``video_id``); ``parts_dir``
    is the folder of one configuration (``parts/<config key>``)."""
    key = "\n".join(item.video_id for item in chunk).encode()
    return parts_dir / f"{hashlib.sha1(key).hexdigest()[:20]}.parquet"


#: Key of a part's own record in its parquet metadata: configuration key, row count, each input's size, mtime and
#: content digest.
_PART_RECORD = b"geoengage.part"
#: Errors of writing that stop a batch: :data:`geoengage.outputs.WRITE_ERRNOS`, and a vanished output folder or a disk
#: error.
_WRITE_ERRNOS = outputs.WRITE_ERRNOS | {errno.ENOENT, errno.EIO}


def _input_signature(path: str) -> list[int | str] | None:
    """(size, modification time in ns, SHA-256 of the content) of an input file; None when it is not a file that
    can be read. Reading an input once more costs little beside extracting it (a 1 GB video hashes in about a
    second, and takes minutes to extract)."""
    try:
        stat = os.stat(path)
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns, digest]


def _input_changed(path: str, signature: list) -> bool:
    """Whether the input at ``path`` differs from its recorded ``signature``: its size differs, or its modification
    time differs and its content too (a copied data set, whose files carry new times, is not extracted again;
    a record without a digest, written before 2026-12-07, trusts the time alone)."""
    try:
        stat = os.stat(path)
    except OSError:
        return True  # vanished or unreadable: extracted again, where its failure is recorded
    if stat.st_size != signature[0]:
        return True
    if stat.st_mtime_ns == signature[1]:
        return False
    if len(signature) < 3:
        return True
    current = _input_signature(path)
    return current is None or current[2] != signature[2]


def _write_failure(what: Path, err: OSError, out: Path) -> OutputWriteError:
    return OutputWriteError(f"{what}: could not be written ({err.strerror or err}); every finished part is kept in "
                            f"{out / 'parts'}: free space or fix the folder, then run the same command again to resume.")


def _extract_chunk(chunk: list[MediaItem], config: ExtractConfig, parts_dir: Path) -> list[dict[str, str]]:
    """Extract a chunk into its part file, with its record (:data:`_PART_RECORD`); return the failure records of
    its items. The inputs are looked at before they are read, so one replaced while being read is noticed later."""
    inputs = {item.video_id: _input_signature(item.path) for item in chunk}
    table, failures = extract_items(chunk, config=config, catch=(Exception,))
    if len(table):
        target = part_path(parts_dir, chunk)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        record = {"key": parts_dir.name, "n_rows": len(table),
                  "inputs": {k: v for k, v in inputs.items() if k in set(table["video_id"])}}
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                               _PART_RECORD: json.dumps(record).encode()})
        try:
            pq.write_table(arrow, tmp)
            os.replace(tmp, target)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _write_failure(target, err, parts_dir.parent.parent) from None
    return failures


def _part_problem(part: Path, key: str, items: dict[str, MediaItem]) -> tuple[str | None, set[str]]:
    """What is wrong with a part (None: nothing) and the items it holds."""
    try:
        schema = pq.read_schema(part)
        n_rows = pq.ParquetFile(part).metadata.num_rows
        ids = set(pd.read_parquet(part, columns=["video_id"])["video_id"].unique())
    except (OSError, ValueError, pa.ArrowException) as err:
        return f"cannot be read ({str(err).splitlines()[0] if str(err) else type(err).__name__})", set()
    raw = (schema.metadata or {}).get(_PART_RECORD)
    if raw is None:  # written by geoengage before parts carried their record: trusted as then
        return None, ids
    record = json.loads(raw)
    if record.get("key") != key:
        return f"was made with configuration {record.get('key')}, not {key}", ids
    if record.get("n_rows") != n_rows:
        return f"holds {n_rows} rows where {record.get('n_rows')} were written", ids
    for video_id, signature in record.get("inputs", {}).items():
        item = items.get(video_id)
        if item is not None and signature is not None and _input_changed(item.path, signature):
            return f"its input {item.path} changed since it was extracted (size or content)", ids
    return None, ids


def _set_aside(part: Path, problem: str) -> None:
    """Move a part that cannot be used to ``set_aside/`` beside it (never deleted), saying why in one line."""
    aside = part.parent / "set_aside"
    aside.mkdir(exist_ok=True)
    target = aside / f"{part.stem}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}.parquet"
    os.replace(part, target)
    logger.warning("%s %s: moved to %s; its items are extracted again", part, problem, target)


@contextlib.contextmanager
def _output_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.geoengage.lock`` for the run: a second run into ``out`` is refused while the holder lives; a lock
    whose process is gone (on this machine) is stale and taken over."""
    lock = out / ".geoengage.lock"
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text())
            except (OSError, ValueError):
                holder = {}
            if _alive(holder):
                raise OutputInUseError(
                    f"{out}: another geoengage run (pid {holder['pid']} on {holder['host']}, started "
                    f"{holder.get('started')}) is writing here; wait for it to end or use another --out (if no such "
                    f"run exists, delete {lock})") from None
            logger.warning("%s: a lock left by a run that is gone (%s); taken over", lock,
                           f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "unreadable")
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(handle, "w") as file:
            json.dump(mine, file)
        break
    else:  # pragma: no cover - another run took each freed lock first
        raise OutputInUseError(f"{out}: could not take {lock}; another run keeps taking it")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if json.loads(lock.read_text()).get("pid") == os.getpid():
                lock.unlink()


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the run that wrote a lock may still be running: a live process on this machine, or any run on
    another (whose processes cannot be seen from here)."""
    if not holder.get("pid"):
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def one_thread_per_worker(parent_pid: int | None = None) -> None:
    """Worker processes are the one level of parallelism: OpenCV and torch (the expression CNN) use one thread
    each, so N workers on N cores do not fight over them (torch's spinning threads slow down several-fold).

    With ``parent_pid``, a watchdog thread ends the worker when that process is gone (``kill -9`` of the command
    leaves no orphaned workers; the forkserver and resource tracker then end by themselves)."""
    cv2.setNumThreads(1)
    import torch

    torch.set_num_threads(1)
    if parent_pid is not None:
        import threading

        def watch() -> None:
            while True:
                time.sleep(0.5)
                try:
                    os.kill(parent_pid, 0)
                except ProcessLookupError:
                    os._exit(1)
                except PermissionError:  # pragma: no cover - the pid now belongs to another user's process
                    os._exit(1)

        threading.Thread(target=watch, name="geoengage-parent-watch", daemon=True).start()


def _done_ids(parts_dir: Path, items: dict[str, MediaItem]) -> set[str]:
    """Items already extracted in good parts of one configuration; damaged or stale parts are set aside."""
    done: set[str] = set()
    for part in sorted(parts_dir.glob("*.parquet")):
        problem, ids = _part_problem(part, parts_dir.name, items)
        if problem is None:
            done.update(ids)
        else:
            _set_aside(part, problem)
    return done


def _run(todo: list[list[MediaItem]], config: ExtractConfig, parts_dir: Path, *, n_jobs: int, scheduler: str | None):
    """Yield (number of items, failure records) of each chunk as it finishes."""
    if scheduler is not None:
        try:
            from distributed import Client
            from distributed import as_completed as dask_completed
        except ImportError as err:
            raise MissingDependencyError("`scheduler` needs Dask: pip install 'geoengage[dask]'.") from err
        with Client(scheduler) as client:
            futures = {client.submit(_extract_chunk, chunk, config, parts_dir, pure=False): len(chunk)
                       for chunk in todo}
            for future in dask_completed(list(futures)):
                yield futures[future], future.result()
        return
    if n_jobs == 1 or len(todo) <= 1:
        for chunk in todo:
            yield len(chunk), _extract_chunk(chunk, config, parts_dir)
        return
    workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    # forkserver, not fork: a child forked from a process whose torch/OpenMP threads have run can hang
    executor = ProcessPoolExecutor(max_workers=min(workers, len(todo)), initializer=one_thread_per_worker,
                                   initargs=(os.getpid(),), mp_context=multiprocessing.get_context("forkserver"))
    try:
        futures = {executor.submit(_extract_chunk, chunk, config, parts_dir): len(chunk) for chunk in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def build_dataset(
    source: str | Path | Iterable[MediaItem],
    out_dir: str | Path,
    *,
    extract: ExtractConfig | None = None,
    clean: CleanConfig | None = None,
    windows: WindowConfig | None = None,
    n_jobs: int = 1,
    scheduler: str | None = None,
    chunk_size: int = 64,
    hook: Hook | None = None,
) -> DatasetResult:
    """Extract, clean and window every item of a folder or manifest into ``out_dir`` (resumable).

    Parameters
    ----------
    source : str, Path or iterable of MediaItem
        Folder (recursive), CSV manifest, single file, or items. A manifest column ``focal_px`` gives an item its
        own camera calibration (:func:`geoengage.extract.item_config`); items are extracted in one group per
        distinct focal length.
    out_dir : str or Path
        Output folder: ``parts/``, ``failures.csv``, ``frames.parquet``, ``windows.parquet`` and sidecars.
    extract, clean, windows : configs, optional
    n_jobs : int
        1 (serial, the default), N local processes, or -1 for every core.
    scheduler : str, optional
        Address of a Dask distributed scheduler; chunks then run on its workers.
    chunk_size : int
        Most images per part file (videos always get their own).
    hook : Hook, optional
        Called as ``hook("files", n_done, n_items)``.
    """
    if n_jobs == 0 or n_jobs < -1:
        raise InvalidParameterError(f"`n_jobs` must be -1 or >= 1. Got {n_jobs!r} instead.")
    if chunk_size < 1:
        raise InvalidParameterError(f"`chunk_size` must be >= 1. Got {chunk_size!r} instead.")
    extract, clean, windows = extract or ExtractConfig(), clean or CleanConfig(), windows or WindowConfig()
    out = Path(out_dir)
    items = list(source) if not isinstance(source, (str, Path)) else list_media(source)
    ids = [item.video_id for item in items]
    if len(set(ids)) != len(ids):
        raise InvalidParameterError("every item needs its own video_id; the manifest repeats some.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with _output_lock(out):
            return _build(items, out, extract=extract, clean=clean, windows=windows, n_jobs=n_jobs,
                          scheduler=scheduler, chunk_size=chunk_size, hook=hook)
    except OSError as err:
        if isinstance(err, GeoEngageError) or err.errno not in _WRITE_ERRNOS:
            raise
        raise _write_failure(Path(err.filename) if err.filename else out, err, out) from None


def _build(items: list[MediaItem], out: Path, *, extract: ExtractConfig, clean: CleanConfig, windows: WindowConfig,
           n_jobs: int, scheduler: str | None, chunk_size: int, hook: Hook | None) -> DatasetResult:
    """:func:`build_dataset`'s work, inside the output folder's lock."""
    # one group of parts per configuration: items with their own camera calibration (a manifest `focal_px`) go to
    # that configuration's parts, so a changed focal length is extracted again and the rest are reused
    groups: dict[str, tuple[ExtractConfig, list[MediaItem]]] = {}
    keys: dict[ExtractConfig, str] = {}  # (a key hashes the model files: once per configuration, not per item)
    settings: dict[str, dict[str, Any]] = {}  # key -> what it hashes (recorded beside the parts)
    for item in items:
        try:
            item, own = item_config(item, extract)
        except InvalidParameterError:  # a bad manifest value: extraction records it as this item's failure
            own = extract
        if own not in keys:
            made = _part_settings(own)
            keys[own] = _settings_key(made)
            settings[keys[own]] = made
        groups.setdefault(keys[own], (own, []))[1].append(item)
    todo: list[tuple[str, ExtractConfig, list[MediaItem]]] = []
    for n, (key, (config, members)) in enumerate(groups.items()):
        _note_other_configs(out / "parts", key, settings[key], set(groups), warn=n == 0)
        done_ids = _done_ids(out / "parts" / key, {item.video_id: item for item in members})
        todo.append((key, config, [item for item in members if item.video_id not in done_ids]))
    skipped = len(items) - sum(len(members) for _, _, members in todo)
    if skipped:
        logger.info("resuming: %d of %d items are already extracted", skipped, len(items))

    failures = []
    with (out / "failures.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FAILURE_COLUMNS)
        writer.writeheader()
        done = skipped
        for key, config, members in todo:
            for n_items, chunk_failures in _run(_chunks(members, chunk_size), config, out / "parts" / key,
                                                n_jobs=n_jobs, scheduler=scheduler):
                for failure in chunk_failures:
                    writer.writerow(failure)
                    failures.append(failure)
                handle.flush()
                done += n_items
                if hook is not None:
                    hook("files", done, len(items))

    order = {item.video_id: i for i, item in enumerate(items)}
    tables = []
    for key, (_, members) in groups.items():
        mine = {item.video_id for item in members}
        for part in sorted((out / "parts" / key).glob("*.parquet")):
            try:
                table = pd.read_parquet(part)
            except (OSError, ValueError, pa.ArrowException) as err:  # damaged since it was written: not in the tables
                _set_aside(part, f"cannot be read back ({str(err).splitlines()[0] if str(err) else err!r})")
                raise SchemaError(f"{part} could not be read back and was set aside; run the same command again to "
                                  "extract its items again (the other parts are kept).") from err
            tables.append(table[table["video_id"].isin(mine)])
    n_with_face, size = 0, None
    if any(len(t) for t in tables):
        frames = _current_columns(pd.concat(tables, ignore_index=True), items)
        n_with_face = int(frames.groupby("video_id")["face_found"].any().sum())
        sizes = frames.groupby("video_id")[["frame_width_px", "frame_height_px"]].first().max(axis=1)
        size = float(sizes.median()) if len(sizes) else None
        position = frames["video_id"].map(order).to_numpy()
        frames = frames.iloc[np.argsort(position, kind="stable")].reset_index(drop=True)
        write_frames(frames, out / "frames.parquet", config=extract)
        done = frames_to_windows(frames, windows.recipe(clean))
        write_windows(done.windows, out, meta={
            "schema": WINDOWS_SCHEMA_VERSION, "windows": dataclasses.asdict(windows),
            "clean": dataclasses.asdict(clean), "cleaning": done.cleaning.to_dict(),
            "extract": config_to_dict(extract), "feature_models": feature_models(extract),
            "features_version": FEATURES_VERSION, "n_items": len(items), "n_failures": len(failures)})
    return DatasetResult(out, len(items), len(items) - skipped - len(failures), skipped,
                         pd.DataFrame(failures, columns=FAILURE_COLUMNS), n_with_face, size)


def _current_columns(frames: pd.DataFrame, items: list[MediaItem]) -> pd.DataFrame:
    """``frames`` with each item's manifest columns (labels, subject...) as the manifest says now: a part made
    before the manifest was relabelled holds the old values, and the extraction itself does not depend on them."""
    rows = {item.video_id: {k: v for k, v in item.extra.items() if k != ITEM_FOCAL} for item in items}
    columns = list(dict.fromkeys(k for values in rows.values() for k in values))
    if not columns:
        return frames
    current = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    ids = frames["video_id"]
    return frames.assign(**{c: ids.map(current[c]).to_numpy() for c in columns})


#: The parts of ``windows.meta.json`` that say how a table was made (a model records them: train/serve parity).
SETTINGS_KEYS = ("windows", "clean", "extract", "import", "feature_models", "features_version")


@dataclass(frozen=True)
class ImportedDataset:
    """What :func:`import_dataset` wrote into ``out_dir``: the import's accounting (``imported``: frames, failures,
    rows kept and dropped), and the windows (None when no file could be imported)."""

    out_dir: Path
    imported: ImportResult
    windows: pd.DataFrame | None

    def to_dict(self) -> dict[str, object]:
        return {**self.imported.to_dict(), **({} if self.windows is None else {"n_windows": len(self.windows)}),
                "out": str(self.out_dir)}


def import_dataset(sources: Iterable[str | Path], out_dir: str | Path, *, tool: str, fps: float | None = None,
                   frame_size: tuple[int, int] | None = None, focal_px: float | None = None,
                   clean: CleanConfig | None = None, windows: WindowConfig | None = None) -> ImportedDataset:
    """Another tool's per-frame CSVs (OpenFace, Py-Feat; or a manifest naming them) -> ``out_dir`` with the same
    tables :func:`build_dataset` writes: ``failures.csv``, ``frames.parquet`` (+ sidecar, with the import's
    accounting), ``windows.parquet`` (+ sidecar). What ``geoengage import openface|pyfeat`` runs.

    The import itself is :func:`geoengage.importers.import_tables` (``tool``, ``fps``, ``frame_size``, ``focal_px``
    as there); the frames are then cleaned with ``clean`` and windowed with ``windows``, whose feature set gains the
    tool's own signals (:func:`geoengage.importers.imported_feature_set`). Where no file could be imported only
    ``failures.csv`` is written and ``windows`` is None.
    """

    clean = clean or CleanConfig()
    windows = windows or WindowConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = import_tables(list(sources), tool=tool, fps=fps, frame_size=frame_size, focal_px=focal_px)
    outputs.write_table(result.failures, out / "failures.csv")
    summary = result.to_dict()
    if not len(result.frames):
        return ImportedDataset(out, result, None)
    write_frames(result.frames, out / "frames.parquet")
    meta_path = out / "frames.meta.json"
    meta = json.loads(meta_path.read_text())
    outputs.write_text(meta_path, json.dumps({**meta, "import": {"tool": tool, **summary}}, indent=2, default=str))
    features = imported_feature_set(result.frames, windows.feature_set)
    done = frames_to_windows(result.frames, dataclasses.replace(windows.recipe(clean), features=features))
    write_windows(done.windows, out, meta={"schema": WINDOWS_SCHEMA_VERSION, "windows": dataclasses.asdict(windows),
                                           "feature_set": features.columns, "clean": dataclasses.asdict(clean),
                                           "cleaning": done.cleaning.to_dict(), "import": summary})
    return ImportedDataset(out, result, done.windows)


def read_windows(path: str | Path) -> pd.DataFrame:
    """A ``windows.parquet`` table, with how it was made (its ``windows.meta.json``) in ``attrs["geoengage"]``.

    Raises :class:`~geoengage.exceptions.MediaReadError` naming the file when it is not a readable table.
    """

    path = Path(path)
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise MediaReadError(path, f"cannot be read as a windows parquet table ({err})") from err
    meta_path = path.with_name("windows.meta.json")
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as err:
            raise MediaReadError(meta_path, f"is not JSON ({err})") from err
        table.attrs["geoengage"] = {k: meta[k] for k in SETTINGS_KEYS if k in meta}
        table.attrs["geoengage_meta"] = meta
    return table


def write_windows(table: pd.DataFrame, out: Path, *, meta: dict[str, object]) -> None:
    """Write ``out/windows.parquet`` and ``out/windows.meta.json`` (``meta`` plus the window count), atomically."""
    tmp = out / "windows.parquet.tmp"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, out / "windows.parquet")
    (out / "windows.meta.json.tmp").write_text(json.dumps({**meta, "n_windows": len(table)}, indent=2, default=str))
    os.replace(out / "windows.meta.json.tmp", out / "windows.meta.json")
