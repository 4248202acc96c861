"""The house's floors: which packages may not import which, read from the source with ``ast``.

Each row of :data:`RULES` is (package, forbidden prefixes): no module in the package, nor
in its subpackages, may import a module at or under one of the prefixes, anywhere in the
file (inside functions too). Add a rule as a row.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RULES: list[tuple[str, tuple[str, ...]]] = [
    # The LSL layer sits on a low floor: pylsl, numpy and rtbci's base modules.
    (
        "rtbci.lsl",
        (
            "rtbci.engine",
            "rtbci.replay",
            "rtbci.sim",
            "rtbci.train",
            "rtbci.models",
            "rtbci.runtime",
            "rtbci.latency",
            "calibrate",
            "apps",
        ),
    ),
    # Replay imports the engine, and the latency harness imports both: the engine imports neither.
    # Serving shares its metrics with training through rtbci.metrics, not rtbci.train.
    ("rtbci.engine", ("rtbci.replay", "rtbci.latency", "rtbci.train")),
    # The library never reaches up: calibrate and apps add their subcommands through entry points,
    # and the benchmarks run from the checkout.
    ("rtbci", ("calibrate", "apps", "benchmarks")),
    # Models are torch modules and their configs; training, serving and export build on them.
    (
        "rtbci.models",
        ("rtbci.train", "rtbci.runtime", "rtbci.engine", "rtbci.sim", "rtbci.lsl", "rtbci.replay"),
    ),
    # The closed loop's models are pure: LSL only in the task's publisher and the closed-loop source.
    ("rtbci.task.trials", ("pylsl", "rtbci.lsl", "rtbci.engine", "rtbci.sim")),
    ("rtbci.task.cursor", ("pylsl", "rtbci.lsl", "rtbci.engine", "rtbci.sim")),
    ("rtbci.task.metrics", ("pylsl", "rtbci.lsl", "rtbci.engine", "rtbci.sim")),
    ("rtbci.task.stream", ("pylsl", "rtbci.lsl", "rtbci.engine", "rtbci.sim")),
    ("rtbci.task.labels", ("pylsl", "rtbci.lsl", "rtbci.engine", "rtbci.sim")),
    ("rtbci.sim.participant", ("pylsl", "rtbci.lsl", "rtbci.engine", "rtbci.task.publisher")),
]
# Where import cycles are looked for, between modules and between rtbci's first-level folders.
CYCLE_ROOTS = ("rtbci", "calibrate", "apps", "benchmarks")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: str) -> list[Path]:
    folder = ROOT.joinpath(*package.split("."))
    if folder.is_dir():
        return sorted(folder.rglob("*.py"))
    return [folder.with_suffix(".py")]


def imported_modules(path: Path, name: str) -> set[str]:
    """Every module the file of module ``name`` imports: absolute and relative, at the top or in functions.

    ``from a import b`` counts as importing both ``a`` and ``a.b`` (``b`` may be a module).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def import_graph(roots: tuple[str, ...] = CYCLE_ROOTS) -> dict[str, set[str]]:
    """Module -> the modules of the tree it imports, each by its most specific name.

    ``from rtbci.signal import kernels`` is an edge to ``rtbci.signal.kernels`` alone (running the
    package's ``__init__`` on the way is not a dependency of the importer).
    """
    files = {_module_name(path): path for root in roots for path in sorted((ROOT / root).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        imported = imported_modules(path, name)
        targets = {module for module in imported if module in files}
        # A package counts only when nothing more specific under it was imported with it.
        targets = {
            t for t in targets if not any(o != t and _is_under(o, t) for o in targets if o in imported)
        }
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _folder(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "rtbci" else parts[0]


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert cycles(import_graph()) == []


def test_no_two_folders_import_each_other() -> None:
    folders: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        folders.setdefault(_folder(module), set()).update(
            _folder(t) for t in targets if _folder(t) != _folder(module)
        )
    assert cycles(folders) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(f"{prefix}.")


@pytest.mark.parametrize(("package", "forbidden"), RULES, ids=[package for package, _ in RULES])
def test_a_package_does_not_import_what_sits_above_it(package: str, forbidden: tuple[str, ...]) -> None:
    paths = _modules(package)
    assert paths and all(path.is_file() for path in paths), f"{package}: no source found"
    crossings = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in paths
        for module in sorted(imported_modules(path, _module_name(path)))
        if any(_is_under(module, prefix) for prefix in forbidden)
    ]
    assert crossings == []


def test_the_import_reader_sees_relative_and_nested_imports(tmp_path: Path) -> None:
    source = tmp_path / "inlet.py"
    source.write_text(
        "import numpy as np\n"
        "from . import info\n"
        "from ..errors import UserError\n"
        "def pull():\n"
        "    from rtbci.engine.ring import ChunkRing\n",
        encoding="utf-8",
    )
    imports = imported_modules(source, "rtbci.lsl.inlet")
    assert {"numpy", "rtbci.lsl.info", "rtbci.errors.UserError", "rtbci.engine.ring"} <= imports
    assert any(_is_under(module, "rtbci.engine") for module in imports)
    assert not _is_under("rtbci.engineering", "rtbci.engine")
