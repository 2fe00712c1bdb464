"""examples/tour.ipynb runs top to bottom with small settings, so it never rots."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "tour.ipynb"


def outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == kind]


def test_stored_notebook_has_its_outputs():
    """The repository shows the pictures: every code cell ran, in order, without error."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    kinds = [o["output_type"] for c in code for o in c["outputs"]]
    assert "error" not in kinds
    images = [o for c in code for o in c["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the triplet, the loss curve, sub-pixel vs nearest


@pytest.mark.slow
def test_notebook_runs_with_small_settings(tmp_path, monkeypatch):
    """What the notebook produces, not how fast: speed belongs in benchmarks/."""
    monkeypatch.setenv("SRGAN_TOUR_QUICK", "1")
    monkeypatch.setenv("SRGAN_TOUR_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    nb = nbformat.read(NOTEBOOK, as_version=4)  # executed in memory; the file is not changed
    # run where the notebook lives in the repository, so that ROOT finds examples/ and docs/
    nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",  # per cell: only a hang
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "".join(o.text for o in outputs(nb, "stream"))
    assert "quick settings" in text
    assert "stopped at step" in text and "resuming tour_x4" in text  # --time-limit, --resume
    assert "| Dataset | bicubic |" in text  # the benchmark table
    assert "sub-pixel" in text and "nearest" in text
    assert len([o for o in outputs(nb, "display_data") if "image/png" in o.data]) >= 3
    assert (tmp_path / "work" / "tour_x4" / "generator.safetensors").exists()
    assert not os.path.exists(NOTEBOOK.parent / "tour_x4")
