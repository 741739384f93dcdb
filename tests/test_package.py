import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_is_light_and_cli_exact_stage_needs_no_torch():
    assert _run("import sys, wassembed, wassembed.cli; print('torch' in sys.modules)") == "False"
    code = ("import sys; from click.testing import CliRunner; from wassembed.cli import main; "
            "r = CliRunner().invoke(main, ['cache', '--help']); print(r.exit_code, 'torch' in sys.modules)")
    assert _run(code) == "0 False"


def test_submodule_imports_do_not_shadow_functions():
    """No module shares a name with a public function: importing every module leaves them functions."""
    code = ("import importlib, inspect, pkgutil, wassembed; "
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(wassembed.__path__, 'wassembed.') "
            "if m.name != 'wassembed.__main__']; "
            "print(all(inspect.isfunction(getattr(wassembed, n)) for n in ('precompute', 'train', 'load', 'evaluate')))")
    assert _run(code) == "True"


def test_version_flag():
    from wassembed import __version__

    out = subprocess.run([sys.executable, "-m", "wassembed", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout
