import os
import subprocess
import sys

import pytest

from wassembed._deps import POT_EXACT_ONLY_ENV

#: this process's environment without the variables that keep POT from importing torch
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in POT_EXACT_ONLY_ENV}


def _run(code: str, **kw) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=CLEAN_ENV, **kw).stdout.strip()


def test_import_is_light_and_cli_exact_stage_needs_no_torch():
    assert _run("import sys, wassembed, wassembed.cli; print('torch' in sys.modules)") == "False"
    code = ("import sys; from click.testing import CliRunner; from wassembed.cli import main; "
            "r = CliRunner().invoke(main, ['cache', '--help']); print(r.exit_code, 'torch' in sys.modules)")
    assert _run(code) == "0 False"


def test_import_wassembed_leaves_pot_backends_alone():
    """Library users who want POT's torch backend keep it: only the exact-stage commands switch it off."""
    code = ("import os, wassembed, wassembed.exact, wassembed.cli, wassembed.cli._common; "
            f"print(sorted(k for k in {sorted(POT_EXACT_ONLY_ENV)!r} if k in os.environ))")
    assert _run(code) == "[]"


def test_precompute_never_imports_torch(tmp_path):
    """`wassembed precompute` (pool workers included) runs POT without torch, even where torch is installed."""
    pytest.importorskip("torch")  # the point: torch is installed, and still not imported
    out = tmp_path / "c"
    code = f"""
import sys
from wassembed.cli import main
try:
    main(["precompute", "digits", "--out", {str(out)!r}, "--pairs", "200", "--chunk-size", "50", "--workers", "2",
          "--quiet"])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
import ot
print("ot" in sys.modules, "torch" in sys.modules, [type(b).__name__ for b in ot.backend.get_backend_list()])
"""
    assert _run(code).splitlines()[-1] == "True False ['NumpyBackend']"
    assert (out / "manifest.json").exists()


def test_spawned_pool_worker_imports_pot_without_torch():
    """A worker started fresh (spawn) gets the exact-stage environment before it imports POT."""
    code = ("import sys, numpy as np; from wassembed.exact._executors import _init_worker, _run_task, ExactJob; "
            "_init_worker(ExactJob('pairs', 'histograms', (np.eye(2), np.zeros(2, np.int64), np.ones((2, 2)) - "
            "np.eye(2)), 2, 100)); "
            "print(_run_task((np.array([0]), np.array([1]))).tolist(), 'ot' in sys.modules, 'torch' in sys.modules)")
    assert _run(code) == "[1.0] True False"


def test_submodule_imports_do_not_shadow_functions():
    """No module shares a name with a public function: importing every module leaves them functions."""
    code = ("import importlib, inspect, pkgutil, wassembed; "
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(wassembed.__path__, 'wassembed.') "
            "if m.name != 'wassembed.__main__']; "
            "print(all(inspect.isfunction(getattr(wassembed, n)) "
            "for n in ('precompute', 'train', 'load', 'evaluate')))")
    assert _run(code) == "True"


def test_version_flag():
    from wassembed import __version__

    out = subprocess.run([sys.executable, "-m", "wassembed", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout


def test_pot_compile_warning_is_filtered_by_the_test_configuration():
    """`make test` installs without byte-compiling, so the first import of POT compiles ot/datasets.py, whose
    docstring has an invalid escape sequence; pyproject's filterwarnings (active in this test) silence it."""
    import importlib.util
    import warnings
    from pathlib import Path

    src = Path(importlib.util.find_spec("ot").origin).with_name("datasets.py")
    code = src.read_text()
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        compile(code, str(src), "exec")
    if not any("invalid escape sequence" in str(w.message) for w in raw):
        pytest.skip("this POT compiles without the warning")
    with warnings.catch_warnings(record=True) as seen:  # keeps the filters pytest installed for this test
        compile(code, str(src), "exec")
    assert not [str(w.message) for w in seen if "invalid escape sequence" in str(w.message)]
    with warnings.catch_warnings(record=True) as ours:  # the filter is scoped to POT's files
        compile("'\\d'", "wassembed/x.py", "exec")
    assert any("invalid escape sequence" in str(w.message) for w in ours)


def test_every_local_cluster_the_project_starts_has_no_fixed_dashboard_port():
    """A LocalCluster serves its dashboard on port 8787 unless told otherwise, and a second one (another test's
    cluster, another suite on the machine) then warns "Port 8787 is already in use". ``dashboard_address=None``
    does not help (it means Dask's default, ":8787"); ``":0"`` picks a free port. The package, its tests and
    its examples pass ``dashboard_address=":0"`` to every LocalCluster they start."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    calls, values = [], []
    for path in [*root.glob("wassembed/**/*.py"), *root.glob("tests/*.py"), *root.glob("examples/*.py")]:
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(func, "id", getattr(func, "attr", None)) == "LocalCluster":
                names = {k.arg for k in node.keywords}
                ok = "dashboard_address" in names or (None in names and "dashboard_address" in text)
                calls.append((f"{path.relative_to(root)}:{node.lineno}", ok))
            if isinstance(node, ast.keyword) and node.arg == "dashboard_address":
                values.append((f"{path.relative_to(root)}:{node.value.lineno}", ast.unparse(node.value)))
            if isinstance(node, ast.Dict):
                pairs = zip(node.keys, node.values)
                values += [(f"{path.relative_to(root)}:{k.lineno}", ast.unparse(v)) for k, v in pairs
                           if isinstance(k, ast.Constant) and k.value == "dashboard_address"]
    assert calls and all(ok for _, ok in calls), [where for where, ok in calls if not ok]
    bad = [f"{where}: dashboard_address={v}" for where, v in values if v not in ("':0'", '":0"')]
    assert not bad, bad
