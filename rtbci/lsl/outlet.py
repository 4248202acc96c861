"""The decoder's LSL output: one float32 sample per bin, timestamped with the bin's end."""

from __future__ import annotations

import ctypes

import numpy as np

from rtbci.errors import UserError
from rtbci.lsl import require_pylsl
from rtbci.lsl.info import make_stream_info
from rtbci.profile import StreamSpec

__all__ = ["KinematicsOutlet"]


class KinematicsOutlet:
    """An LSL outlet for decoded kinematics.

    Its description names every channel with its unit, so any LSL client (or a
    recorder such as LabRecorder) knows what it receives.

    Parameters
    ----------
    spec
        The profile's output stream; its channel count must match ``labels``.
    labels, units
        Per output channel.
    rate
        Nominal rate (bins per second).
    """

    def __init__(self, spec: StreamSpec, labels: list[str], units: list[str], rate: float) -> None:
        if spec.channels != len(labels):
            raise UserError(
                f"streams.output.channels is {spec.channels}, but the decoder writes {len(labels)} "
                f"channels ({', '.join(labels)})"
            )
        pylsl = require_pylsl()
        name = spec.name or spec.source_id or spec.type
        info = make_stream_info(
            name, spec.type or "Kinematics", spec.source_id or name, labels, units, rate, "float32"
        )
        self.outlet = pylsl.StreamOutlet(info)
        self._buffer = np.zeros(len(labels), dtype=np.float32)
        self._pointer = ctypes.c_void_p(self._buffer.ctypes.data)
        self._timestamp = ctypes.c_double(0.0)
        self._pushthrough = ctypes.c_int(1)
        self._push = self.outlet.do_push_sample
        self._obj = self.outlet.obj
        self.name = name

    def push(self, values: np.ndarray, timestamp: float) -> None:
        """Send one sample stamped ``timestamp`` (LSL clock), with no allocation."""
        self._buffer[...] = values
        self._timestamp.value = timestamp
        self._push(self._obj, self._pointer, self._timestamp, self._pushthrough)

    def has_consumers(self) -> bool:
        """Whether any inlet is connected."""
        return self.outlet.have_consumers()
