"""The README's claims, checked mechanically: commands, options, code, links, numbers, layout.

No training: every check reads files, compiles code or asks click for ``--help``.
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
# The options the README's command table lists per command, checked in both directions.
SHARED_OPTIONS = ("--quiet", "--json", "--force", "--device", "--seed")


def _text() -> str:
    return README.read_text(encoding="utf-8")


def _code_blocks(language: str | None = None, text: str | None = None) -> list[str]:
    """Fenced blocks of ``language`` (None: every block) in ``text`` (default: the README)."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", _text() if text is None else text, flags=re.MULTILINE | re.DOTALL)
    return [body for lang, body in blocks if language is None or lang == language]


def _section(title: str) -> str:
    """The README's text under the heading ``title``, up to the next heading of its level or higher."""
    text = _text()
    match = re.search(rf"^(#+) {re.escape(title)}$", text, flags=re.MULTILINE)
    assert match, f"README has no section {title!r}"
    body = text[match.end():]
    end = re.search(rf"^#{{1,{len(match.group(1))}}} ", body, flags=re.MULTILINE)
    return body[: end.start()] if end else body


@cache
def _help(command: str) -> str:
    from ganaug.cli import main

    result = CliRunner().invoke(main, [*command.split(), "--help"], terminal_width=200)
    assert result.exit_code == 0, (command, result.output)
    return result.output


def _options_in_help(command: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", _help(command)))


def _commands() -> set[str]:
    from ganaug.cli import main

    return set(main.commands)


def test_readme_fits_on_a_few_screens():
    n = len(_text().splitlines())
    assert n < 260, f"README.md has {n} lines; move detail to docs/"


def test_quick_start_runs_the_commands_ci_runs():
    (block,) = [b for b in _code_blocks("bash") if "python3 -m pytest" in b]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert commands == ['python3 -m pip install -e . && ganaug demo',
                        'python3 -m pip install -e ".[test]" && python3 -m pytest && python3 -m pytest -m distributed']
    ci = (REPO / ".ci" / "run").read_text()
    (ci_line,) = [line for line in ci.splitlines() if "pip install" in line and "pytest" in line]
    # .ci/run adds pip's -q (quieter output, the same install); otherwise it is the README's command.
    assert [t for t in shlex.split(ci_line) if t != "-q"] == shlex.split(commands[1])
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^ganaug = "ganaug\.cli:main"$', pyproject, flags=re.MULTILINE), "the ganaug script is gone"
    assert re.search(r"^test = \[", pyproject, flags=re.MULTILINE), "the [test] extra is gone"
    assert "demo" in _commands()


def _mentions(page: Path) -> list[tuple[str, str]]:
    """(command, option) for every ``--option`` after ``ganaug COMMAND`` in a code span or a code block line
    (an indented line continues the one before it)."""
    text = page.read_text(encoding="utf-8")
    lines = re.sub(r"\n[ \t]+(?=\S)", " ", "\n".join(_code_blocks(text=text))).splitlines()
    found = []
    for piece in [*re.findall(r"`([^`\n]+)`", text), *lines]:
        for match in re.finditer(r"\bganaug (?:--debug )?([a-z]+)\b(.*)", piece):
            command, rest = match.groups()
            rest = re.split(r"\bganaug |\s\|\s+(?!-)|#", rest)[0]  # up to the next command, a pipe or a comment
            for option in re.findall(r"(?<![\w-])--(?:\[no-\])?[a-z][a-z0-9-]*", rest):
                if option.startswith("--[no-]"):
                    found += [(command, "--" + option[7:]), (command, "--no-" + option[7:])]
                else:
                    found.append((command, option))
    return found


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_command_and_option_named_exists(page):
    mentions = _mentions(page)
    if page == README:
        assert len(set(mentions)) > 25, "the README's CLI synopsis went missing"
    for command, option in mentions:
        assert command in _commands(), f"{page.name} names `ganaug {command}`, which does not exist"
        assert option in _options_in_help(command), f"{page.name} names `ganaug {command} {option}`; --help lacks it"


def test_run_directory_options_are_train_options():
    block = next(b for b in _code_blocks("") if "RUN_DIR/run.json" in b)
    for option in re.findall(r"--[a-z][a-z0-9-]*", block):
        assert option in _options_in_help("train"), option


def test_command_table_says_which_commands_have_which_shared_options():
    rows = re.findall(r"^\| `([a-z]+)` \| [^|]+ \| ([^|]*) \|$", _section("3. Command line"), flags=re.MULTILINE)
    assert {command for command, _ in rows} == _commands(), "the table must list every command"
    for command, listed in rows:
        has = {o for o in SHARED_OPTIONS if o in _options_in_help(command)}
        assert set(re.findall(r"`(--[a-z-]+)`", listed)) == has, f"`{command}`: its --help has {sorted(has)}"


def test_exit_codes():
    from ganaug.cli import main

    runner = CliRunner()
    error = runner.invoke(main, ["info", str(REPO / "no-such-run")])
    assert error.exit_code == 1 and error.output.startswith("Error: ") and error.output.count("\n") == 1
    assert runner.invoke(main, ["info", "--no-such-option"]).exit_code == 2
    text = _section("3. Command line")
    assert "0 success; 1 an error" in text and "2 a usage error" in text
    # Ctrl-C: 130 from the two long-running commands the README names.
    assert "130 `train` or `generate`" in text
    for module in ("train", "generate"):
        assert "Exit(130)" in (REPO / "ganaug" / "cli" / f"{module}.py").read_text(), module


def _imported_names(tree: ast.AST) -> list[tuple[str, str | None]]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [(node.module, a.name) for a in node.names]
    return names


@pytest.mark.parametrize("index", range(len(_code_blocks("python"))))
def test_python_blocks_compile_and_import_what_exists(index):
    source = _code_blocks("python")[index]
    tree = ast.parse(source)
    compile(tree, f"README python block {index}", "exec")
    for module, name in _imported_names(tree):
        loaded = importlib.import_module(module)
        if name is not None:
            assert hasattr(loaded, name), f"README imports {name} from {module}, which has no such name"


def test_python_blocks_exist():
    assert len(_code_blocks("python")) >= 3  # the estimator, PyTorch, scikit-learn


def test_dotted_ganaug_names_exist():
    names = set(re.findall(r"`(ganaug(?:\.[A-Za-z_]\w*)+)`", _text()))
    assert names, "the README names no API function"
    for dotted in names:
        parts = dotted.split(".")
        for split in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:split]))
                break
            except ModuleNotFoundError:
                continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)


def test_learned_attributes_are_documented_by_their_estimators():
    from ganaug import AugmentedDataset, ConditionalDCGAN
    from ganaug.sklearn import GANOverSampler

    docs = "".join((cls.__doc__ or "") for cls in (ConditionalDCGAN, GANOverSampler, AugmentedDataset))
    attributes = set(re.findall(r"`([a-z][a-z_]*[a-z]_)`", _text()))
    assert {"generator_", "generator_ema_", "sampling_generator_", "sampling_strategy_"} <= attributes
    for attribute in attributes:
        assert re.search(rf"\b{attribute}(?!\w)", docs), f"no estimator documents {attribute}"
    assert isinstance(ConditionalDCGAN.__dict__["sampling_generator_"], property)


def test_sampling_counts_claim():
    """README: the torch front end and `generate --balance` use synthetic_counts; the sklearn sampler gets
    the same check_sampling_strategy's answer from imbalanced-learn's BaseOverSampler."""
    import numpy as np
    from imblearn.over_sampling.base import BaseOverSampler
    from imblearn.utils import check_sampling_strategy

    from ganaug.sampling import synthetic_counts
    from ganaug.sklearn import GANOverSampler

    assert issubclass(GANOverSampler, BaseOverSampler)
    y = np.array(["a"] * 100 + ["b"] * 10 + ["c"] * 40)
    for strategy in ("auto", "minority", {"b": 60}):
        want = check_sampling_strategy(strategy, y, "over-sampling")
        got = synthetic_counts({"a": 100, "b": 10, "c": 40}, strategy)
        assert {c: n for c, n in got.items() if n} == {c: n for c, n in want.items() if n}
    assert "synthetic_counts(" in (REPO / "ganaug" / "datasets.py").read_text()
    assert "synthetic_counts(" in (REPO / "ganaug" / "cli" / "generate.py").read_text()
    assert "check_sampling_strategy" in _text() and "BaseOverSampler" in _text()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")


def _links(path: Path) -> list[str]:
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8"))
            if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_links_point_to_existing_files_and_headings(page):
    for target in _links(page):
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
            assert anchor in {_slug(h) for h in headings}, f"{page.name}: no heading #{anchor} in {file or page.name}"


def test_readme_links_the_docs():
    linked = {Path(t.partition("#")[0]).name for t in _links(README) if t.startswith("docs/")}
    assert {"measurements.md", "downstream.md", "architecture.md", "robustness.md"} <= linked


def _tables(text: str) -> list[tuple[str, list[str]]]:
    """(the paragraph before it, its data rows) for each markdown table."""
    tables, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"\|[ -|]+\|$", lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            before = "\n".join(lines[max(0, i - 12):i]).split("\n\n")
            tables.append((before[-1] if before[-1].strip() else before[-2], lines[i + 2:j]))
            i = j
        else:
            i += 1
    return tables


@pytest.mark.parametrize("title", ["Quality: 5 minutes of training on MNIST",
                                   "Downstream value: does it help a classifier?", "Speed"])
def test_measured_tables_are_copied_from_the_source_they_cite(title):
    ((_, rows),) = _tables(_section(title))
    assert "Machine:" in _section(title) and "2-core" in _section(title), "name the machine it ran on"
    assert re.search(r"`python3 benchmarks/\w+\.py|`ganaug |Commands: in the table", _section(title))
    (source,) = re.findall(r"Source:\s+\[[^]]+\]\(([^)#]+)", _section(title))
    source_lines = set((REPO / source).read_text(encoding="utf-8").splitlines())
    assert rows
    for row in rows:
        assert row in source_lines, f"a row of {title!r} is not in {source} verbatim: {row[:80]}"
        for command in re.findall(r"`(python3 benchmarks/[\w/]+\.py|bash benchmarks/[\w/]+\.sh)", row):
            assert (REPO / command.split()[1]).is_file(), command


def test_benchmark_options_the_readme_names_exist():
    for script, options in re.findall(r"`python3 (benchmarks/\w+\.py)((?: --[a-z-]+(?: \w+)?)*)", _text()):
        source = (REPO / script).read_text()
        for option in re.findall(r"--[a-z-]+", options):
            assert f'"{option}"' in source, f"{script} has no {option}"


def _rank() -> dict[str, int]:
    tree = ast.parse((REPO / "tests" / "test_layering.py").read_text())
    (node,) = [n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "RANK"]
    return ast.literal_eval(node.value)


def test_readme_module_order_is_the_layering_tests():
    rank = _rank()
    (line,) = [line for line in _section("Layout").splitlines() if line.startswith("`_version")]
    groups = [[name.strip() for name in group.strip(" `").split(",")] for group in line.split("->")]
    assert sorted(n for g in groups for n in g) == sorted(rank), "the README's order must list every ranked module"
    ranks = []
    for group in groups:
        assert len({rank[n] for n in group}) == 1, f"{group} are not one rank in tests/test_layering.py"
        ranks.append(rank[group[0]])
    assert ranks == sorted(set(ranks)), "the README's order differs from tests/test_layering.py's RANK"


def test_architecture_doc_ranks_are_the_layering_tests():
    rank = _rank()
    rows = re.findall(r"^\| (\d+) \| `ganaug/(\w+)(?:\.py|/)` \|", (DOCS / "architecture.md").read_text(), flags=re.MULTILINE)
    assert {name: int(r) for r, name in rows} == rank
    assert [int(r) for r, _ in rows] == sorted(int(r) for r, _ in rows)
    for _, name in rows:
        assert (REPO / "ganaug" / f"{name}.py").is_file() or (REPO / "ganaug" / name / "__init__.py").is_file(), name
