"""The package's layering, from its own imports (those under TYPE_CHECKING and inside
functions count): one way down, no cycles.

    cli, daemon (process wiring)      the top: may import anything below
    http                              the HTTP edge
    services                          the ledger's work, in domain terms
    adapters (postgres, nats, embedded)
    domain                            pure: nothing of the package, no I/O library
    settings, logs, metrics, errors   usable by all but the domain
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import motionledger

ROOT = Path(motionledger.__file__).parent
IO_LIBRARIES = {"asyncpg", "nats", "litestar", "uvicorn", "prometheus_client", "structlog", "rich"}


@cache
def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ["motionledger", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str) -> str | None:
    """The package module an imported name lives in (None: not the package's)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports(module: str) -> frozenset[str]:
    """Every name `module` imports anywhere in its text: package modules and libraries."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return frozenset(names)


def package_edges(module: str) -> set[str]:
    out = set()
    for name in imports(module):
        target = _resolve(name) if name.startswith("motionledger") else None
        if target and target != module and not module.startswith(target + "."):
            out.add(target)
    return out


def libraries(module: str) -> set[str]:
    return {name.split(".")[0] for name in imports(module) if not name.startswith("motionledger")}


def in_layer(module: str, layer: str) -> bool:
    return module == f"motionledger.{layer}" or module.startswith(f"motionledger.{layer}.")


def test_there_are_no_import_cycles() -> None:
    graph = {m: package_edges(m) for m in modules()}
    cycles, state = [], dict.fromkeys(graph, 0)  # 0 new, 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state[target] == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif state[target] == 0:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize("module", sorted(m for m in modules() if in_layer(m, "domain")))
def test_the_domain_imports_nothing_else_of_the_package_and_no_io_library(module: str) -> None:
    assert {t for t in package_edges(module) if not in_layer(t, "domain")} == set()
    assert libraries(module) & IO_LIBRARIES == set()


FORBIDDEN = {
    "services": ("http", "cli", "daemon"),
    "adapters": ("services", "http", "cli", "daemon"),
    "http": ("cli", "daemon"),
    "producer": ("services", "http", "cli", "daemon", "adapters.postgres", "adapters.embedded"),
    "follow": ("services", "http", "cli", "daemon", "adapters", "producer"),
    "settings": ("domain", "adapters", "services", "http", "cli", "daemon"),
    "errors": ("domain", "adapters", "services", "http", "cli", "daemon", "settings"),
}


@pytest.mark.parametrize(
    ("module", "layers"),
    [
        (m, layers)
        for layer, layers in FORBIDDEN.items()
        for m in sorted(modules())
        if in_layer(m, layer)
    ],
)
def test_nothing_imports_a_layer_above_it(module: str, layers: tuple[str, ...]) -> None:
    above = {t for t in package_edges(module) for layer in layers if in_layer(t, layer)}
    assert above == set()


def test_the_checks_see_imports_inside_functions_and_type_checking_blocks() -> None:
    """The walk is over the whole tree, not the module's top level."""
    cli = package_edges("motionledger.cli")
    assert "motionledger.daemon" in cli  # imported inside a command function


@pytest.mark.parametrize("package", ["domain", "adapters", "services", "http", "cli", "daemon"])
def test_each_layer_says_what_it_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert doc, f"motionledger/{package}/__init__.py opens with no docstring"
    assert "import" in doc


def test_the_sdk_follower_needs_only_what_a_plain_install_has() -> None:
    """`pip install motionledger` brings nats-py and msgspec: motionledger.follow (and the
    `follow` command's module) must make do with those and the standard library."""
    server = IO_LIBRARIES - {"nats"} | {"httpx"}
    for module in ("motionledger.follow", "motionledger.cli.follow"):
        assert libraries(module) & server == set(), module
