"""The architecture, enforced: imports point down the layers, never at a private name of another
module, and never round in a cycle.

The layers follow the data path (README, "Layout"): the service starts everything; the Slack app
hands deliveries to the engine; the engine drives the agent side, the store and the publishers;
renderers and the pure core are at the bottom. A module may import its own package and anything
in a lower layer, nothing higher.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("orchestrator", "renderers", "persistence")

# Top first. A module belongs to the first layer with a prefix it starts with.
LAYERS: list[tuple[str, ...]] = [
    ("orchestrator.service", "orchestrator.__main__"),
    ("orchestrator.sandbox",),
    ("orchestrator.slack.app", "orchestrator.slack.listeners"),
    ("orchestrator.engine",),
    ("orchestrator.config",),
    ("orchestrator.agent", "orchestrator.slack"),
    ("orchestrator.core",),
    ("persistence",),
    ("renderers",),
    ("orchestrator.logs", "orchestrator.metrics", "orchestrator"),
]
# The pure core does no I/O: no HTTP, no Slack, no database sessions, no event loop.
PURE = ("orchestrator.core", "renderers")
IMPURE_IMPORTS = ("httpx", "slack_sdk", "slack_bolt", "sqlalchemy", "asyncio", "aiohttp")


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def modules() -> dict[str, ast.Module]:
    found: dict[str, ast.Module] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = ast.parse(path.read_text(), str(path))
    return found


def imports(tree: ast.Module) -> Iterator[tuple[str, list[str], int]]:
    """(module, imported names, line) for each absolute import of the project's packages."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno


def ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def layer_of(name: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def package_of(name: str, all_modules: dict[str, ast.Module]) -> str:
    """The package a module lives in (a package's `__init__` is its own package)."""
    if any(other.startswith(name + ".") for other in all_modules):
        return name
    return name.rpartition(".")[0]


def target_of(module: str, names: list[str], all_modules: dict[str, ast.Module]) -> list[str]:
    """`from orchestrator.core import machine` imports the module `orchestrator.core.machine`."""
    subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in all_modules]
    return subs or [module]


def test_every_import_points_down_the_layers() -> None:
    found = modules()
    wrong = []
    for name, tree in found.items():
        here = layer_of(name)
        own = package_of(name, found)
        for module, names, line in imports(tree):
            if not ours(module):
                continue
            for target in target_of(module, names, found):
                if target.startswith(own + ".") or target == own:
                    continue  # within its own package
                if layer_of(target) < here:
                    wrong.append(f"{name}:{line} imports {target}, a higher layer")
    assert not wrong, "\n".join(wrong)


def test_no_private_name_is_imported_across_modules() -> None:
    wrong = []
    for name, tree in modules().items():
        for module, names, line in imports(tree):
            if not ours(module):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private or any(part.startswith("_") for part in module.split(".")[1:]):
                if module.split(".")[-1] == "__main__":
                    continue
                wrong.append(f"{name}:{line} imports {private or module} from {module}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    found = modules()
    graph: dict[str, set[str]] = {name: set() for name in found}
    for name, tree in found.items():
        for module, names, _line in imports(tree):
            if ours(module):
                graph[name].update(t for t in target_of(module, names, found) if t in found)
    # A package's __init__ importing its own modules is how packages export; not a cycle.
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(cycles)


def test_the_core_and_the_renderers_do_no_io() -> None:
    wrong = []
    for name, tree in modules().items():
        if not name.startswith(PURE):
            continue
        for module, _names, line in imports(tree):
            if module.split(".")[0] in IMPURE_IMPORTS:
                wrong.append(f"{name}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_over_400_lines() -> None:
    long = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            lines = len(path.read_text().splitlines())
            if lines > 400:
                long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not long, "\n".join(long)
