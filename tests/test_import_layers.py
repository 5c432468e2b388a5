"""The import layers of DESIGN.md hold: costmodels imports nothing of ours; solvers imports only costmodels (its
error types and specs); profiles only costmodels; planner not cli; nothing in the packages imports cli.

Every import statement counts, including those inside functions (lazy imports are still dependencies).
Also: no function in the packages is longer than MAX_FUNCTION_LINES, except the ones listed (to be split)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("cli", "costmodels", "planner", "profiles", "solvers")
ALLOWED = {
    "costmodels": set(),
    "solvers": {"costmodels"},
    "profiles": {"costmodels"},
    "planner": {"costmodels", "solvers", "profiles"},
}
"""package -> the other packages of ours it may import"""


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level package of ours, line) for every import in the file; relative imports stay in the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in OURS:
                found.add((top, node.lineno))
    return found


def violations(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for top, line in sorted(imported_packages(path)):
            if top != package and top not in ALLOWED[package]:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_its_lower_layers(package):
    assert violations(package) == []


def test_the_checker_sees_lazy_and_dotted_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nimport planner.plan as p\n\ndef f():\n    from cli import main\n"
                      "    from . import sibling\n    return main, p\n")
    assert imported_packages(sample) == {("planner", 2), ("cli", 5)}


MAX_FUNCTION_LINES = 80
LONG_FUNCTIONS: dict[str, str] = {}
"""functions known to exceed MAX_FUNCTION_LINES (file:name -> why it is still long); new ones are refused"""


def long_functions() -> dict[str, int]:
    """'file:name' -> lines, for every function over MAX_FUNCTION_LINES in the packages, benchmarks and cli.py."""
    paths = [p for package in (*ALLOWED, "benchmarks") for p in sorted((ROOT / package).rglob("*.py"))]
    out = {}
    for path in [*paths, ROOT / "cli.py"]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    out[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    return out


def test_no_new_function_over_the_line_limit():
    assert sorted(set(long_functions()) - set(LONG_FUNCTIONS)) == []
