"""Shared pieces for the engine and replay tests: a unique-name profile, a tiny real ONNX decoder,
a simulated Session, and a replay running on a thread."""

from __future__ import annotations

import re
import threading
import time
import tomllib
import uuid
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from benchmarks.conformance import ConformanceCase, case_streams
from benchmarks.outside_sources import OutsideStream
from rtbci.io.session import Session
from rtbci.lsl import require_pylsl
from rtbci.profile import Profile, profile_from_dict
from rtbci.replay import ReplayOptions, ReplayReport, SessionPlayer, outlet_identities
from rtbci.sim import SimConfig, simulate_session

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"


def unique_profile(tmp_path: Path, **engine: object) -> Profile:
    """The demo profile with stream names no other test (or helper on this machine) uses."""
    data = tomllib.loads(DEMO_PROFILE.read_text())
    tag = uuid.uuid4().hex[:10]
    for role in ("spikes", "lfp", "behavior", "output"):
        spec = data["streams"][role]
        spec["name"] = f"test-{tag}-{role}"
        spec["source_id"] = f"test-{tag}-{role}-src"
    data.pop("model", None)
    data["engine"].update(engine)
    return profile_from_dict(data, tmp_path / "profile.toml")


def outside_streams(profile: Profile, chunk: int) -> list[OutsideStream]:
    """The profile's spike and LFP streams as an outside source announces them, ``chunk`` samples a push."""
    return case_streams(ConformanceCase(spike_chunk=chunk, lfp_chunk=chunk), profile)


def simulated_session(seconds: float, seed: int = 3) -> Session:
    """A short simulated recording of the demo subject."""
    return simulate_session(SimConfig(), 0, 0, seconds / 60.0, seed)


class OnnxLinearBackend:
    """A real ONNX Runtime session of a small linear graph: one bin's features -> K kinematics."""

    def __init__(self, feature_shape: tuple[int, ...], n_outputs: int = 2, seed: int = 0) -> None:
        size = int(np.prod(feature_shape))
        rng = np.random.default_rng(seed)
        weights = (rng.standard_normal((size, n_outputs)) / np.sqrt(size)).astype(np.float32)
        graph = helper.make_graph(
            [
                helper.make_node("Reshape", ["features", "flat_shape"], ["flat"]),
                helper.make_node("MatMul", ["flat", "weights"], ["kinematics"]),
            ],
            "linear_decoder",
            [helper.make_tensor_value_info("features", TensorProto.FLOAT, list(feature_shape))],
            [helper.make_tensor_value_info("kinematics", TensorProto.FLOAT, [1, n_outputs])],
            initializer=[
                helper.make_tensor("flat_shape", TensorProto.INT64, [2], [1, size]),
                helper.make_tensor("weights", TensorProto.FLOAT, [size, n_outputs], weights.ravel()),
            ],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
        onnx.checker.check_model(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.weights = weights
        self.steps = 0

    def reset(self) -> None:
        self.steps = 0

    def step(self, features: np.ndarray) -> np.ndarray:
        self.steps += 1
        return self.session.run(None, {"features": features})[0][0]

    def info(self) -> dict:
        return {"backend": "onnxruntime", "graph": "test linear"}


class ThreadedReplay:
    """A :class:`SessionPlayer` playing on a background thread."""

    def __init__(self, session: Session, profile: Profile, options: ReplayOptions) -> None:
        self.player = SessionPlayer(
            session, outlet_identities(session, profile, prefix=f"{profile.streams.spikes.name}-")
        )
        self.options = options
        self.stop = threading.Event()
        self.report: ReplayReport | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.report = self.player.run(self.options, self.stop)

    def start(self) -> ThreadedReplay:
        self.thread.start()
        return self

    def finish(self, timeout: float = 60.0) -> ReplayReport:
        self.thread.join(timeout)
        return self.report

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10.0)


def make_lfp_backend() -> OnnxLinearBackend:
    """The linear test decoder for the demo rig's LFP features (96 channels x 5 features)."""
    return OnnxLinearBackend((96, 5))


def wait_for(condition, timeout: float = 20.0, poll: float = 0.05) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return bool(condition())


class SyntheticRig:
    """Live spikes and LFP outlets under a profile's identities, whose timestamps the test can move.

    Pushes 10-sample chunks at 1 kHz on an absolute schedule. ``clock_offset`` is added to every
    timestamp (a jump or a clock reset is a change of it); ``nan_channels`` makes the LFP samples
    of those channels NaN and Inf while set; :meth:`stall` holds every chunk for a while, after
    which the held chunks go out as fast as they can, as an acquisition program catching up does.
    """

    def __init__(self, profile: Profile, n_channels: int = 96) -> None:
        pylsl = require_pylsl()
        self.n_channels = n_channels
        self.outlets = {}
        for role, fmt in (("spikes", "int16"), ("lfp", "float32")):
            spec = getattr(profile.streams, role)
            info = pylsl.StreamInfo(spec.name, spec.type, n_channels, spec.rate, fmt, spec.source_id)
            self.outlets[role] = pylsl.StreamOutlet(info)
        self.clock_offset = 0.0
        self.nan_channels: slice | None = None
        self._stalled_until = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.rng = np.random.default_rng(0)

    def start(self) -> SyntheticRig:
        self.thread.start()
        return self

    def _run(self) -> None:
        pylsl = require_pylsl()
        start = float(np.ceil(pylsl.local_clock()))
        chunk = 0
        while not self.stop.is_set():
            times = start + (chunk * 10 + np.arange(10)) / 1000.0
            delay = max(times[-1], self._stalled_until) - pylsl.local_clock()
            if delay > 0:
                time.sleep(delay)
            stamps = times + self.clock_offset
            spikes = self.rng.poisson(0.05, (10, self.n_channels)).astype(np.int16)
            lfp = 50.0 * np.sin(2 * np.pi * 12.0 * times)[:, None] + self.rng.normal(
                0, 5, (10, self.n_channels)
            )
            lfp = lfp.astype(np.float32)
            if self.nan_channels is not None:
                lfp[::2, self.nan_channels] = np.nan
                lfp[1::2, self.nan_channels] = np.inf
            self.outlets["spikes"].push_chunk(spikes, stamps.tolist())
            self.outlets["lfp"].push_chunk(lfp, stamps.tolist())
            chunk += 1

    def stall(self, seconds: float) -> None:
        """Send nothing for ``seconds`` from now, then everything held, with its own timestamps."""
        self._stalled_until = require_pylsl().local_clock() + seconds

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5.0)


def small_artifact(folder: Path) -> Path:
    """A small real decoder (1 layer, d=32, random weights) exported to ONNX with its manifest."""
    import torch

    from rtbci.models import Checkpoint, Decoder, Encoder, EncoderConfig, RidgeHead
    from rtbci.models.checkpoint import save_checkpoint
    from rtbci.runtime.export import export_artifact

    torch.manual_seed(0)
    config = EncoderConfig(
        modality="lfp", n_channels=96, n_features=5, d_model=32, n_layers=1, n_heads=2, window_bins=10
    )
    decoder = Decoder(Encoder(config), RidgeHead(config.d_model, 2)).eval()
    checkpoint = Checkpoint(
        encoder_config=config,
        state_dict=decoder.state_dict(),
        session_ids=["test"],
        kinematics_names=["vel_x", "vel_y"],
        kinematics_units="m/s",
        features={"bin_ms": 20.0},
    )
    save_checkpoint(folder / "model.pt", checkpoint)
    export_artifact(folder / "model.pt", folder / "artifact", parity_steps=20)
    return folder / "artifact"


def profile_file(folder: Path, artifact: Path) -> Path:
    """The demo profile under unique stream names, running ``artifact`` on ONNX Runtime, as a file."""
    from rtbci.runtime import read_manifest

    tag = f"test-{uuid.uuid4().hex[:10]}"
    text = (
        DEMO_PROFILE.read_text()
        .replace('"rtbci-sim-', f'"{tag}-')
        .replace('"rtbci-decoded', f'"{tag}-decoded')
    )
    text = re.sub(r"\n\[model\]\n(?:[^\[\n].*\n?|\n)*", "\n", text)  # drop the demo's own decoder
    text += f'\n[model]\nartifact = "{artifact}"\nsha256 = "{read_manifest(artifact).sha256}"\n'
    path = folder / "profile.toml"
    path.write_text(text)
    return path
