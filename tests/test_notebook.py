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


def test_stored_outputs_come_from_the_shipped_models_and_show_no_machine_paths():
    """The stored outputs scored the old weights (Set5 28.94 against the shipped 31.33) and
    showed the building machine's paths: the srresnet_x4 score is the README's, and the only
    absolute paths are the tour's own work folder."""
    import re

    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) + "".join(
        "".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
        for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    readme = (NOTEBOOK.parents[1] / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith("| `srresnet_x4` (")]
    shipped = row.split("|")[2].strip().strip("*")  # Set5 PSNR / SSIM, as the README has it
    scored = next(line for line in text.splitlines() if line.startswith("| Set5 (5) |"))
    assert scored.split("|")[-2].strip() == shipped, (scored, shipped)
    paths = set(re.findall(r"(?<![\w.])/(?:[\w.-]+/)*[\w.-]+", text))
    assert {p for p in paths if not p.startswith("/tmp/srgan-tour")} == set(), paths


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
