"""House rules that a reader can rely on: short modules, short functions, no import cycle, a clean package."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wassembed"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _functions(path: Path):
    """(name, first line, length) of every function; the length counts code, decorators included, and not
    the docstring (numpydoc parameters and examples belong with the function, however long)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            n = node.end_lineno - start + 1
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                n -= first.end_lineno - first.lineno + 1
            yield node.name, node.lineno, n


def test_no_module_over_the_limit():
    long = {p.relative_to(PACKAGE.parent).as_posix(): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by responsibility): {long}"


def test_no_function_over_the_limit():
    long = [f"{p.relative_to(PACKAGE.parent).as_posix()}:{line} {name} ({n} lines)"
            for p in _modules() for name, line, n in _functions(p) if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (make named steps): {long}"


def test_the_checker_sees_long_functions(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    f = tmp_path / "m.py"
    f.write_text(f'def long():\n    """Doc.\n\n    More.\n    """\n{body}\n')
    assert [n for _, _, n in _functions(f)] == [MAX_FUNCTION_LINES + 2]


@pytest.mark.parametrize("sub", ["data", "exact", "nn", "learn", "serve", "index", "cli", "bench", "demo"])
def test_every_subpackage_has_a_documented_face(sub):
    init = PACKAGE / sub / "__init__.py"
    assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), f"{init} needs a docstring"


KIND_CLASSES = {"HistogramSet", "PointCloudSet"}


def _kind_tests(path: Path):
    """Lines of ``isinstance(x, HistogramSet | PointCloudSet | (…))`` in a module: a kind of data told apart by its
    class, where the stages call the DataSet protocol (wassembed/data/_dataset.py) and look up ``data.kind``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
            names = {n.id if isinstance(n, ast.Name) else getattr(n, "attr", None) for n in ast.walk(node.args[1])}
            if names & KIND_CLASSES:
                yield node.lineno


def test_only_data_tells_the_kinds_of_data_apart_by_class():
    found = [f"{p.relative_to(PACKAGE.parent).as_posix()}:{line}" for p in _modules()
             if "data" != p.relative_to(PACKAGE).parts[0] for line in _kind_tests(p)]
    assert not found, f"isinstance tests of HistogramSet/PointCloudSet outside wassembed/data/ (use DataSet): {found}"


def test_the_kind_checker_sees_isinstance(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f(x):\n    return isinstance(x, (int, data.PointCloudSet)) or isinstance(x, HistogramSet)\n")
    assert list(_kind_tests(f)) == [2, 2]
