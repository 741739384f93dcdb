"""Packaging: the wheel holds every subpackage, the core needs no torch, and a core install works.

"No torch" is simulated in a subprocess by an import hook that makes ``torch`` and ``safetensors`` raise
``ModuleNotFoundError`` as if they were not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from wassembed._deps import POT_EXACT_ONLY_ENV

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("data", "exact", "nn", "learn", "serve", "index", "cli", "bench", "demo")
ENV = {k: v for k, v in os.environ.items() if k not in POT_EXACT_ONLY_ENV}

#: runs the command line (argv after the script name) with torch and safetensors unimportable
WITHOUT_TORCH = '''
import sys
from importlib.abc import MetaPathFinder


class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "safetensors"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
if sys.argv[1:2] == ["--python"]:
    exec(sys.argv[2])
else:
    from wassembed.cli import main

    main(sys.argv[1:], prog_name="wassembed")
'''


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the build leaves nothing in the work tree)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "wassembed", src / "wassembed", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (whl,) = (tmp / "dist").glob("wassembed-*.whl")
    return whl


def test_wheel_holds_every_subpackage_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f"wassembed/{s}/__init__.py" for s in SUBPACKAGES if f"wassembed/{s}/__init__.py" not in names]
    assert not missing, f"subpackages missing from the wheel: {missing}"
    assert "wassembed/py.typed" in names and "wassembed/__main__.py" in names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]


def test_wheel_core_requires_no_torch(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = re.findall(r"^Requires-Dist: (.+)$", meta, flags=re.M)
    core = [r for r in requires if "extra ==" not in r]
    core_names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in core}
    assert core_names == {"numpy", "scipy", "pot", "click", "tqdm", "scikit-learn", "pylmcf"}, core
    learn = [r for r in requires if 'extra == "learn"' in r]
    # torch and safetensors for models; GeomLoss for the point-cloud reconstruction loss (it needs torch)
    assert {re.split(r"[<>=!~ ;]", r, maxsplit=1)[0] for r in learn} == {"torch", "safetensors", "geomloss"}, learn
    extras = set(re.findall(r"^Provides-Extra: (.+)$", meta, flags=re.M))
    assert {"learn", "plot", "dask", "test", "lint", "all"} <= extras


def _without_torch(tmp_path: Path, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    script = tmp_path / "without_torch.py"
    script.write_text(WITHOUT_TORCH)
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=tmp_path)


def test_exact_stage_works_without_torch(tmp_path):
    c = tmp_path / "c"
    r = _without_torch(tmp_path, "precompute", "digits", "--out", c, "--pairs", 120, "--chunk-size", 40,
                       "--workers", 2, "--quiet", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total_in_cache"] == 120
    r = _without_torch(tmp_path, "cache", "export", c, tmp_path / "e.npz")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "e.npz")["value"].size == 120
    r = _without_torch(tmp_path, "cache", "verify", c, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stderr
    r = _without_torch(tmp_path, "--help")
    assert r.returncode == 0 and "train" in r.stdout, r.stderr


@pytest.mark.parametrize("args", [
    ("train", "{c}", "--out", "{m}"),
    ("embed", "{c}", "digits"),
    ("bench", "serve", "--data", "digits"),
    ("demo", "--tiny", "--out", "{m}"),
])
def test_learning_commands_say_what_to_install(tmp_path, args):
    (tmp_path / "c").mkdir()
    r = _without_torch(tmp_path, *(a.format(c=tmp_path / "c", m=tmp_path / "m") for a in args))
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "wassembed[learn]"' in lines[0] and "needs torch" in lines[0], r.stderr
    assert not (tmp_path / "m").exists()


def test_learning_commands_show_help_without_torch(tmp_path):
    r = _without_torch(tmp_path, "train", "--help")
    assert r.returncode == 0 and "Usage: wassembed train" in r.stdout, r.stderr


def test_python_api_says_what_to_install(tmp_path):
    code = ("import wassembed\n"
            "try:\n    wassembed.train\nexcept wassembed.errors.MissingDependencyError as exc:\n    print(exc)\n")
    r = _without_torch(tmp_path, "--python", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ('training and serving models needs torch, which is not installed; '
                                'fix: pip install "wassembed[learn]"')
