"""``rtbci check``'s look at Qt's xcb platform plugin: real ``ldd`` on PySide6's real plugin, a copy of
it that cannot find its libraries, and the package names checked against this machine's dpkg."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rtbci.cli import main
from rtbci.qtcheck import DEBIAN_PACKAGES, check_xcb_plugin, missing_libraries, xcb_plugin_path

PLUGIN = xcb_plugin_path()
pytestmark = pytest.mark.skipif(
    PLUGIN is None or shutil.which("ldd") is None, reason="needs PySide6's xcb plugin and ldd (Linux)"
)


def resolved_system_libraries(binary: Path) -> dict[str, Path]:
    """The libraries ``ldd`` resolves for ``binary`` outside PySide6, by name."""
    output = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    found = {}
    for name, path in re.findall(r"^\s*(\S+)\s+=>\s+(/\S+)", output, re.MULTILINE):
        if "PySide6" not in path:
            found[name] = Path(path)
    return found


def test_the_installed_plugin_finds_every_library_here(capsys):
    report = check_xcb_plugin()
    assert report.plugin == PLUGIN and report.missing == missing_libraries(PLUGIN)
    assert report.ok, report.lines()  # this machine has the packages docs/troubleshooting.md lists
    assert main(["check"]) == 0
    assert "Qt xcb platform plugin: all libraries found" in capsys.readouterr().out


def test_a_plugin_that_cannot_find_its_libraries_is_reported_with_what_to_do(tmp_path):
    copy = tmp_path / "libqxcb.so"
    shutil.copy2(PLUGIN, copy)  # away from PySide6's Qt libraries, which it finds relative to itself
    report = check_xcb_plugin(copy)
    assert not report.ok
    assert "libQt6XcbQpa.so.6" in report.missing and "libQt6XcbQpa.so.6" in report.unknown
    text = "\n".join(report.lines())
    assert "MISSING libQt6" in text and "reinstall PySide6-Essentials" in text
    assert "headless commands are not affected" in text


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="package names are checked against dpkg")
def test_every_xcb_library_has_the_package_dpkg_says_installs_it():
    libraries = resolved_system_libraries(PLUGIN)
    xcb = [name for name in libraries if re.match(r"lib(xcb|xkbcommon|X11)", name)]
    assert "libxcb-cursor.so.0" in xcb and "libxcb-icccm.so.4" in xcb and "libxcb-keysyms.so.1" in xcb
    assert set(xcb) <= set(DEBIAN_PACKAGES), set(xcb) - set(DEBIAN_PACKAGES)
    for name in libraries:
        if name not in DEBIAN_PACKAGES:
            continue
        owner = subprocess.run(["dpkg", "-S", name], capture_output=True, text=True, check=False).stdout
        packages = {line.split(":")[0] for line in owner.splitlines()}
        assert DEBIAN_PACKAGES[name] in packages, (name, packages)
