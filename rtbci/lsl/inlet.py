"""One LSL input pulled into preallocated numpy buffers, with clock sync and recovery.

pylsl's ``pull_chunk`` allocates a timestamp array (and wraps the destination
in a new ctypes object) on every call. The hot path here calls liblsl's
``lsl_pull_chunk_*`` directly with pointers made once, so a pull allocates no
buffers at all: the samples land in ``data[:n]`` and ``timestamps[:n]``.
"""

from __future__ import annotations

import ctypes
import threading
from enum import StrEnum

import numpy as np

from rtbci.errors import UserError
from rtbci.lsl import require_pylsl
from rtbci.lsl.info import numpy_dtype_for
from rtbci.lsl.resolve import check_stream, resolve_stream
from rtbci.memory import prefaulted_zeros
from rtbci.profile import StreamSpec

__all__ = ["ConnectionState", "LslInput"]

# liblsl's error code for a stream whose source is gone and cannot be recovered.
_LOST_ERROR = -2


class ConnectionState(StrEnum):
    """How an input stands."""

    CONNECTED = "connected"
    LOST = "lost"  # the source disappeared; a background thread is looking for it again


class LslInput:
    """An LSL inlet for one of the profile's input streams.

    Parameters
    ----------
    spec
        The profile's stream description; the stream is checked against it.
    role
        ``"spikes"`` or ``"lfp"``: used in messages and status.
    info
        The resolved ``pylsl.StreamInfo``.
    max_buflen_s
        Inlet buffer in seconds. Small, because stale data is worse than none.
    resolve_timeout_s
        How long a reconnection attempt looks for the stream.

    Attributes
    ----------
    data, timestamps
        Preallocated; after :meth:`pull` returns ``n``, the chunk is ``data[:n]``, ``timestamps[:n]``.
    samples, chunks, reconnects
        Counters since start.
    """

    def __init__(
        self,
        spec: StreamSpec,
        role: str,
        info,
        max_buflen_s: int,
        resolve_timeout_s: float = 5.0,
    ) -> None:
        self.pylsl = require_pylsl()
        check_stream(info, spec, role)
        self.spec = spec
        self.role = role
        self.n_channels = spec.channels
        self.rate = spec.rate
        self.max_buflen_s = max_buflen_s
        self.resolve_timeout_s = resolve_timeout_s
        self.dtype = numpy_dtype_for(info.channel_format())
        # Room for everything the inlet can hold, so one pull always drains a backlog.
        self.capacity = max(16, int(np.ceil(max_buflen_s * max(spec.rate, 100.0))) + 16)
        self.data = prefaulted_zeros((self.capacity, self.n_channels), self.dtype)
        self.timestamps = prefaulted_zeros(self.capacity, np.float64)
        row_bytes = self.n_channels * self.dtype.itemsize
        self._data_ptr = ctypes.c_void_p(self.data.ctypes.data)
        self._ts_ptr = ctypes.c_void_p(self.timestamps.ctypes.data)
        self._rest_data_ptr = ctypes.c_void_p(self.data.ctypes.data + row_bytes)
        self._rest_ts_ptr = ctypes.c_void_p(self.timestamps.ctypes.data + 8)
        self._one_values = ctypes.c_size_t(self.n_channels)
        self._one_sample = ctypes.c_size_t(1)
        self._all_values = ctypes.c_size_t(self.capacity * self.n_channels)
        self._all_samples = ctypes.c_size_t(self.capacity)
        self._rest_values = ctypes.c_size_t((self.capacity - 1) * self.n_channels)
        self._rest_samples = ctypes.c_size_t(self.capacity - 1)
        self._timeout = ctypes.c_double(0.0)
        self._no_wait = ctypes.c_double(0.0)
        self._error = ctypes.c_int(0)
        self._error_ref = ctypes.byref(self._error)
        self.state = ConnectionState.CONNECTED
        self.samples = 0
        self.chunks = 0
        self.reconnects = 0
        self.stream_name = info.name()
        self.uid = info.uid()
        self._checking_outlet: threading.Thread | None = None
        # (info, opened inlet) from the reconnecting thread, swapped in by the next pull.
        self._replacement = None
        self._swapped = threading.Event()
        self._reconnect_lock = threading.Lock()
        self._reconnecting: threading.Thread | None = None
        self._closed = False
        self._use(self._open(info))

    def _open(self, info):
        """A new inlet on ``info``, connected (blocks for milliseconds: never on the hot path)."""
        pylsl = self.pylsl
        # Clock sync maps the source's timestamps onto our clock and keeps doing so; no
        # dejitter (it would smooth away the timing we measure) and no monotonize (it would
        # hide a clock reset that the engine must see).
        inlet = pylsl.StreamInlet(
            info, max_buflen=self.max_buflen_s, recover=True, processing_flags=pylsl.proc_clocksync
        )
        inlet.open_stream(timeout=self.resolve_timeout_s)
        # The first clock-sync estimate takes a few exchanges with the source (0.6 s measured on
        # loopback); liblsl would otherwise make them inside the first pull, on the decode thread,
        # and the first second of data would reach the decoder that late.
        inlet.time_correction(timeout=self.resolve_timeout_s)
        return inlet

    def _use(self, inlet) -> None:
        self.inlet = inlet
        self._obj = inlet.obj
        self._pull = inlet.do_pull_chunk

    def pull(self, timeout: float = 0.0) -> int:
        """Pull what is there into ``data``/``timestamps``; wait up to ``timeout`` for the first sample.

        Returns
        -------
        int
            Number of samples pulled (0 when nothing came, or while the stream is lost).
        """
        if self.state is ConnectionState.LOST:
            if self._replacement is None:
                return 0
            self._swap_in_replacement()
        if timeout > 0.0:
            # liblsl's chunk pull waits until the buffer is full, so wait for one sample only and
            # then take whatever else is already there.
            self._timeout.value = timeout
            got = self._pull(
                self._obj,
                self._data_ptr,
                self._ts_ptr,
                self._one_values,
                self._one_sample,
                self._timeout,
                self._error_ref,
            )
            if self._error.value:
                return self._on_error()
            if got == 0:
                return 0
            got += self._pull(
                self._obj,
                self._rest_data_ptr,
                self._rest_ts_ptr,
                self._rest_values,
                self._rest_samples,
                self._no_wait,
                self._error_ref,
            )
        else:
            got = self._pull(
                self._obj,
                self._data_ptr,
                self._ts_ptr,
                self._all_values,
                self._all_samples,
                self._no_wait,
                self._error_ref,
            )
        if self._error.value:
            return self._on_error()
        n = got // self.n_channels
        if n:
            self.samples += n
            self.chunks += 1
        return n

    def _on_error(self) -> int:
        code = self._error.value
        self._error.value = 0
        if code != _LOST_ERROR:
            self.pylsl.util.handle_error(code)
        # Not recoverable by liblsl itself (no source_id): look for it again off the hot path.
        self.state = ConnectionState.LOST
        with self._reconnect_lock:
            if self._reconnecting is None:
                self._reconnecting = threading.Thread(
                    target=self._reconnect, name=f"reconnect-{self.role}", daemon=True
                )
                self._reconnecting.start()
        return 0

    def _reconnect(self) -> None:
        # Resolving, connecting and destroying an inlet block (connecting took 10 ms on an idle
        # loopback, and was the likely cause of a 1.8 s decode stall in CI when it ran on the
        # decode thread), so all of it happens here; the decode thread only swaps references.
        while True:
            lost = self.inlet  # held here, so that liblsl destroys it on this thread after the swap
            self._find_replacement()
            if not self._closed:  # close() sets _closed before _swapped, so this wait always ends
                self._swapped.wait()
            self._swapped.clear()
            del lost
            with self._reconnect_lock:  # a loss after the swap is this thread's to handle
                if self._closed or self.state is ConnectionState.CONNECTED:
                    self._reconnecting = None
                    return

    def _find_replacement(self) -> None:
        while not self._closed and self._replacement is None:
            try:
                info = resolve_stream(self.spec, self.role, self.resolve_timeout_s)
                check_stream(info, self.spec, self.role)
                inlet = self._open(info)
            # Not back yet, back with the wrong shape, or gone again before it opened: keep looking.
            except (UserError, self.pylsl.util.TimeoutError, self.pylsl.util.LostError):
                continue
            self._replacement = (info, inlet)

    def _swap_in_replacement(self) -> None:
        (info, inlet), self._replacement = self._replacement, None
        self._use(inlet)
        self.stream_name = info.name()
        self.uid = info.uid()
        self.reconnects += 1
        self.state = ConnectionState.CONNECTED
        self._swapped.set()

    def check_for_new_outlet(self) -> None:
        """After a silence, look (off the hot path) whether a new outlet took the stream over.

        liblsl's inlet recovers by itself when a new outlet with the same
        source_id appears, without any error the engine could see; this
        resolves the stream again and counts a reconnect when its uid changed.
        """
        if self._closed or (self._checking_outlet is not None and self._checking_outlet.is_alive()):
            return
        self._checking_outlet = threading.Thread(
            target=self._compare_outlet, name=f"outlet-check-{self.role}", daemon=True
        )
        self._checking_outlet.start()

    def _compare_outlet(self) -> None:
        try:
            info = resolve_stream(self.spec, self.role, self.resolve_timeout_s)
        except UserError:  # gone again: the next silence checks once more
            return
        if info.uid() != self.uid:
            self.uid = info.uid()
            self.stream_name = info.name()
            self.reconnects += 1

    def drop_queued(self) -> int:
        """Discard every sample queued in the inlet (the backlog from before serving); returns how many."""
        return self.inlet.flush()

    def time_correction(self) -> float:
        """The current clock offset to the source in seconds (blocks briefly; not for the hot path)."""
        return self.inlet.time_correction(timeout=1.0)

    def close(self) -> None:
        """Stop receiving."""
        self.state = ConnectionState.LOST
        self._closed = True
        self._swapped.set()  # releases a reconnecting thread that is waiting for a swap
        self.inlet.close_stream()
