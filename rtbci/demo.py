"""The demo: the simulated rig as LSL streams, the decoder in its own process, and a live score.

:class:`SimulatedRig` runs ``rtbci simulate --lsl`` as a subprocess (so the rig
has its own interpreter and core time, like a real amplifier). :func:`run_headless`
is ``rtbci demo --headless``: rig plus engine, then a summary of bins, latency and
R² against the simulated truth. The windowed demo (``apps.decoder``) uses the same
two pieces.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.recfunctions import repack_fields
from tqdm import tqdm

from rtbci.engine.behavior import BehaviorFollower, r2_with_truth
from rtbci.engine.engine import EngineOptions
from rtbci.engine.process import EngineProcess
from rtbci.engine.status import record_latencies
from rtbci.errors import UserError
from rtbci.lsl.resolve import resolve_stream
from rtbci.profile import Profile, load_profile
from rtbci.timing import latency_summary_ms

__all__ = [
    "DEMO_PROFILE",
    "HeadlessSummary",
    "SimulatedRig",
    "best_backend",
    "check_demo_profile",
    "compact_timing",
    "display_problem",
    "has_display",
    "run_headless",
]

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"
# The demo decoder trained on the first minutes of the session the demo streams
# (rtbci.train.demo_model.DemoRecipe.minutes); the demo streams from here on, so the R² it
# prints is on data the decoder never saw.
DEMO_UNSEEN_FROM_MINUTE = 6.0
# How often the headless demo reads the engine's records and the truth.
_POLL_S = 0.1
_PR_SET_PDEATHSIG = 1


def compact_timing(records: np.ndarray) -> np.ndarray:
    """The latency timestamps of per-bin records as a packed copy (no features, 40 bytes a bin),
    for keeping every bin of a long run; :func:`rtbci.engine.status.record_latencies` reads it."""
    return repack_fields(records[["t_last_sample", "t_read", "t_decode_start", "t_decode_end", "t_push"]])


def best_backend() -> str:
    """``tensorrt`` where TensorRT is installed, else ``onnxruntime`` (the CPU default)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "onnxruntime"
    return "tensorrt"


# How long opening an X display may take (a remote one that does not answer would hang Qt).
_X_CONNECT_TIMEOUT_S = 3.0


def _x_display_problem(display: str) -> str | None:
    """Why the X display ``display`` cannot be opened, or ``None`` when it can.

    Connects with libxcb, the library Qt's X11 platform plugin connects with, so an address with no
    server behind it, or a server that refuses the connection, is found here rather than by Qt's abort.
    """
    try:
        xcb = ctypes.CDLL(ctypes.util.find_library("xcb") or "libxcb.so.1")
    except OSError:
        return "libxcb is not installed, so Qt cannot open an X11 window"
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    errors: list[int] = []

    def connect() -> None:
        connection = xcb.xcb_connect(display.encode(), None)
        errors.append(xcb.xcb_connection_has_error(connection))
        xcb.xcb_disconnect(connection)

    thread = threading.Thread(target=connect, name="rtbci-display-probe", daemon=True)
    thread.start()
    thread.join(_X_CONNECT_TIMEOUT_S)
    if not errors:
        return f"the X display DISPLAY={display} did not answer within {_X_CONNECT_TIMEOUT_S:g} s"
    if errors[0]:
        return f"the X display DISPLAY={display} cannot be opened"
    return None


def display_problem() -> str | None:
    """Why no window can open, in one line; ``None`` when one can.

    A window can open on an explicit Qt platform other than X11 or Wayland (``QT_QPA_PLATFORM``,
    e.g. ``offscreen``), on a Wayland display whose socket exists, or on an X display that accepts
    a connection.
    """
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith(("xcb", "wayland")):
        return None
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland and not platform.startswith("xcb"):
        socket = Path(os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")) / wayland
        if Path(wayland).is_absolute() or socket.exists():
            return None
    display = os.environ.get("DISPLAY")
    if display:
        return _x_display_problem(display)
    if wayland:
        return f"the Wayland display WAYLAND_DISPLAY={wayland} has no socket"
    return "no display (DISPLAY and WAYLAND_DISPLAY are unset)"


def has_display() -> bool:
    """Whether a window can open (see :func:`display_problem`)."""
    return display_problem() is None


def check_demo_profile(path: Path) -> Profile:
    """Load a profile for the demo: it needs a ``[model]`` section and a behavior stream.

    Raises
    ------
    UserError
        Naming the file and what is missing.
    """
    try:
        profile = load_profile(path)
    except ValueError as error:  # ProfileError
        raise UserError(str(error)) from None
    if profile.model is None:
        raise UserError(
            f"{path}: no [model] section, so there is no decoder to run. The bundled demo model "
            "lives in profiles/models/demo/ with a [model] section in profiles/demo.toml; train or "
            "export one and point [model] artifact/sha256 at it"
        )
    return profile


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return repr(value)


def _toml_lines(data: dict, prefix: str = "") -> list[str]:
    is_table_array = [isinstance(v, list) and bool(v) and isinstance(v[0], dict) for v in data.values()]
    lines = [
        f"{key} = {_toml_value(value)}"
        for (key, value), table_array in zip(data.items(), is_table_array, strict=True)
        if not isinstance(value, dict) and not table_array
    ]
    for (key, value), table_array in zip(data.items(), is_table_array, strict=True):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            lines += ["", f"[{name}]", *_toml_lines(value, f"{name}.")]
        elif table_array:
            for item in value:
                lines += ["", f"[[{name}]]", *_toml_lines(item, f"{name}.")]
    return lines


def write_profile(data: dict, path: Path) -> Path:
    """Write a parsed profile mapping (as ``tomllib`` returns it) back as TOML."""
    path.write_text("\n".join(_toml_lines(data)).lstrip() + "\n", encoding="utf-8")
    return path


def private_copy(profile_path: Path, out_dir: Path, tag: str | None = None) -> Path:
    """A copy of a simulated-rig profile whose streams carry a unique suffix, so that this demo never
    mixes with another one (or a real rig) on the same network. The model artifact path is made absolute.

    Returns
    -------
    Path
        The new profile file in ``out_dir``.
    """
    profile = check_demo_profile(profile_path)
    data = tomllib.loads(Path(profile_path).read_text(encoding="utf-8"))
    tag = tag or uuid.uuid4().hex[:8]
    for spec in data["streams"].values():
        for key in ("name", "source_id"):
            if spec.get(key):
                spec[key] = f"{spec[key]}-{tag}"
    data["model"]["artifact"] = str(profile.artifact_dir())
    return write_profile(data, Path(out_dir) / f"{Path(profile_path).stem}-{tag}.toml")


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the demo process dies, even by SIGKILL."""
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


@dataclass
class HeadlessSummary:
    """What ``rtbci demo --headless`` prints.

    Attributes
    ----------
    seconds
        How long it decoded (after start-up).
    startup_s
        Seconds from the call to the first of those: the simulated rig skips to its first unseen
        minute, the decoder process loads, warms up and places its bin grid on the first samples.
    expected_bins
        Bins in ``seconds`` at the profile's bin width (1500 for 30 s of 20 ms bins).
    bins
        Bins decoded during the run.
    processing_ms
        Push minus the read of the chunk that completed the bin: p50/p99/p999/max.
    source_ms
        Push minus the bin's last input sample's timestamp: p50/p99/p999/max.
    decoder_ms
        Backend step plus post-processing only.
    late, overdue, gaps
        From the engine's counters.
    r2
        Velocity R² per axis against the simulated truth (at bin end + the training lag).
    r2_bins
        Bins the R² is computed over.
    missed_records
        Records the reader lost (it fell a full ring behind).
    backend
        What decoded.
    """

    bins: int
    processing_ms: dict[str, float]
    source_ms: dict[str, float]
    decoder_ms: dict[str, float]
    late: int
    overdue: int
    gaps: int
    r2: dict[str, float]
    r2_bins: int
    missed_records: int
    backend: dict
    seconds: float
    startup_s: float
    expected_bins: int

    def lines(self) -> list[str]:
        """The summary as printed."""

        def percentiles(summary: dict[str, float]) -> str:
            return "  ".join(f"{q} {summary[f'{q}_ms']:.2f} ms" for q in ("p50", "p99", "max"))

        r2 = " ".join(f"{name} {value:.3f}" for name, value in self.r2.items()) or "n/a (no behavior stream)"
        counts = f"late {self.late}, overdue {self.overdue}, gaps {self.gaps}"
        if self.missed_records:
            counts += f", {self.missed_records} not read in time"
        rows = [
            ("decoding", f"{self.seconds:g} s, after {self.startup_s:.1f} s of start-up"),
            ("bins decoded", f"{self.bins} of {self.expected_bins} ({counts})"),
        ]
        if self.bins < self.expected_bins - 1:
            rows.append(("", "fewer than the time holds: the simulated rig or the decoder fell behind"))
        rows += [
            ("processing latency", percentiles(self.processing_ms)),
            ("source latency", percentiles(self.source_ms)),
            ("decoder only", percentiles(self.decoder_ms)),
            ("velocity R²", f"{r2} over {self.r2_bins} bins"),
            ("backend", f"{self.backend.get('backend')} on {self.backend.get('device')}"),
        ]
        return [f"{label:<20}{text}" for label, text in rows]


class _Scorer:
    """Accumulates decoded bins and, once the truth has caught up, their lagged true velocities."""

    def __init__(self, follower: BehaviorFollower | None, names: list[str], columns: list[int], lag_s: float):
        self.follower = follower
        self.names = names
        self.columns = columns
        self.lag_s = lag_s
        self.pending: list[np.ndarray] = []
        self.decoded: list[np.ndarray] = []
        self.truth: list[np.ndarray] = []

    def add(self, records: np.ndarray) -> None:
        if self.follower is None or not len(records):
            return
        self.pending.append(records)

    def score_ready(self) -> None:
        if self.follower is None or not self.pending:
            return
        self.follower.poll()
        newest = self.follower.times[-1] if len(self.follower.times) else -np.inf
        records = np.concatenate(self.pending)
        due = records["end_time"] + self.lag_s <= newest
        ready = records[due]
        self.pending = [records[~due]]
        if len(ready):
            self.decoded.append(ready["output"][:, self.columns].astype(np.float64))
            self.truth.append(self.follower.at(ready["end_time"] + self.lag_s, self.names))

    def r2(self) -> tuple[dict[str, float], int]:
        if not self.decoded:
            return {}, 0
        decoded, truth = np.concatenate(self.decoded), np.concatenate(self.truth)
        values = r2_with_truth(decoded, truth)
        return dict(zip(self.names, values.tolist(), strict=True)), int(np.isfinite(truth).all(axis=1).sum())


def run_headless(
    profile_path: Path, seconds: float, backend: str | None = None, seed: int = 0
) -> HeadlessSummary:
    """Run the simulated rig and the decoder for ``seconds`` without a window and score it.

    Parameters
    ----------
    profile_path
        A profile of the simulated rig with a ``[model]`` section (default demo: ``profiles/demo.toml``).
    seconds
        How long to decode.
    backend
        Backend override; ``None`` takes the best available.
    seed
        Simulation seed.

    Returns
    -------
    HeadlessSummary
    """
    called = time.monotonic()
    profile = check_demo_profile(profile_path)
    engine = EngineProcess(profile_path, EngineOptions(backend=backend or best_backend()))
    follower = None
    with SimulatedRig(profile, seed, from_minute=DEMO_UNSEEN_FROM_MINUTE):
        try:
            description = engine.start()
            names = [name for name in profile.output.kinematics if name.startswith("vel_")]
            if profile.streams.behavior is not None:
                follower = BehaviorFollower(
                    profile.streams.behavior, timeout=profile.engine.resolve_timeout_s
                )
            columns = [description.output_labels.index(name) for name in names]
            scorer = _Scorer(follower, names, columns, profile.features.kinematics_lag_ms / 1000.0)
            kept = []
            started = time.monotonic()
            startup_s = started - called
            with tqdm(total=round(seconds), unit="s", desc="decoding", leave=False) as bar:
                while (elapsed := time.monotonic() - started) < seconds:
                    time.sleep(_POLL_S)
                    records = engine.records.read_new()
                    kept.append(compact_timing(records))
                    scorer.add(records)
                    scorer.score_ready()
                    bar.update(min(round(elapsed), bar.total) - bar.n)
            time.sleep(profile.features.kinematics_lag_ms / 1000.0 + 0.05)
            scorer.score_ready()
            status = engine.status()
            missed = engine.records.missed
        finally:
            if follower is not None:
                follower.close()
            engine.stop()
    timing = np.concatenate(kept)
    latencies = record_latencies(timing)
    if not latencies.source.size:
        raise UserError(f"no bins were decoded in {seconds:g} s: are the simulated streams flowing?")
    r2, r2_bins = scorer.r2()
    return HeadlessSummary(
        bins=len(timing),
        processing_ms=latency_summary_ms(latencies.processing),
        source_ms=latency_summary_ms(latencies.source),
        decoder_ms=latency_summary_ms(latencies.decoder),
        late=status["late"],
        overdue=status["overdue"],
        gaps=status["gaps"],
        r2=r2,
        r2_bins=r2_bins,
        missed_records=missed,
        backend=description.backend,
        seconds=seconds,
        startup_s=startup_s,
        expected_bins=round(seconds / profile.bin_s),
    )
