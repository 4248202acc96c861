"""The engine: connects the profile's LSL inputs, runs the decode thread, and records.

Typical use::

    engine = Engine.from_profile(load_profile("profiles/demo.toml"))
    engine.start()            # resolves and checks the streams, warms up, serves
    ...                       # engine.snapshot(), engine.records (per-bin records)
    report = engine.stop()
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtbci.engine.align import BinAligner
from rtbci.engine.loop import Backend, DecodeLoop, EngineInput
from rtbci.engine.postprocess import PostProcessor, output_channels
from rtbci.engine.recorder import FollowedSource, RawSource, Recorder
from rtbci.engine.records import record_dtype
from rtbci.engine.ring import ChunkRing, RecordRing
from rtbci.engine.scheduling import inherited_realtime_priority
from rtbci.engine.status import record_latencies
from rtbci.errors import UserError
from rtbci.io.session import SessionMeta, StreamKind
from rtbci.lsl import require_pylsl
from rtbci.lsl.follow import FollowedStream
from rtbci.lsl.inlet import LslInput
from rtbci.lsl.outlet import KinematicsOutlet
from rtbci.lsl.resolve import resolve_stream
from rtbci.profile import Profile
from rtbci.signal.grid import FEATURIZER_SETTINGS, make_featurizer
from rtbci.task.publisher import task_markers_spec, task_stream_spec
from rtbci.task.stream import TASK_CHANNELS, task_channel_units
from rtbci.timing import latency_summary_ms

__all__ = ["Engine", "EngineError", "EngineOptions"]


# Raw chunks the recorder may lag behind by before chunks are counted as lost.
_RAW_RING_S = 10.0


class EngineError(UserError):
    """The decode thread stopped on an error."""


@dataclass(frozen=True)
class EngineOptions:
    """How to run the engine.

    Attributes
    ----------
    backend
        Backend name; ``None`` takes the profile's.
    record
        Session file to record to; ``None`` records nothing. A recording also takes the cursor
        task's stream and markers whenever ``rtbci task`` runs for this rig (it may start before
        or after the engine, or never), and the profile's behavior stream if it is there when the
        recording begins.
    warmup_steps
        Backend steps on zeros before serving.
    record_ring_bins
        Per-bin records kept in memory for readers (status, dashboard, recorder).
    record_ring
        The ring class that holds them; :class:`rtbci.engine.shared_ring.SharedRecordRing` puts
        them in shared memory for a dashboard in another process.
    realtime_priority
        Real-time FIFO priority (1-99) for the decode thread and the inputs' liblsl
        receiver threads; None keeps the default scheduling. Needs CAP_SYS_NICE (or
        root); when refused, the snapshot's ``scheduling`` says so and decoding goes
        on with the default policy.
    output_enabled
        Whether the output is armed from the first bin; ``False`` starts it held (zero velocity,
        position held) until :meth:`Engine.set_output_enabled` arms it.
    """

    backend: str | None = None
    record: Path | None = None
    warmup_steps: int = 50
    record_ring_bins: int = 3000
    record_ring: type[RecordRing] = RecordRing
    realtime_priority: int | None = None
    output_enabled: bool = True


class Engine:
    """The streaming decoder over LSL.

    Parameters
    ----------
    profile
        Streams, bins, features, output and engine policy.
    backend
        The decoder; anything with ``reset()``, ``step(features)`` and ``info()``.
    model_input
        ``"lfp"`` or ``"spikes"``: which input's features the backend reads.
    options
        Recording and warm-up.

    Attributes
    ----------
    records
        Every decoded bin's record (:func:`rtbci.engine.records.record_dtype`), for readers that
        follow it with their own cursor (:meth:`RecordRing.read_since`).
    """

    def __init__(
        self,
        profile: Profile,
        backend: Backend,
        model_input: str = "lfp",
        options: EngineOptions | None = None,
    ) -> None:
        if model_input not in ("lfp", "spikes"):
            raise ValueError(f"model_input must be 'lfp' or 'spikes', got {model_input!r}")
        self.profile = profile
        self.backend = backend
        self.model_input = model_input
        self.options = options or EngineOptions()
        self.output_labels, self.output_units = output_channels(profile.output)
        self.pylsl = require_pylsl()
        self.inputs: list[EngineInput] = []
        self.loop: DecodeLoop | None = None
        self.recorder: Recorder | None = None
        self.records: RecordRing | None = None
        self._started_at = 0.0

    @classmethod
    def from_profile(cls, profile: Profile, options: EngineOptions | None = None) -> Engine:
        """An engine with the profile's decoder artifact loaded on the chosen backend."""
        from rtbci.runtime import load_backend
        from rtbci.runtime.manifest import feature_disagreements

        if profile.model is None:
            raise UserError(f"{profile.path}: the profile has no [model] section, so there is nothing to run")
        options = options or EngineOptions()
        backend = load_backend(
            options.backend or profile.model.backend,
            profile.artifact_dir(),
            device=profile.model.device,
            expected_sha256=profile.model.sha256,
        )
        # Only the settings the artifact records: one that predates a setting (or was made by hand
        # without it) is served as it always was.
        recorded = [name for name in FEATURIZER_SETTINGS if name in backend.manifest.features]
        served = dataclasses.asdict(profile.features)
        disagreements = feature_disagreements(backend.manifest, served, recorded)
        if disagreements:
            raise UserError(
                f"{profile.path}: [features] is not what the decoder {profile.artifact_dir()} was trained "
                "with, so it would be served other numbers: " + "; ".join(disagreements)
            )
        return cls(profile, backend, profile.model.input, options)

    def start(self) -> None:
        """Resolve and check the inputs, create the outlet, warm up, and start serving.

        Raises
        ------
        StreamMissingError, StreamMismatchError
            If an input is not visible or does not match the profile.
        EngineError
            If the decode thread fails while warming up.
        """
        profile = self.profile
        engine = profile.engine
        bin_s = profile.bin_s
        roles = {"spikes": profile.streams.spikes, "lfp": profile.streams.lfp}
        with inherited_realtime_priority(self.options.realtime_priority):
            sources = {
                role: LslInput(
                    spec,
                    role,
                    resolve_stream(spec, role, engine.resolve_timeout_s),
                    engine.max_buflen_s,
                    engine.resolve_timeout_s,
                )
                for role, spec in roles.items()
            }
        for role, spec in roles.items():
            source = sources[role]
            # The grid's epoch is set by the decode thread on the first sample (rtbci.signal.grid).
            featurizer = make_featurizer(role, spec.channels, spec.rate, bin_s, profile.features, 0.0, role)
            raw = None
            if self.options.record is not None:
                raw = ChunkRing(int(_RAW_RING_S * max(spec.rate, 100.0)), spec.channels, source.dtype)
            self.inputs.append(EngineInput(source, featurizer, raw))
        shapes = [tuple(engine_input.featurizer.value_shape) for engine_input in self.inputs]
        model_index = list(roles).index(self.model_input)
        # A decoder of another input still publishes each bin's spike counts (the dashboard's rate map).
        spike_index = list(roles).index("spikes")
        spike_shape = None if spike_index == model_index else shapes[spike_index]
        aligner = BinAligner(shapes, bin_s, 0.0, engine.late_deadline_ms / 1000.0, engine.late_policy)
        layout = record_dtype(len(self.output_labels), shapes[model_index], spike_shape)
        self.records = self.options.record_ring(layout, self.options.record_ring_bins)
        outlet = KinematicsOutlet(profile.streams.output, self.output_labels, self.output_units, 1.0 / bin_s)
        post = PostProcessor(profile.output, bin_s, self.options.output_enabled)
        self.loop = DecodeLoop(
            self.inputs,
            aligner,
            model_index,
            self.backend,
            post,
            outlet,
            self.records,
            self.pylsl.local_clock,
            self.options.warmup_steps,
            self.options.realtime_priority,
        )
        if self.options.record is not None:
            self.recorder = self._make_recorder(self.options.record, shapes[model_index])
            self.recorder.start()
        self.loop.start()
        self.loop.ready.wait()
        if self.loop.counters.errors:
            raise EngineError(f"the decode thread failed while warming up: {self.loop.counters.errors[0]}")
        self._started_at = time.monotonic()

    def _make_recorder(self, path: Path, feature_shape: tuple[int, ...]) -> Recorder:
        profile = self.profile
        raw = [
            RawSource(
                name=engine_input.source.role,
                kind=StreamKind.SPIKES if engine_input.source.role == "spikes" else StreamKind.LFP,
                ring=engine_input.raw,
                rate=engine_input.source.rate,
                channel_labels=[f"elec{i:03d}" for i in range(engine_input.source.n_channels)],
                units="count" if engine_input.source.role == "spikes" else "uV",
            )
            for engine_input in self.inputs
        ]
        feature_labels = [f"f{i}" for i in range(int(np.prod(feature_shape)))]
        meta = SessionMeta(
            subject=profile.rig.subject,
            session_id=f"{profile.rig.subject}-live-{time.strftime('%Y%m%dT%H%M%S')}",
            task="closed-loop decoding",
            date=time.strftime("%Y-%m-%dT%H:%M:%S"),
            channel_regions=profile.channel_regions(),
            provenance={
                "tool": "rtbci run",
                "profile": str(profile.path),
                "backend": str(self.backend.info()),
                "model_input": self.model_input,
                "feature_shape": str(list(feature_shape)),
            },
        )
        return Recorder(
            path,
            meta,
            raw,
            self.records,
            self.output_labels,
            ", ".join(sorted(set(self.output_units))),
            feature_labels,
            1.0 / profile.bin_s,
            epoch=lambda: self.loop.epoch,
            events=self.loop.events,
            followed=self._followed_sources(),
            clock=self.pylsl.local_clock,
        )

    def _followed_sources(self) -> list[FollowedSource]:
        """The streams a recording takes when they are there, on the recorder's thread (never this one's)."""
        profile = self.profile
        buffer_s = int(_RAW_RING_S)
        units = ", ".join(dict.fromkeys(task_channel_units(profile.output.units)))
        sources = [
            FollowedSource(
                "task",
                StreamKind.TASK,
                FollowedStream(task_stream_spec(profile), "task", max_buflen_s=buffer_s),
                units,
                list(TASK_CHANNELS),
            ),
            FollowedSource(
                "task_markers",
                StreamKind.MARKERS,
                FollowedStream(task_markers_spec(profile), "task markers", text=True, max_buflen_s=buffer_s),
                "",
                ["marker"],
            ),
        ]
        if profile.streams.behavior is not None:
            behavior = FollowedStream(profile.streams.behavior, "behavior", max_buflen_s=buffer_s)
            sources.append(FollowedSource("behavior", StreamKind.KINEMATICS, behavior, ""))
        return sources

    def set_output_enabled(self, enabled: bool) -> None:
        """The safety stop: when disabled, the output velocity is zero and the position holds."""
        self.loop.post.enabled = enabled

    def reset_position(self, source: str = "") -> None:
        """Zero the integrated position at the next bin; that bin logs ``position reset (<source>)``
        as an engine event (status ``events``, and the recording's events stream)."""
        self.loop.post.request_position_reset(source)

    def start_recording(self, path: Path) -> None:
        """Record to a new Session file from now on, while decoding goes on.

        Raises
        ------
        EngineError
            If a recording is already running.
        """
        if self.recorder is not None:
            raise EngineError("a recording is already running; stop it first")
        for engine_input in self.inputs:
            source = engine_input.source
            engine_input.raw = ChunkRing(
                int(_RAW_RING_S * max(source.rate, 100.0)), source.n_channels, source.dtype
            )
        self.recorder = self._make_recorder(Path(path), self.records.records.dtype["features"].shape)
        self.recorder.start()

    def stop_recording(self) -> dict:
        """Finish and close the recording (decoding goes on); returns its counters, ``{}`` if none ran."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return {}
        recorder.stop()
        for engine_input in self.inputs:
            engine_input.raw = None
        return {
            "bins_written": recorder.bins_written,
            "missed_records": recorder.missed_records,
            "followed_samples": recorder.followed_samples(),
            "notes": list(recorder.notes),
            "error": recorder.error,
        }

    def check_alive(self) -> None:
        """Raise if the decode thread stopped on an error.

        Raises
        ------
        EngineError
        """
        if self.loop is not None and self.loop.counters.errors:
            raise EngineError(f"the decode thread stopped: {self.loop.counters.errors[0]}")

    @property
    def epoch(self) -> float | None:
        """The bin grid's epoch on the LSL clock; None until the first sample arrived."""
        return None if self.loop is None else self.loop.epoch

    def snapshot(self) -> dict:
        """Counters for the status line and dashboards (cheap; call from any thread).

        The words (late, overdue, gap, outage, processing and source latency)
        are defined in :mod:`rtbci.engine.status`. ``waiting_for`` lists inputs
        that were found but have sent nothing yet; ``events`` the newest
        outages and timestamp warnings.
        """
        loop = self.loop
        aligner = loop.aligner
        elapsed = max(time.monotonic() - self._started_at, 1e-9)
        inputs = {engine_input.source.role: engine_input.health() for engine_input in self.inputs}
        stores = dict(zip(inputs, aligner.inputs, strict=True))
        return {
            "bins": loop.counters.decoded,
            "bins_per_s": loop.counters.decoded / elapsed,
            "epoch": loop.epoch,
            "waiting_for": [role for role, health in inputs.items() if health["waiting"]],
            "outages": sum(health["outages"] for health in inputs.values()),
            "events": [f"{t:.3f} {text}" for t, text in loop.events.last(10)],
            "late": aligner.late_bins,
            "late_by_input": dict(zip(inputs, aligner.late_by_input, strict=True)),
            "overdue": loop.counters.overdue,
            "gaps": aligner.gap_bins + sum(health["gaps"] for health in inputs.values()),
            "gap_bins": aligner.gap_bins,
            "clock_resets": aligner.clock_resets,
            "stale_bins": {role: store.stale for role, store in stores.items()},
            "overflow_bins": {role: store.overflow for role, store in stores.items()},
            "nonfinite_outputs": loop.post.nonfinite,
            "scheduling": loop.counters.scheduling,
            "inputs": inputs,
            "recorder": None
            if self.recorder is None
            else {
                "bins_written": self.recorder.bins_written,
                "missed_records": self.recorder.missed_records,
                "error": self.recorder.error,
            },
            "errors": list(loop.counters.errors),
        }

    def recent(self, n: int = 250) -> np.ndarray:
        """The newest ``n`` per-bin records."""
        return self.records.last(n)

    def stop(self) -> dict:
        """Stop decoding and recording; returns the final :meth:`snapshot` with a latency summary."""
        self.loop.stop_requested.set()
        self.loop.join(timeout=5.0)
        if self.recorder is not None:
            self.recorder.stop()
        report = self.snapshot()
        latencies = record_latencies(self.records.last(self.records.capacity))
        for name, values in latencies._asdict().items():
            report[f"{name}_latency_recent"] = latency_summary_ms(values) if values.size else None
        for engine_input in self.inputs:
            engine_input.source.close()
        return report
