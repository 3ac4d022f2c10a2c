"""docs/tutorial.ipynb runs end to end (nbclient, a real Jupyter kernel) on the embedded data, one epoch per model on
its first 2,000 / 500 digits (`VAELAB_TUTORIAL_EPOCHS`, `VAELAB_TUTORIAL_DATA`, as the notebook says), and is stored
without outputs."""

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "tutorial.ipynb"
SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_notebook_is_stored_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.mark.slow
@pytest.mark.e2e
def test_the_tutorial_runs_end_to_end(tmp_path, monkeypatch, digits_npz):
    monkeypatch.setenv("VAELAB_TUTORIAL_EPOCHS", "1")
    monkeypatch.setenv("VAELAB_TUTORIAL_DATA", str(digits_npz(2000, 500)))
    monkeypatch.setenv("VAELAB_TUTORIAL_OUT", str(tmp_path / "runs"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))  # this checkout
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 12  # every figure of the walk-through was drawn
    text = "".join(o.get("text", "") for o in outputs)
    assert "conv z=10" in text and "of draws in holes" in text
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "conv-z10",
        "conv-z2",
        "gan-conv-z10",
        "mlp-z10",
        "mlp-z2",
    ]
