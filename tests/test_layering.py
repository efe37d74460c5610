"""Data flows one way: a module never imports from a module downstream of it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ganaug"

# Position in the flow: a module may import only modules of a lower rank. A subpackage
# (cli/, checkpoint/) has one rank; its files may import each other.
RANK = {
    "_version": 0, "_io": 0, "distributed": 1,
    "readers": 10, "data": 11,
    "models": 20, "losses": 20, "augment": 20, "classifier": 20,
    "params": 25, "fastpath": 26, "ema": 27, "pretrain": 28,
    "trainer": 30,
    "checkpoint": 40, "grid": 40,
    "sampling": 50,
    "gan": 60,
    "anchors": 62, "synthetic": 65, "selection": 67,
    "datasets": 70, "sklearn": 70, "export": 70, "split_batchnorm": 72,
    "metrics": 80,
    "report": 90,
    "run": 95,
    "cli": 100, "__main__": 110,
    "__init__": 120,
}


def _top_level_units() -> dict[str, list[Path]]:
    """{module or subpackage name: its files}."""
    units = {p.stem: [p] for p in PACKAGE.glob("*.py")}
    for init in PACKAGE.glob("*/__init__.py"):
        units[init.parent.name] = sorted(init.parent.rglob("*.py"))
    return units


def _internal_imports(path: Path) -> set[str]:
    """Top-level ganaug modules that ``path`` imports, seen from outside its own subpackage."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for ganaug/x.py, 1 for ganaug/cli/x.py
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level <= depth:
                continue  # a sibling inside the same subpackage
            names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
            found.update(names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ganaug."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("ganaug."))
    return found


def test_every_module_has_a_rank():
    units = set(_top_level_units())
    assert units <= set(RANK), f"give these modules a place in the flow: {units - set(RANK)}"


@pytest.mark.parametrize("unit", sorted(_top_level_units()))
def test_no_upstream_module_imports_downstream(unit):
    for path in _top_level_units()[unit]:
        for imported in _internal_imports(path):
            assert imported in RANK, f"{path.name} imports unknown ganaug.{imported}"
            assert RANK[imported] < RANK[unit] or unit == "__init__", (
                f"{path.relative_to(PACKAGE)} imports ganaug.{imported}, which is not upstream of ganaug.{unit}"
            )
