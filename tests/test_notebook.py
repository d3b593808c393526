"""``notebooks/inspect_store.ipynb`` runs top to bottom on a real store (a Jupyter kernel through
nbclient) and shows the statistics plots and the Figure 2 pictures."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from tests.tools.tiny_store import make_tiny_store

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "inspect_store.ipynb"


def _images(outputs) -> list[np.ndarray]:
    """Decoded PNG outputs of a cell (RGB uint8)."""
    images = []
    for output in outputs:
        data = output.get("data", {}).get("image/png")
        if data:
            pixels = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
            images.append(pixels)
    return images


@pytest.mark.slow
def test_notebook_runs_and_shows_plots_and_figure2(small_demo, tmp_path_factory, tmp_path):
    tiny = make_tiny_store(small_demo, tmp_path_factory)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1, "the notebook has one cell tagged 'parameters'"
    parameters[0].source = f"STORE = {tiny.url!r}\nCACHE = {tiny.cache!r}\nEXAMPLE = 1\n"

    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    code = [c for c in notebook.cells if c.cell_type == "code"]
    plots = [c for c in code if "plt.subplots" in c.source]
    figure2 = [c for c in code if "show.render(view" in c.source]
    assert plots and figure2
    (plot,) = _images(plots[0].outputs)
    assert plot.std() > 5  # drawn axes and bars, not a blank canvas
    (figure,) = _images(figure2[0].outputs)
    assert figure.shape[1] >= 3 * 224 and figure.std() > 5
    # The dataset cell lists the store's variables with their units.
    listing = "".join(o.get("text", "") for c in code if "data_vars" in c.source for o in c.outputs)
    assert "flow" in listing and "joints3d" in listing
