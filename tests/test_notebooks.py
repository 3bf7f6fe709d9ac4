"""Every notebook in notebooks/ runs from top to bottom (so the walkthrough never goes stale)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "predicted" in text and "report.html" in text
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 5  # face, timelines, reasons, set-up audit: drawn by geoengage.plot when it runs
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    reaching_in = [line for line in code.splitlines() if "from geoengage." in line or "import geoengage." in line]
    assert reaching_in == ["from geoengage.testing import synthetic_windows"]  # the public API only
