"""The engine in its own process, driven over a pipe and followed through shared memory.

A dashboard must never slow the decoder. So the :class:`~rtbci.engine.Engine`
runs in a child process (``multiprocessing``, spawn context: a fresh
interpreter with no Qt, no GUI threads, no inherited locks), its decode thread
writes every bin's record straight into a shared-memory ring, and the parent
reads that ring whenever it likes without a lock (:mod:`rtbci.engine.shared_ring`).
Commands (safety stop, recording, status) go over a pipe and are answered in
order by the child's main thread, never by the decode thread. Every change of
the output's state (armed, or the safety stop) is recorded by the child with
its LSL time, what asked for it, and the bins decoded by then
(:class:`OutputEvent`; ``output_events`` in the status and the final report).

The child ends when asked, and also when its parent goes away (the pipe closes;
a watchdog thread covers start-up), so a crashed dashboard never leaves a
decoder pushing output.

Typical use::

    engine = EngineProcess("profiles/demo.toml")
    description = engine.start()          # resolves streams, loads the model, warms up
    records = engine.records.read_new()   # any time, never blocks
    engine.set_output_enabled(False, "Esc key")  # safety stop: zero velocity, hold position
    report = engine.stop()
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from rtbci.engine.engine import Engine, EngineOptions
from rtbci.engine.shared_ring import SharedRecordReader, SharedRecordRing
from rtbci.errors import UserError
from rtbci.profile import load_profile

__all__ = ["EngineDescription", "EngineProcess", "EngineProcessError", "OutputEvent"]

# How long the child's main thread sleeps between checks of the pipe when nothing comes.
_IDLE_POLL_S = 0.5
# After the parent dies, how long an orderly stop may take before the process just exits.
_PARENT_GONE_GRACE_S = 5.0


class EngineProcessError(UserError):
    """The engine process could not start, failed, or stopped answering."""


@dataclass(frozen=True)
class EngineDescription:
    """What the started engine runs, sent once by the child.

    Attributes
    ----------
    ring_name, ring_dtype, ring_capacity
        The shared-memory record ring (see :class:`SharedRecordReader`).
    output_labels, output_units
        Channels of the output stream, in record ``output`` order.
    backend
        ``Backend.info()``: backend, device, artifact, sha256, window_bins, ...
    calibration_date, heldout_r2
        From the artifact's manifest.
    bin_ms
        Bin width.
    profile_path, rig_name
        The profile the engine runs.
    output_stream
        Name of the LSL output stream.
    pid
        The engine process id.
    """

    ring_name: str
    ring_dtype: np.dtype
    ring_capacity: int
    output_labels: list[str]
    output_units: list[str]
    backend: dict[str, Any]
    calibration_date: str
    heldout_r2: float | None
    bin_ms: float
    profile_path: str
    rig_name: str
    output_stream: str
    pid: int


@dataclass(frozen=True)
class OutputEvent:
    """One change of the output's state, recorded by the engine process when it applied it.

    Attributes
    ----------
    time
        LSL clock (``pylsl.local_clock``, the clock of every record's timestamps) just after the change;
        every bin pushed after this time has the new state.
    enabled
        ``True``: armed; ``False``: the safety stop (zero velocity, position held).
    source
        What asked for it (``"Esc key"``, ``"output button"``, ``"arm_on_start"``, ...).
    bins
        Bins decoded by then.
    """

    time: float
    enabled: bool
    source: str
    bins: int


def _error_text(error: BaseException) -> str:
    if isinstance(error, UserError | ValueError):  # ProfileError is a ValueError with a clear message
        return str(error)
    return "".join(traceback.format_exception(error)).rstrip()


def _describe(engine: Engine, profile_path: str) -> EngineDescription:
    manifest = engine.backend.manifest
    records = engine.records
    return EngineDescription(
        ring_name=records.name,
        ring_dtype=records.dtype,
        ring_capacity=records.capacity,
        output_labels=list(engine.output_labels),
        output_units=list(engine.output_units),
        backend=engine.backend.info(),
        calibration_date=manifest.calibration_date,
        heldout_r2=manifest.heldout_r2,
        bin_ms=engine.profile.features.bin_ms,
        profile_path=profile_path,
        rig_name=engine.profile.rig.name,
        output_stream=engine.loop.outlet.name,
        pid=os.getpid(),
    )


def _set_output(engine: Engine, events: list[OutputEvent], enabled: bool, source: str) -> OutputEvent:
    """Arm or hold the output now, and record the event."""
    engine.set_output_enabled(enabled)
    event = OutputEvent(engine.pylsl.local_clock(), enabled, source, engine.loop.counters.decoded)
    events.append(event)
    return event


def _reset_position(engine: Engine, source: str) -> float:
    """Zero the integrated position at the next bin; returns the LSL time of the request."""
    engine.reset_position(source)
    return engine.pylsl.local_clock()


def _serve_commands(conn: Connection, engine: Engine, events: list[OutputEvent]) -> None:
    """Answer commands until told to shut down or the parent goes away."""
    handlers = {
        "status": lambda _: engine.snapshot() | {"output_events": [asdict(event) for event in events]},
        "output": lambda argument: _set_output(engine, events, *argument),
        "reset_position": lambda source: _reset_position(engine, source),
        "record": lambda path: engine.start_recording(Path(path)),
        "stop_recording": lambda _: engine.stop_recording(),
    }
    while True:
        try:
            if not conn.poll(_IDLE_POLL_S):
                continue
            command, argument = conn.recv()
        except (EOFError, OSError):  # the parent is gone: stop decoding now
            return
        if command == "shutdown":
            return
        try:
            conn.send(("ok", command, handlers[command](argument)))
        except Exception as error:  # reported to the parent, which shows it; the engine keeps running
            conn.send(("error", command, _error_text(error)))


def _exit_with_parent() -> None:
    """End this process if its parent dies, even while it is still connecting or warming up.

    While serving, the command loop sees the pipe close and stops in order; this
    watchdog is the backstop, and the only guard during start-up (resolving
    streams can take seconds).
    """
    parent = multiprocessing.parent_process()

    def watch() -> None:
        wait([parent.sentinel])
        time.sleep(_PARENT_GONE_GRACE_S)
        os._exit(1)

    threading.Thread(target=watch, name="rtbci-parent-watch", daemon=True).start()


def _engine_main(conn: Connection, profile_path: str, options: EngineOptions) -> None:
    """Body of the engine process."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when this process stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    engine: Engine | None = None
    try:
        engine = Engine.from_profile(
            load_profile(profile_path), replace(options, record_ring=SharedRecordRing)
        )
        engine.start()
    except BaseException as error:
        conn.send(("failed", _error_text(error)))
        if engine is not None and engine.loop is not None and engine.loop.is_alive():
            engine.stop()
        if engine is not None and engine.records is not None:
            engine.records.close(unlink=True)  # the parent never learnt its name
        return
    report: dict[str, Any] = {}
    events: list[OutputEvent] = []
    try:
        conn.send(("started", _describe(engine, profile_path)))
        _serve_commands(conn, engine, events)
    finally:
        report = engine.stop() | {"output_events": [asdict(event) for event in events]}
        engine.records.close()
        try:
            conn.send(("stopped", report))
        except (BrokenPipeError, OSError):
            pass


class EngineProcess:
    """The parent's handle on an engine running in its own process.

    Parameters
    ----------
    profile_path
        Profile with streams and a ``[model]`` section.
    options
        Engine options (backend override, recording from the start, ...).

    Attributes
    ----------
    description
        Set once the engine has started.
    records
        Reader of the engine's per-bin records (set once started).
    """

    def __init__(self, profile_path: str | Path, options: EngineOptions | None = None) -> None:
        self.profile_path = str(Path(profile_path).resolve())
        self.options = options or EngineOptions()
        self.description: EngineDescription | None = None
        self.records: SharedRecordReader | None = None
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.final_report: dict | None = None

    def launch(self) -> None:
        """Start the child process; it connects and warms up in the background (see :meth:`poll_started`)."""
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        # Daemonic: multiprocessing terminates it when this process exits, even without stop().
        self.process = context.Process(
            target=_engine_main,
            args=(child_conn, self.profile_path, self.options),
            name="rtbci-engine",
            daemon=True,
        )
        self.process.start()
        child_conn.close()

    def poll_started(self, timeout: float = 0.0) -> EngineDescription | None:
        """The description once the engine serves, ``None`` while it is still starting.

        Raises
        ------
        EngineProcessError
            If the engine failed to start (stream missing, artifact mismatch, ...), with its message.
        """
        if self.description is not None:
            return self.description
        try:
            ready = self.conn.poll(timeout)
            message = self.conn.recv() if ready else None
        except (EOFError, OSError):
            message = None
            ready = True
        if message is None:
            if ready or not self.process.is_alive():
                self.process.join(1.0)
                raise EngineProcessError(
                    f"the engine process exited (code {self.process.exitcode}) while starting"
                )
            return None
        if message[0] == "failed":
            self.process.join(5.0)
            raise EngineProcessError(message[1])
        self.description = message[1]
        self.records = SharedRecordReader(
            self.description.ring_name, self.description.ring_dtype, self.description.ring_capacity
        )
        return self.description

    def start(self, timeout: float = 120.0) -> EngineDescription:
        """Launch and wait until the engine serves.

        Raises
        ------
        EngineProcessError
            If it fails to start, or does not start within ``timeout`` seconds.
        """
        self.launch()
        description = self.poll_started(timeout)
        if description is None:
            self.stop()
            raise EngineProcessError(f"the engine did not start within {timeout:g} s")
        return description

    @property
    def running(self) -> bool:
        """Whether the engine has started and its process is alive."""
        return self.description is not None and self.process is not None and self.process.is_alive()

    def _call(self, command: str, argument: object = None, timeout: float = 10.0) -> Any:
        if not self.running:
            raise EngineProcessError("the engine is not running")
        try:
            self.conn.send((command, argument))
            if not self.conn.poll(timeout):
                raise EngineProcessError(
                    f"the engine process did not answer {command!r} within {timeout:g} s"
                )
            status, _, result = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as error:
            raise EngineProcessError(
                f"the engine process is gone ({error or type(error).__name__})"
            ) from None
        if status == "error":
            raise EngineProcessError(result)
        return result

    def status(self) -> dict:
        """:meth:`rtbci.engine.Engine.snapshot` of the running engine, plus ``output_events``: every
        :class:`OutputEvent` so far, as a dict."""
        return self._call("status")

    def set_output_enabled(self, enabled: bool, source: str = "") -> OutputEvent:
        """Arm the output (``True``), or the safety stop (``False``): from the next bin on, output
        velocity is zero and position holds. Returns the event as the engine recorded it.

        Parameters
        ----------
        enabled
            The new state.
        source
            What asked for it, for the record (``"Esc key"``, ``"output button"``, ...).
        """
        return self._call("output", (bool(enabled), source))

    def reset_position(self, source: str = "") -> float:
        """Zero the output's integrated position (the cursor back to the centre) at the next bin.

        The bin that applies it logs ``position reset (<source>)`` as an engine event, in the status's
        ``events`` and the recording's events stream. Returns the LSL time of the request.

        Parameters
        ----------
        source
            What asked for it (``"reset button"``, ...).
        """
        return self._call("reset_position", source)

    def start_recording(self, path: str | Path) -> None:
        """Record inputs, features, outputs and timing to a new Session file, from now on."""
        self._call("record", str(Path(path).resolve()))

    def stop_recording(self) -> dict:
        """Finish the recording; returns its counters (bins written, missed records, error)."""
        return self._call("stop_recording")

    def stop(self, timeout: float = 10.0) -> dict:
        """Stop the engine and its process, release the shared memory; returns the final report
        (:meth:`status`'s fields and the latency summaries).

        Safe to call more than once, and on an engine that never started.
        """
        if self.process is None:
            return self.final_report or {}
        if self.description is None and self.process.is_alive():
            try:
                self.poll_started()  # it may have just started: then it stops in order below
            except EngineProcessError:
                pass
        if self.description is None:
            # Still connecting or warming up: nothing to finish, so do not wait for it.
            self.process.terminate()
        try:
            if self.description is not None and self.process.is_alive():
                self.conn.send(("shutdown", None))
                while self.conn.poll(timeout):
                    message = self.conn.recv()
                    if message[0] == "stopped":
                        self.final_report = message[1]
                        break
        except (EOFError, OSError, BrokenPipeError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        if self.records is not None:
            self.records.close(unlink=True)
            self.records = None
        self.conn.close()
        self.process = None
        self.description = None
        return self.final_report or {}
