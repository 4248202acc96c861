"""The demo: the simulated rig as LSL streams, the decoder in its own process, and a live score.

:class:`rtbci.sim.rig_process.SimulatedRig` runs ``rtbci simulate --lsl`` as a subprocess
(so the rig has its own interpreter and core time, like a real amplifier). :func:`run_headless`
is ``rtbci demo --headless``: rig plus engine, then a summary of bins, latency and R² against
the simulated truth (:class:`rtbci.live_score.LiveScorer`). The windowed demo
(``apps.decoder``) uses the same pieces.
"""

from __future__ import annotations

import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.recfunctions import repack_fields
from tqdm import tqdm

from rtbci.engine.behavior import BehaviorFollower
from rtbci.engine.engine import EngineOptions
from rtbci.engine.process import EngineProcess
from rtbci.engine.status import record_latencies
from rtbci.errors import UserError
from rtbci.live_score import LiveScorer
from rtbci.profile import Profile, load_profile, write_profile
from rtbci.sim.rig_process import SimulatedRig
from rtbci.timing import latency_summary_ms

__all__ = [
    "DEMO_PROFILE",
    "HeadlessSummary",
    "best_backend",
    "check_demo_profile",
    "compact_timing",
    "run_headless",
]

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"
# The demo decoder trained on the first minutes of the session the demo streams
# (rtbci.train.demo_model.DemoData.minutes); the demo streams from here on, so the R² it
# prints is on data the decoder never saw.
DEMO_UNSEEN_FROM_MINUTE = 6.0
# How often the headless demo reads the engine's records and the truth.
_POLL_S = 0.1


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
            ("", "(noisy over 30 s; the model README gives it on 10 unseen minutes)"),
            ("backend", f"{self.backend.get('backend')} on {self.backend.get('device')}"),
        ]
        return [f"{label:<20}{text}" for label, text in rows]


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
            scorer = LiveScorer(follower, names, columns, profile.features.kinematics_lag_ms / 1000.0)
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
