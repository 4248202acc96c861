"""Whether a window can open here: Qt's platform, a Wayland socket, or an X display that answers.

Nothing here imports Qt: an X display is probed with libxcb (the library Qt's X11 platform
plugin connects with), so a ``DISPLAY`` with no server behind it is found before Qt aborts on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path

__all__ = ["display_problem", "has_display"]

# How long opening an X display may take (a remote one that does not answer would hang Qt).
_X_CONNECT_TIMEOUT_S = 3.0


def _x_display_problem(display: str) -> str | None:
    """Why the X display ``display`` cannot be opened, or ``None`` when it can.

    Connects with libxcb, the library Qt's X11 platform plugin connects with, so an address with no
    server behind it, or a server that refuses the connection, is found here rather than by Qt's abort.
    """
    try:
        xcb = ctypes.CDLL(ctypes.util.find_library("xcb") or "libxcb.so.1")
    except OSError:
        return "libxcb is not installed, so Qt cannot open an X11 window"
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    errors: list[int] = []

    def connect() -> None:
        connection = xcb.xcb_connect(display.encode(), None)
        errors.append(xcb.xcb_connection_has_error(connection))
        xcb.xcb_disconnect(connection)

    thread = threading.Thread(target=connect, name="rtbci-display-probe", daemon=True)
    thread.start()
    thread.join(_X_CONNECT_TIMEOUT_S)
    if not errors:
        return f"the X display DISPLAY={display} did not answer within {_X_CONNECT_TIMEOUT_S:g} s"
    if errors[0]:
        return f"the X display DISPLAY={display} cannot be opened"
    return None


def display_problem() -> str | None:
    """Why no window can open, in one line; ``None`` when one can.

    A window can open on an explicit Qt platform other than X11 or Wayland (``QT_QPA_PLATFORM``,
    e.g. ``offscreen``), on a Wayland display whose socket exists, or on an X display that accepts
    a connection.
    """
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith(("xcb", "wayland")):
        return None
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland and not platform.startswith("xcb"):
        socket = Path(os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")) / wayland
        if Path(wayland).is_absolute() or socket.exists():
            return None
    display = os.environ.get("DISPLAY")
    if display:
        return _x_display_problem(display)
    if wayland:
        return f"the Wayland display WAYLAND_DISPLAY={wayland} has no socket"
    return "no display (DISPLAY and WAYLAND_DISPLAY are unset)"


def has_display() -> bool:
    """Whether a window can open (see :func:`display_problem`)."""
    return display_problem() is None
