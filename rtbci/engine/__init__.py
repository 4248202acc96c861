"""The streaming engine: LSL inputs -> bins -> decoder backend -> LSL output, recorder, status.

Public entry points: :class:`Engine` and :class:`EngineOptions`; the per-bin
record layout is :func:`rtbci.engine.records.record_dtype`.
"""

from rtbci.engine.engine import Engine, EngineError, EngineOptions
from rtbci.engine.resolve import StreamMismatchError, StreamMissingError

__all__ = ["Engine", "EngineError", "EngineOptions", "StreamMismatchError", "StreamMissingError"]
