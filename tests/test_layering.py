"""Data flows one way: a module never imports from a module downstream of it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ganaug"

# Position in the flow: a module may import only modules of a lower rank.
RANK = {
    "_version": 0, "_io": 0,
    "data": 1,
    "models": 2, "losses": 2, "augment": 2, "classifier": 2,
    "trainer": 3,
    "checkpoint": 4, "grid": 4,
    "sampling": 5,
    "gan": 6,
    "datasets": 7, "sklearn": 7,
    "metrics": 8,
    "report": 9,
    "cli": 10, "__main__": 11,
    "__init__": 12,
}


def _internal_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ganaug."):
            found.add(node.module.split(".")[1])
    return found


def test_every_module_has_a_rank():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules <= set(RANK), f"give these modules a place in the flow: {modules - set(RANK)}"


@pytest.mark.parametrize("module", sorted(p.stem for p in PACKAGE.glob("*.py")))
def test_no_upstream_module_imports_downstream(module):
    for imported in _internal_imports(PACKAGE / f"{module}.py"):
        assert RANK[imported] < RANK[module] or module == "__init__", (
            f"ganaug.{module} imports ganaug.{imported}, which is downstream of it"
        )
