"""The import contracts of docs/architecture.md, checked on the source: imports point one way, no circles.

Every ``tracetune.*`` import of every module counts, at module level or inside a function: a lazy
import still ties the two modules together. Each package may import only the packages listed for
it in ``ALLOWED`` (its own modules always).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tracetune"
BASE = {"errors", "util", "tracetune"}  # importable from anywhere (tracetune: the version)

#: package -> the packages it may import, lowest floor first.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "util": set(),
    "conversation": set(),
    "engines": set(),
    "readers": {"conversation"},
    "prepare": {"conversation", "readers", "engines"},
    "train": {"prepare", "engines", "conversation"},
    "sweep": {"train", "engines"},
    "eval": {"conversation", "readers", "prepare", "engines"},
    "card": set(),
    "publish": {"card", "engines"},
    "remote": set(),
    "pipeline": {"conversation", "readers", "prepare", "engines", "train", "sweep", "eval", "card", "publish", "remote"},
    "serve": {"engines", "sweep"},
    "demo": {"conversation", "readers", "prepare", "engines", "train", "sweep", "eval", "card", "publish", "pipeline"},
    "cli": set(),  # anything: the commands sit on top
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The tracetune modules ``path`` imports (``from pkg import submodule`` counts as the submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("tracetune"):
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("tracetune")]
        for name in names:
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known:
                found.add(name)
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(p, set(mods)) - {m} for m, p in mods.items()}


def test_every_package_has_a_contract():
    packages = {package_of(m) for m in modules()} - {"tracetune"}
    assert packages <= set(ALLOWED), f"add a contract for {packages - set(ALLOWED)}"


def test_imports_point_one_way():
    broken = []
    for module, deps in graph().items():
        here = package_of(module)
        if here == "cli":
            continue
        for dep in deps:
            there = package_of(dep)
            if there != here and there not in BASE and there not in ALLOWED.get(here, set()):
                broken.append(f"{module} -> {dep}")
    assert not broken, "imports against the contracts in tests/test_architecture.py:\n" + "\n".join(sorted(broken))


def test_no_import_circles():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


def test_the_contract_checker_sees_lazy_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from tracetune.eval import fidelity\n    import tracetune.prepare.stage\n")
    assert imports_of(source, {"tracetune.eval", "tracetune.eval.fidelity", "tracetune.prepare.stage"}) == {
        "tracetune.eval.fidelity", "tracetune.prepare.stage"}
