"""The notebooks run from top to bottom (few draws), so a notebook that breaks fails CI."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.builders import EPOCH_CSV, ROOT, SHARED, needs_shared

NOTEBOOKS = ROOT / "notebooks"


def run_notebook(name: str, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Execute a notebook in its folder with few draws; return it with outputs."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    monkeypatch.setenv("BAYESCALE_NOTEBOOK_DRAWS", "200")
    monkeypatch.setenv("BAYESCALE_SHARED", str(SHARED))
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def _errors(nb: nbformat.NotebookNode) -> list[str]:
    return [out.get("ename", "") for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


@pytest.mark.slow
@needs_shared(EPOCH_CSV)
def test_chinchilla_replication_notebook_runs(monkeypatch):
    nb = run_notebook("chinchilla_replication.ipynb", monkeypatch)
    assert _errors(nb) == []
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []))
    assert "tokens per parameter" in text


def _texts(nb: nbformat.NotebookNode) -> tuple[str, int]:
    """All text a notebook's code cells printed or displayed, and how many PNG figures."""
    text, figures = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            text += [out.get("text", ""), data.get("text/plain", ""), data.get("text/markdown", "")]
            figures += "image/png" in data
    return "\n".join(text), figures


@pytest.mark.slow
def test_walkthrough_notebook_runs(monkeypatch):
    nb = run_notebook("walkthrough.ipynb", monkeypatch)
    assert _errors(nb) == []
    text, figures = _texts(nb)
    assert "true expected loss" in text  # the planned run's prediction against the truth
    assert "### Risk review" in text and "Verdict:" in text
    assert "N* grows as C^a" in text
    assert "held out: " in text and "baseline (point fit + bootstrap)" in text  # the backtest
    assert figures >= 7
