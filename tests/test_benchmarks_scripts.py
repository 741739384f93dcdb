"""The research scripts of ``benchmarks/``: each documents its command, imports without side effects, and runs
end to end on tiny inputs (``--tiny``) in a subprocess."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from .conftest import ROOT

BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


def test_the_scripts_are_found():
    assert {"lot_row", "coverage_check", "wormhole_row", "student_diagnosis"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_documents_its_command_and_imports_without_running(name, monkeypatch):
    path = BENCHMARKS / f"{name}.py"
    text = path.read_text()
    assert f"python benchmarks/{name}.py" in text and "--tiny" in text
    monkeypatch.setattr(sys, "argv", ["nothing", "--no-such-option"])  # read at import: it would fail here
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.main) and module.__doc__


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_runs_on_tiny_inputs(name, tmp_path):
    """In a scratch folder: what a script writes next to its caller (a work folder) lands there."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), "--tiny"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), proc.stderr[-3000:]
