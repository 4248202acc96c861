"""Whether Qt's X11 (xcb) platform plugin can load, and which Debian/Ubuntu packages it lacks.

Without some system libraries (``libxcb-cursor0`` since Qt 6.5, ``libxcb-icccm4``,
``libxcb-keysyms1`` ...) Qt aborts before the first window with a generic message. ``rtbci check``
runs ``ldd`` on the plugin that PySide6 ships and names the packages to install. Nothing here
imports Qt: the plugin is found from PySide6's package location.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEBIAN_PACKAGES", "XcbPluginReport", "check_xcb_plugin", "missing_libraries", "xcb_plugin_path"]

# Shared libraries the xcb plugin links (directly or through libQt6XcbQpa), by the Debian/Ubuntu
# package that installs them.
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libpng16.so.16": "libpng16-16",
    "libexpat.so.1": "libexpat1",
    "libbrotlidec.so.1": "libbrotli1",
    "libpcre2-8.so.0": "libpcre2-8-0",
    "libzstd.so.1": "libzstd1",
    "libz.so.1": "zlib1g",
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")


@dataclass
class XcbPluginReport:
    """What :func:`check_xcb_plugin` found.

    Attributes
    ----------
    plugin
        PySide6's ``libqxcb.so``, or ``None`` when PySide6 or the plugin is not installed.
    missing
        Shared libraries ``ldd`` could not find.
    packages
        Debian/Ubuntu packages that install them, in order, without repeats.
    unknown
        Missing libraries of no known package (PySide6's own Qt libraries among them: reinstall PySide6).
    note
        Why nothing was checked (no PySide6, no ``ldd``), else empty.
    """

    plugin: Path | None
    missing: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        """True when the plugin was checked and lacks nothing."""
        return self.plugin is not None and not self.note and not self.missing

    def lines(self) -> list[str]:
        """The report for ``rtbci check``: one line when all is well, else what to install."""
        if self.note:
            return [f"Qt xcb platform plugin: not checked ({self.note})"]
        if not self.missing:
            return [f"Qt xcb platform plugin: all libraries found ({self.plugin})"]
        lines = [
            f"Qt xcb platform plugin: MISSING {', '.join(self.missing)}: the dashboard cannot open a window "
            "(headless commands are not affected)"
        ]
        if self.packages:
            lines.append(f"  install them with: sudo apt-get install {' '.join(self.packages)}")
        if self.unknown:
            lines.append(
                f"  no known package for {', '.join(self.unknown)} (a libQt6* or libicu* one: reinstall "
                "PySide6-Essentials)"
            )
        return lines


def xcb_plugin_path() -> Path | None:
    """PySide6's ``Qt/plugins/platforms/libqxcb.so``, found without importing Qt; ``None`` if absent."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return None
    plugin = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def missing_libraries(binary: Path) -> list[str]:
    """The shared libraries ``ldd`` reports as "not found" for ``binary``, in its order.

    Raises
    ------
    FileNotFoundError
        If ``ldd`` is not on the PATH.
    """
    ldd = shutil.which("ldd")
    if ldd is None:
        raise FileNotFoundError("ldd is not on the PATH")
    result = subprocess.run([ldd, str(binary)], capture_output=True, text=True, check=False)
    found = [match.group(1) for line in result.stdout.splitlines() if (match := _NOT_FOUND.match(line))]
    return list(dict.fromkeys(found))


def check_xcb_plugin(plugin: Path | None = None) -> XcbPluginReport:
    """Check that Qt's xcb platform plugin finds every library it links, and name the packages it lacks.

    Parameters
    ----------
    plugin
        The plugin to check; default PySide6's (:func:`xcb_plugin_path`).
    """
    plugin = plugin or xcb_plugin_path()
    if plugin is None:
        return XcbPluginReport(
            None, note="PySide6 or its xcb plugin is not installed; the dashboard needs it"
        )
    try:
        missing = missing_libraries(plugin)
    except FileNotFoundError as error:
        return XcbPluginReport(plugin, note=str(error))
    packages = list(dict.fromkeys(DEBIAN_PACKAGES[name] for name in missing if name in DEBIAN_PACKAGES))
    unknown = [name for name in missing if name not in DEBIAN_PACKAGES]
    return XcbPluginReport(plugin, missing, packages, unknown)
