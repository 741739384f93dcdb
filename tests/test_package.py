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
    code = ("import wassembed, wassembed.precompute, wassembed.train; "
            "print(callable(wassembed.precompute), callable(wassembed.train))")
    assert _run(code) == "True True"


def test_version_flag():
    from wassembed import __version__

    out = subprocess.run([sys.executable, "-m", "wassembed.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout
