"""The safety stop's keys, from anywhere in the application.

Esc and F12 stop the output whatever has the keyboard: the main window, any dialog (Calibrate…,
the calibration's progress, the report, an error box, a file chooser) or an open menu. A shortcut
cannot promise that (a dialog takes Esc to close itself, a menu to close itself, the progress dialog
to cancel the calibration), so :class:`SafetyStopFilter` is an event filter on the QApplication: it
sees every key event before the widget it is meant for, and takes the safety keys for itself.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

__all__ = ["SAFETY_KEYS", "SafetyStopFilter"]

# The safety keys (Qt key codes) and how the window and the engine's event record name them.
# Modifiers are ignored: Shift+Esc stops too.
SAFETY_KEYS: dict[int, str] = {
    QtCore.Qt.Key.Key_Escape.value: "Esc",
    QtCore.Qt.Key.Key_F12.value: "F12",
}


class SafetyStopFilter(QtCore.QObject):
    """Takes the :data:`SAFETY_KEYS` before any widget, dialog, menu or shortcut sees them.

    A safety key's ``ShortcutOverride`` is accepted (so no shortcut claims it and it arrives as a
    key press), and its ``KeyPress`` emits :attr:`triggered` and goes no further. An auto-repeated
    press is swallowed without a second signal. Install with :meth:`install`; the filter removes
    itself when it is deleted.

    Parameters
    ----------
    parent
        Owner (the main window).

    Signals
    -------
    triggered(str)
        The key's name, e.g. ``"Esc"``; emitted directly, before the event loop runs on.
    """

    triggered = QtCore.Signal(str)

    def install(self) -> None:
        """Filter every event of the running QApplication."""
        QtWidgets.QApplication.instance().installEventFilter(self)

    def uninstall(self) -> None:
        """Stop filtering (the window is closing)."""
        QtWidgets.QApplication.instance().removeEventFilter(self)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt's name)
        """Take a safety key; let everything else through."""
        kind = event.type()
        if kind not in (QtCore.QEvent.Type.ShortcutOverride, QtCore.QEvent.Type.KeyPress):
            return False
        name = SAFETY_KEYS.get(event.key())  # both kinds are QKeyEvents
        if name is None:
            return False
        if kind is QtCore.QEvent.Type.ShortcutOverride:
            event.accept()  # "a key press, not a shortcut": the press then comes back through here
        elif not event.isAutoRepeat():
            self.triggered.emit(name)
        return True
