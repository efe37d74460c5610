"""Code a reader can see: no module over 400 lines of code, no function over 60 (issue 16).

Docstrings, comments and blank lines are not counted: the parameter reference of the
estimator is long on purpose and says what each parameter means.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ganaug"
FILES = sorted(PACKAGE.rglob("*.py"))


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value,
                                                                                                    str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def _code_lines(source: str, tree: ast.AST, first: int = 1, last: int | None = None) -> int:
    skip = _docstring_lines(tree)
    lines = source.splitlines()[first - 1:last]
    return sum(1 for i, line in enumerate(lines, first)
               if line.strip() and not line.strip().startswith("#") and i not in skip)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_function_sizes(path):
    source = path.read_text()
    tree = ast.parse(source)
    assert _code_lines(source, tree) <= 400, f"{path.name} has more than 400 lines of code"
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = _code_lines(source, tree, node.lineno, node.end_lineno)
            assert n <= 60, f"{path.name}: {node.name} has {n} lines of code"
