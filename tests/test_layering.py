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
    ("rtbci.engine", ("rtbci.replay", "rtbci.latency")),
]


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
