"""The streaming engine: LSL inputs -> bins -> decoder backend -> LSL output, recorder, status.

Public entry points: :class:`Engine` and :class:`EngineOptions`; the per-bin
record layout is :func:`rtbci.engine.records.record_dtype`. The streams it cannot find or
use raise :mod:`rtbci.lsl.resolve`'s ``StreamMissingError`` and ``StreamMismatchError``.
"""

from rtbci.engine.engine import Engine, EngineError, EngineOptions

__all__ = ["Engine", "EngineError", "EngineOptions"]
