"""The house shows its layers: what each folder of components/ may import, no import cycles, no
module past ~400 lines, and the packaging that installs components/ as `servingstack` only.

Imports are read from the source (ast), every import statement counted, function-local ones too,
except those under `if TYPE_CHECKING:` (they never run)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "components"
PACKAGE = "servingstack"
MAX_LINES = 420

#: layer -> the layers it may import from (arrows run one way: tools -> platform -> components ->
#: config -> planning).
ALLOWED = {
    "planning": {"planning"},
    "config": {"planning", "config"},
    "components": {"planning", "config", "components"},
    "platform": {"planning", "config", "components", "platform"},
    "tools": {"planning", "config", "components", "platform", "tools", "root"},
    "root": {"root"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    first = parts[1]
    if first in ("planning", "config", "tools"):
        return first
    if first == "testing":  # the public test harness: a thin wrapper over the tools' offline runtime
        return "tools"
    if first in ("aws", "k8s", "serving", "base", "arguments"):
        return "components"
    if first in ("platform", "program", "operations"):
        return "platform"
    raise AssertionError(f"{module} belongs to no layer: add its folder to test_layout.layer")


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """(servingstack modules, other top-level packages) that `module` imports at run time."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    internal: set[str] = set()
    external: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                (internal if alias.name.split(".")[0] == PACKAGE else external).add(
                    alias.name if alias.name.split(".")[0] == PACKAGE else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                external.add(target.split(".")[0])
                continue
            for alias in node.names:  # `from . import catalog` imports the module catalog
                candidate = f"{target}.{alias.name}"
                internal.add(candidate if candidate in MODULES else target)
    return {m for m in internal if m in MODULES}, external


GRAPH = {m: imports_of(m)[0] for m in MODULES}


def test_every_module_belongs_to_a_layer_and_imports_only_downward():
    wrong = []
    for module, targets in GRAPH.items():
        for target in targets:
            if layer(target) not in ALLOWED[layer(module)]:
                wrong.append(f"{module} ({layer(module)}) imports {target} ({layer(target)})")
    assert not wrong, "imports against the layer direction:\n" + "\n".join(sorted(wrong))


def test_planning_core_imports_nothing_from_pulumi():
    offenders = {m: sorted(e for e in imports_of(m)[1] if e.startswith("pulumi") or e == "pydantic")
                 for m in MODULES if layer(m) == "planning"}
    offenders = {m: e for m, e in offenders.items() if e}
    assert not offenders, f"the planning core must stay pure: {offenders}"
    assert any(layer(m) == "planning" for m in MODULES)


def test_no_import_cycles():
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_a_cycle_is_detected_by_the_graph_reader():
    """The reader sees relative, package-relative and function-local imports (so the cycle test
    above can fail)."""
    assert "servingstack.config.models" in GRAPH["servingstack.config.load"]
    assert "servingstack.planning.catalog" in GRAPH["servingstack.config.serving"]
    assert "servingstack.tools.check" in GRAPH["servingstack.tools.cli"]  # a function-local import


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(ROOT)} has {lines} lines: split it by concern"


def test_pyproject_lists_every_package_under_its_installed_name():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    assert setuptools["package-dir"] == {PACKAGE: "components"}
    on_disk = sorted(module_name(p) for p in SRC.rglob("__init__.py"))
    assert sorted(setuptools["packages"]) == on_disk
    assert all(p == PACKAGE or p.startswith(f"{PACKAGE}.") for p in setuptools["packages"])


def test_nothing_imports_the_folder_name():
    """`components` is the folder, never an import name: code, tests, docs and examples use
    `servingstack` (a second import name would load every module twice)."""
    pattern = re.compile(r"^\s*(from|import)\s+components(\.|\s|$)", re.M)
    offenders = []
    for folder in ("components", "tests", "benchmarks", "examples", "provider", "policy", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md") and pattern.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    for path in (ROOT / "README.md", ROOT / "__main__.py"):
        if pattern.search(path.read_text()):
            offenders.append(path.name)
    assert not offenders
