"""The HTML report renders in headless Chromium: a screenshot shows a page with content, not a blank one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from geoengage.cli import main
from geoengage.testing import synthetic_windows

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_screenshot_is_not_empty(rng, tmp_path: Path) -> None:
    windows = tmp_path / "windows.parquet"
    synthetic_windows(rng, classes=3).to_parquet(windows)
    assert main(["-q", "evaluate", str(windows), "--target", "label", "--n-splits", "3", "--n-boot", "50",
                 "--out", str(tmp_path / "report")]) == 0
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,3000", f"--screenshot={shot}",
                    (tmp_path / "report" / "report.html").as_uri()], check=True, timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (3000, 1100)
    ink = (image.min(axis=2) < 200).mean(axis=1)  # share of dark pixels in each row
    assert (ink[:200] > 0.01).any()  # the title and protocol at the top
    assert (ink > 0.01).sum() > 600  # tables and figures fill the page
    colour = np.abs(image[:, :, 0].astype(int) - image[:, :, 2].astype(int)) > 60
    assert colour.sum() > 5000  # the embedded plots (coloured curves, heat map) are drawn
