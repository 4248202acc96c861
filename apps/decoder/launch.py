"""Starting the dashboard: ``rtbci app`` and the windowed ``rtbci demo``."""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from apps.decoder.main_window import DecoderWindow, EngineState
from rtbci.demo import DEMO_PROFILE, DEMO_UNSEEN_FROM_MINUTE, check_demo_profile
from rtbci.sim.rig_process import SimulatedRig

__all__ = ["application", "run_app", "run_demo_window"]


def application() -> QtWidgets.QApplication:
    """The process's QApplication (created once)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(sys.argv[:1])
        app.setApplicationName("rtbci decoder")
    return app


def _install_handlers(window: DecoderWindow) -> None:
    """An exception escaping a Qt slot becomes an error dialog (and a line on stderr), not a crash;
    Ctrl-C or SIGTERM closes the window, which stops the engine in order."""

    def hook(kind, error, tb) -> None:
        print("".join(traceback.format_exception(kind, error, tb)), file=sys.stderr)
        window.report_error("Unexpected error", f"{kind.__name__}: {error}")

    sys.excepthook = hook
    # Python runs signal handlers between bytecodes; the 30 Hz redraw runs Python often enough.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: window.close())


def _known_profiles(first: Path | None) -> list[Path]:
    """The chooser's list: the given profile (else the demo's) first, then the others in profiles/."""
    bundled = sorted(DEMO_PROFILE.parent.glob("*.toml")) if DEMO_PROFILE.parent.is_dir() else []
    first = Path(first) if first is not None else DEMO_PROFILE
    return [first] + [path for path in bundled if path.resolve() != first.resolve()]


def run_app(profile: Path | None, backend: str | None, connect: bool, record_dir: Path) -> int:
    """``rtbci app``: the dashboard on a rig's live streams; returns the exit code."""
    app = application()
    window = DecoderWindow(_known_profiles(profile), backend=backend, record_dir=record_dir)
    _install_handlers(window)
    window.show()
    print("rtbci app: window open; closing it, or Ctrl-C here, stops the decoder", flush=True)
    if connect:
        window.connect_engine()
    return app.exec()


def _close_after_decoding(window: DecoderWindow, seconds: float) -> None:
    """Close ``window`` once it has decoded for ``seconds`` (or at once if its engine failed to start)."""
    watch = QtCore.QTimer(window)

    def check() -> None:
        if window.state is EngineState.RUNNING:
            watch.stop()
            QtCore.QTimer.singleShot(int(seconds * 1000), window.close)
        elif window.state is EngineState.IDLE:
            watch.stop()
            window.close()

    watch.timeout.connect(check)
    watch.start(100)


def run_demo_window(profile: Path, backend: str, seed: int, seconds: float | None) -> int:
    """The windowed demo: the simulated rig in a subprocess, the decoder, and the dashboard.

    Closing the window stops the engine process, then the simulator. With ``seconds`` the window
    closes by itself after decoding that long.
    """
    rig_profile = check_demo_profile(profile)
    app = application()
    with SimulatedRig(rig_profile, seed, from_minute=DEMO_UNSEEN_FROM_MINUTE):
        window = DecoderWindow([profile], backend=backend)
        _install_handlers(window)
        window.show()
        window.connect_engine()
        if seconds is not None:
            _close_after_decoding(window, seconds)
        try:
            code = app.exec()
        finally:
            window.stop_engine()
    print(f"rtbci demo: closed after {window.last_report.get('bins', 0)} decoded bins", flush=True)
    return 1 if window.errors else code
