"""Labels that keep the layout still: one that never widens its column, and fixed heights in lines."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

__all__ = ["ElidedLabel", "fix_lines"]


class ElidedLabel(QtWidgets.QLabel):
    """A one-line label whose text never sets its width: text too long is elided in the middle.

    :meth:`text` stays the whole text; an elided text shows whole as the tooltip, unless a tooltip
    is set.

    Parameters
    ----------
    text
        The first text.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        policy = QtWidgets.QSizePolicy.Policy
        self.setSizePolicy(policy.Ignored, policy.Fixed)

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        """No minimum width: the column decides."""
        return QtCore.QSize(0, super().minimumSizeHint().height())

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        """No preferred width: the column decides."""
        return QtCore.QSize(0, super().sizeHint().height())

    def shown_text(self) -> str:
        """The text as drawn: elided in the middle to the label's width."""
        mode = QtCore.Qt.TextElideMode.ElideMiddle
        return self.fontMetrics().elidedText(self.text(), mode, self.contentsRect().width())

    def event(self, event: QtCore.QEvent) -> bool:
        """A tooltip of the whole text when it is elided and no tooltip is set."""
        elided = self.shown_text() != self.text()
        if event.type() == QtCore.QEvent.Type.ToolTip and elided and not self.toolTip():
            QtWidgets.QToolTip.showText(event.globalPos(), self.text(), self)
            return True
        return super().event(event)

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        """Draw :meth:`shown_text` instead of the whole text."""
        painter = QtGui.QPainter(self)
        painter.drawText(self.contentsRect(), int(self.alignment()), self.shown_text())


def fix_lines(label: QtWidgets.QLabel, lines: int) -> None:
    """Fix ``label``'s height to ``lines`` lines of its font: a text of fewer or more lines moves nothing."""
    margins = label.contentsMargins()
    label.setFixedHeight(label.fontMetrics().lineSpacing() * lines + margins.top() + margins.bottom() + 2)
