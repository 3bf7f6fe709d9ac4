"""Faults a long extraction meets: a damaged part, a full disk, a vanished or changed input, two runs in one folder, a
damaged model file. Each case: the message, the exit status, finished parts intact, and a re-run that completes with
tables identical to an undisturbed run."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pandas as pd
import pytest

from geoengage.cli import main
from geoengage.datasets import sample_image

EXTRACT = ["--jobs", "1", "--no-expression", "--no-gaze-cnn", "--window-s", "1", "--step-s", "1"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six photos of the astronaut, each shifted and turned a little, in two sub-folders (two parts: --chunk-size)."""
    root = tmp_path_factory.mktemp("photos")
    image = sample_image()
    for k in range(6):
        matrix = cv2.getRotationMatrix2D((256.0, 256.0), 4.0 * (k - 3), 1.0)
        matrix[:, 2] += (6 * k, -4 * k)
        folder = root / f"set{k // 3}"
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"p{k}.png"), cv2.warpAffine(image, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT))
    return root


def _extract(source: Path, out: Path, *extra: str) -> int:
    return main(["-q", "extract", str(source), "--out", str(out), *EXTRACT, *extra])


@pytest.fixture(scope="module")
def undisturbed(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("undisturbed")
    assert _extract(photos, out, "--chunk-size", "3") == 0
    return out


def _same_tables(out: Path, reference: Path) -> None:
    for name in ("frames.parquet", "windows.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(reference / name))


def _parts(out: Path) -> list[Path]:
    return sorted(out.glob("parts/*/*.parquet"))


def test_a_damaged_part_is_set_aside_and_extracted_again(photos, undisturbed, tmp_path, caplog) -> None:
    out = tmp_path / "out"
    shutil.copytree(undisturbed, out)
    damaged, kept = _parts(out)
    kept_bytes = kept.read_bytes()
    damaged.write_bytes(damaged.read_bytes()[:500])  # as a bad copy or a disk error leaves it
    with caplog.at_level(logging.WARNING):
        assert _extract(photos, out, "--chunk-size", "3") == 0
    lines = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(lines) == 1 and str(damaged) in lines[0] and "\n" not in lines[0]
    aside = list((damaged.parent / "set_aside").glob(f"{damaged.stem}.*.parquet"))
    assert len(aside) == 1 and aside[0].stat().st_size == 500  # moved aside, not deleted
    assert kept.read_bytes() == kept_bytes
    _same_tables(out, undisturbed)


def test_a_part_that_lost_rows_is_not_trusted(photos, undisturbed, tmp_path, caplog) -> None:
    """A part that reads but holds fewer rows than its record says (rewritten by hand, a tool, a merge)."""
    out = tmp_path / "out"
    shutil.copytree(undisturbed, out)
    part = _parts(out)[0]
    table = pd.read_parquet(part)
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table.iloc[1:], preserve_index=False)
    pq.write_table(arrow.replace_schema_metadata(pq.read_schema(part).metadata), part)
    with caplog.at_level(logging.WARNING):
        assert _extract(photos, out, "--chunk-size", "3") == 0
    assert any("rows where 3 were written" in r.getMessage() for r in caplog.records)
    _same_tables(out, undisturbed)


def test_a_changed_input_is_extracted_again(photos, undisturbed, tmp_path, caplog) -> None:
    source, out = tmp_path / "photos", tmp_path / "out"
    shutil.copytree(photos, source)
    assert _extract(source, out, "--chunk-size", "3") == 0
    changed = source / "set1" / "p4.png"
    cv2.imwrite(str(changed), cv2.flip(cv2.imread(str(changed)), 1))  # replaced by another picture
    with caplog.at_level(logging.WARNING):
        assert _extract(source, out, "--chunk-size", "3") == 0
    assert any("changed since it was extracted" in r.getMessage() and str(changed) in r.getMessage()
               for r in caplog.records)
    frames = pd.read_parquet(out / "frames.parquet").set_index("video_id")
    before = pd.read_parquet(undisturbed / "frames.parquet").set_index("video_id")
    flipped = "set1/p4.png"
    assert frames.loc[flipped, "lm30_x_px"] != pytest.approx(before.loc[flipped, "lm30_x_px"], abs=5)  # new values
    assert frames.drop(flipped).lm30_x_px.to_numpy() == pytest.approx(before.drop(flipped).lm30_x_px.to_numpy())


def test_a_copied_data_set_is_not_extracted_again(photos, tmp_path, caplog) -> None:
    """Inputs copied with new modification times (cp without -p, a fresh checkout of shared data) but the same
    content keep their parts; one rewritten with the same size does not."""
    source, out = tmp_path / "photos", tmp_path / "out"
    shutil.copytree(photos, source)
    assert _extract(source, out, "--chunk-size", "3") == 0
    parts = {p: p.stat().st_mtime_ns for p in _parts(out)}
    for image in source.rglob("*.png"):
        os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**12))
    with caplog.at_level(logging.WARNING):
        assert _extract(source, out, "--chunk-size", "3") == 0
    assert not any("changed since it was extracted" in r.getMessage() for r in caplog.records)
    assert {p: p.stat().st_mtime_ns for p in _parts(out)} == parts  # no part rewritten
    changed = source / "set0" / "p1.png"
    data = bytearray(changed.read_bytes())
    data[-20] ^= 0xFF  # same size, other content
    changed.write_bytes(bytes(data))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _extract(source, out, "--chunk-size", "3")
    assert any("changed since it was extracted" in r.getMessage() and str(changed) in r.getMessage()
               for r in caplog.records)


def test_an_input_that_vanishes_after_listing_is_a_recorded_failure(photos, tmp_path, monkeypatch) -> None:
    source, out = tmp_path / "photos", tmp_path / "out"
    shutil.copytree(photos, source)
    from geoengage import dataset, media

    listed = media.list_media(source)

    def list_then_delete(path):  # the file goes between listing and reading
        (source / "set0" / "p1.png").unlink()
        return listed

    monkeypatch.setattr(dataset, "list_media", list_then_delete)
    assert _extract(source, out, "--chunk-size", "3") == 1  # the exit status says some items failed
    failures = pd.read_csv(out / "failures.csv")
    assert failures.video_id.tolist() == ["set0/p1.png"] and "p1.png" in failures.message.iloc[0]
    assert pd.read_parquet(out / "frames.parquet").video_id.nunique() == 5


def test_a_full_disk_is_one_line_keeps_finished_parts_and_resumes(photos, undisturbed, tmp_path, monkeypatch,
                                                                     caplog) -> None:
    """The second part's write fails with ENOSPC: one line naming the file and how to resume, a non-zero status, the
    first part intact; a re-run completes with the undisturbed tables."""
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    real = pq.write_table
    calls = {"n": 0}

    def fill_up(table, where, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(where))
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", fill_up)
    with caplog.at_level(logging.ERROR):
        status = _extract(photos, out, "--chunk-size", "3")
    assert status == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "No space left on device" in errors[0] and "run the same command again" in errors[0]
    assert len(_parts(out)) == 1 and not list(out.glob("parts/*/*.tmp"))
    assert not (out / ".geoengage.lock").exists()
    monkeypatch.setattr(pq, "write_table", real)
    assert _extract(photos, out, "--chunk-size", "3") == 0
    _same_tables(out, undisturbed)


def test_a_real_full_filesystem(photos, tmp_path) -> None:
    """A 300 KB tmpfs as the output folder (where this test may mount one): one line, non-zero status."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.decode().strip()[:80]}); the ENOSPC test covers it")
    try:
        result = subprocess.run([sys.executable, "-m", "geoengage", "-q", "extract", str(photos), "--out",
                                 str(mount / "out"), *EXTRACT], capture_output=True, text=True, check=False)
        assert result.returncode == 2
        assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_corrupt_video_is_reported_in_geoengages_words_only(photos, tmp_path) -> None:
    """FFmpeg's and OpenCV's own lines about a file geoengage reports itself stay out of the output (``-v`` shows
    FFmpeg's); the failure is one line naming the file, and the batch goes on."""
    source = tmp_path / "in"
    shutil.copytree(photos / "set0", source)
    (source / "cut.mp4").write_bytes(b"\x00\x01 not really a video" * 50)
    result = subprocess.run([sys.executable, "-m", "geoengage", "-q", "extract", str(source), "--out",
                             str(tmp_path / "out"), *EXTRACT], capture_output=True, text=True, check=False)
    assert result.returncode == 1  # some items failed
    lines = result.stderr.strip().splitlines()
    assert any("cut.mp4: cannot be opened as a video" in line for line in lines)
    assert not [line for line in lines if "moov atom" in line or "[ WARN" in line], lines
    assert len(pd.read_parquet(tmp_path / "out" / "frames.parquet")) == 3


def test_a_read_only_output_folder_is_one_line(photos, tmp_path, caplog) -> None:
    if os.geteuid() == 0:  # root writes into read-only folders: make the write fail as the kernel would say it
        from unittest import mock

        with mock.patch("geoengage.dataset._output_lock", side_effect=PermissionError(
                errno.EACCES, "Permission denied", str(tmp_path / "ro"))), caplog.at_level(logging.ERROR):
            assert _extract(photos, tmp_path / "ro") == 2
    else:
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o500)
        with caplog.at_level(logging.ERROR):
            assert _extract(photos, tmp_path / "ro") == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Permission denied" in errors[0] and "could not be written" in errors[0]


def test_two_runs_into_one_folder(photos, undisturbed, tmp_path, caplog) -> None:
    """A lock held by a live process refuses the second run; a lock left by a killed one is taken over."""
    out = tmp_path / "out"
    out.mkdir()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (out / ".geoengage.lock").write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename,
                                                        "started": "now"}))
        with caplog.at_level(logging.ERROR):
            assert _extract(photos, out, "--chunk-size", "3") == 2
        assert any(f"pid {sleeper.pid}" in r.getMessage() and "another geoengage run" in r.getMessage()
                   for r in caplog.records)
        assert not (out / "frames.parquet").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # the holder is gone now: a stale lock
        assert _extract(photos, out, "--chunk-size", "3") == 0
    assert any("a lock left by a run that is gone" in r.getMessage() for r in caplog.records)
    assert not (out / ".geoengage.lock").exists()
    _same_tables(out, undisturbed)


def test_a_damaged_engagement_model_file_names_the_file(tmp_path) -> None:
    from geoengage.exceptions import GeoEngageError
    from geoengage.modeling.protocol import load_model
    from geoengage.modeling.train import DEFAULT_MODEL_DIR

    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    (folder / "model.json").write_bytes((folder / "model.json").read_bytes()[:2000])
    expected = json.loads((folder / "model.meta.json").read_text())["model_sha256"]
    with pytest.raises(GeoEngageError) as err:
        load_model(folder)
    assert str(folder / "model.json") in str(err.value) and expected in str(err.value)


def test_the_shipped_model_files_match_their_recorded_hashes_and_a_damaged_one_is_named(tmp_path, monkeypatch) -> None:
    """Every file of PACKAGED_MODELS has the hash recorded for it (so a retrained model updates the record); a
    truncated CNN weights file in the package's place is refused at load, naming the file and the hash."""
    from geoengage.detect import expression, models

    for name in models.PACKAGED_MODELS:
        assert models.packaged_model(name).is_file()
    relative, expected = models.PACKAGED_MODELS["expression_cnn"]
    (tmp_path / relative).write_bytes(expression.EXPRESSION_WEIGHTS.read_bytes()[:4000])
    monkeypatch.setattr(models, "_PACKAGE_MODELS", tmp_path)
    models.packaged_model.cache_clear()
    try:
        from geoengage.exceptions import ModelFileError

        with pytest.raises(ModelFileError) as err:
            expression.load_expression_model(tmp_path / relative)
        assert str(tmp_path / relative) in str(err.value) and expected in str(err.value)
    finally:
        models.packaged_model.cache_clear()


def test_a_relabelled_manifest_gives_the_new_labels_without_extracting_again(photos, tmp_path) -> None:
    """The manifest's columns (labels, subjects) are the manifest's as it is now: a part extracted under the old
    labels keeps its landmarks, and the tables carry the new labels."""
    images = sorted(photos.rglob("*.png"))
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"path": [str(p) for p in images], "label": ["bored"] * len(images)}).to_csv(manifest, index=False)
    out = tmp_path / "out"
    assert _extract(manifest, out, "--chunk-size", "3") == 0
    parts = {p: p.stat().st_mtime_ns for p in _parts(out)}
    pd.DataFrame({"path": [str(p) for p in images], "label": ["engaged"] * len(images)}).to_csv(manifest, index=False)
    assert _extract(manifest, out, "--chunk-size", "3") == 0
    assert {p: p.stat().st_mtime_ns for p in _parts(out)} == parts  # nothing extracted again
    assert set(pd.read_parquet(out / "frames.parquet")["label"]) == {"engaged"}
    assert set(pd.read_parquet(out / "windows.parquet")["label"]) == {"engaged"}
