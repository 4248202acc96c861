"""The Qt stack: PySide6 stays below 6.12 (6.12.0 + pyqtgraph 0.14 crashed in PlotDataItem.setData),
and a real setData on real data survives. The drawing runs in a subprocess, so a bad pair fails this
test with the crash's output instead of killing the test run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import PySide6

_SMOKE = textwrap.dedent(
    """
    import numpy as np
    import pyqtgraph as pg
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication([])
    plot = pg.PlotWidget()
    curve = plot.plot()
    plot.resize(400, 300)
    plot.show()
    x = np.linspace(-10.0, 0.0, 1500)
    for k in range(200):
        y = np.sin(x * (1 + k / 50.0))
        curve.setData(x, y, skipFiniteCheck=True)
        app.processEvents()
    got_x, got_y = curve.getData()
    assert len(got_x) == 1500 and np.array_equal(got_y, y)
    image = plot.grab().toImage()
    assert not image.isNull()
    print("smoke ok")
    """
)


def test_pyside6_is_below_the_crashing_release():
    major, minor = (int(part) for part in PySide6.__version__.split(".")[:2])
    assert (major, minor) < (6, 12), (
        f"PySide6 {PySide6.__version__}: 6.12.0 crashes with pyqtgraph (pin <6.12)"
    )


def test_plotdataitem_setdata_on_real_data_does_not_crash():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", _SMOKE], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, f"Qt smoke test crashed:\n{result.stdout}\n{result.stderr}"
    assert "smoke ok" in result.stdout


def test_the_cli_and_the_engine_host_never_import_qt():
    code = (
        "import sys\n"
        "from rtbci.cli import build_parser\n"
        "import rtbci.demo, rtbci.display, rtbci.engine.process, rtbci.engine.behavior\n"
        "build_parser().parse_args(['demo', '--headless'])\n"
        # apps.commands registers `rtbci app` and `rtbci demo` (entry points); the dashboard stays out.
        "qt = ('PySide6', 'pyqtgraph', 'apps.decoder')\n"
        "print(sorted(name for name in sys.modules if name.startswith(qt)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
