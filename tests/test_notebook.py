"""The notebooks run top to bottom (in their reduced PURERL_QUICK mode)."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks", "quickstart.ipynb")


def test_quickstart_notebook_executes(monkeypatch, tmp_path):
    monkeypatch.setenv("PURERL_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "final evaluation return per seed" in outputs
    assert "'mean':" in outputs  # the runner's summary printed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors


def test_sweep_and_compare_notebook_executes(monkeypatch, tmp_path):
    """The sweep → compare → render notebook runs top to bottom and shows each step's result."""
    monkeypatch.setenv("PURERL_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = os.path.join(os.path.dirname(NOTEBOOK), "sweep_and_compare.ipynb")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") for o in outputs)
    assert "2 grid points × 2 seeds in one program" in text and "| dqn | 2 |" in text
    assert "'frames': 50" in text and "dqn CartPole-v1" in text
    kinds = [k for o in outputs for k in o.get("data", {})]
    assert kinds.count("image/png") == 3 and kinds.count("image/gif") == 1
