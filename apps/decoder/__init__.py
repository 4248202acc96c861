"""The decoder dashboard: PySide6 + pyqtgraph over an engine running in its own process.

Modules, one job each:

- :mod:`~apps.decoder.feed` — Qt-free: follows the engine's shared-memory records, its status and the
  behavior stream into preallocated rolling arrays, and computes the live figures.
- :mod:`~apps.decoder.kinematics_panel`, :mod:`~apps.decoder.latency_panel`,
  :mod:`~apps.decoder.health_panel`, :mod:`~apps.decoder.model_card`, :mod:`~apps.decoder.controls` —
  the panels.
- :mod:`~apps.decoder.main_window` — lays them out, drives the 30 Hz redraw, starts and stops the engine.
- :mod:`~apps.decoder.launch` — ``rtbci app`` and the windowed ``rtbci demo``.
"""
