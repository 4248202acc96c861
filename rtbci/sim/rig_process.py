"""The simulated rig in its own process: ``rtbci simulate --lsl`` started, watched and stopped.

The rig gets its own interpreter and core time, like a real amplifier. The demo, the
dashboard's tests and the GUI benchmark run it this way.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import tempfile
import time

from rtbci.errors import UserError
from rtbci.lsl.resolve import resolve_stream
from rtbci.profile import Profile

__all__ = ["SimulatedRig"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class SimulatedRig:
    """``rtbci simulate --lsl`` in a subprocess, serving the profile's streams.

    Use as a context manager; on exit the subprocess is stopped (SIGTERM, then SIGKILL).

    Parameters
    ----------
    profile
        Names the streams; its subject must be ``sim-S<k>``.
    seed
        Simulation seed.
    timeout
        Seconds to wait for the streams to appear.
    from_minute
        Where in the session streaming starts (``rtbci simulate --from-minute``).
    """

    def __init__(
        self, profile: Profile, seed: int = 0, timeout: float = 60.0, from_minute: float = 0.0
    ) -> None:
        self.profile = profile
        self.seed = seed
        self.timeout = timeout
        self.from_minute = from_minute
        self.process: subprocess.Popen | None = None

    def start(self) -> SimulatedRig:
        """Start the subprocess and wait until its spikes stream is visible.

        Raises
        ------
        UserError
            If the simulator exits, or its streams do not appear in time.
        """
        command = [sys.executable, "-m", "rtbci.cli", "simulate", "--lsl"]
        command += ["--profile", str(self.profile.path), "--seed", str(self.seed)]
        command += ["--from-minute", str(self.from_minute)]
        # Its messages go to a file, not a pipe: a pipe nobody reads would stall it once full.
        self._log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
            # Its own session: a Ctrl-C meant for the demo reaches it only through stop().
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._log.seek(0)
                error = self._log.read().strip()
                self.stop()
                raise UserError(f"the simulated rig exited with code {code}: {error}")
            try:
                resolve_stream(self.profile.streams.spikes, "spikes", 1.0)
                return self
            except UserError:
                continue
        self.stop()
        raise UserError(f"the simulated rig's streams did not appear within {self.timeout:g} s")

    @property
    def pid(self) -> int | None:
        """The simulator's process id while it runs."""
        return self.process.pid if self.process is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the simulator (SIGTERM lets it close its outlets; SIGKILL if it hangs)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self.process = None

    def __enter__(self) -> SimulatedRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
