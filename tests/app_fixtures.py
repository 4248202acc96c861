"""Shared pieces for the app, demo and engine-process tests: a real exported decoder artifact from a
randomly initialised model, and copies of the demo profile with stream names no one else uses."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import tomllib
import uuid
from multiprocessing import resource_tracker
from pathlib import Path

import numpy as np
import psutil
import torch

from rtbci.models import Decoder, Encoder, EncoderConfig, RidgeHead
from rtbci.models.checkpoint import Checkpoint, save_checkpoint
from rtbci.profile import write_profile
from rtbci.runtime.export import export_artifact
from rtbci.runtime.manifest import read_manifest

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"
LFP_FEATURES = 5  # LMP + the demo profile's four bands


@functools.cache
def random_artifact() -> Path:
    """One exported random artifact for the whole test run (exporting takes seconds)."""
    out_dir = Path(tempfile.mkdtemp(prefix="rtbci-app-tests-"))
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    return export_random_artifact(out_dir)


def child_processes() -> set[int]:
    """Live child processes of this test process, except multiprocessing's resource tracker."""
    tracker = resource_tracker._resource_tracker._pid
    return {child.pid for child in psutil.Process().children(recursive=True) if child.pid != tracker}


def export_random_artifact(out_dir: Path, seed: int = 0) -> Path:
    """A small LFP decoder with random weights, exported (ONNX + manifest) into ``out_dir``."""
    torch.manual_seed(seed)
    config = EncoderConfig(
        modality="lfp",
        n_channels=96,
        n_features=LFP_FEATURES,
        d_model=32,
        n_layers=1,
        n_heads=2,
        window_bins=8,
    )
    decoder = Decoder(Encoder(config), RidgeHead(config.d_model, 2))
    decoder.encoder.set_normalization(np.zeros(LFP_FEATURES), np.full(LFP_FEATURES, 50.0))
    checkpoint = Checkpoint(
        encoder_config=config,
        state_dict=decoder.state_dict(),
        session_ids=["sim-S0-d00"],
        kinematics_names=["vel_x", "vel_y"],
        kinematics_units="m/s",
        features={"bin_ms": 20.0},
        metrics={"heldout_r2": 0.0, "calibration_date": "2026-01-01"},
    )
    save_checkpoint(out_dir / "random.ckpt", checkpoint)
    export_artifact(out_dir / "random.ckpt", out_dir / "artifact", parity_steps=20)
    return out_dir / "artifact"


def write_unique_profile(
    tmp_path: Path,
    artifact: Path,
    backend: str = "onnxruntime",
    sha256: str | None = None,
    output: dict | None = None,
    **engine: object,
) -> Path:
    """The demo profile with unique stream names and the given artifact; returns the file written.

    ``sha256`` overrides the artifact's hash (to test a mismatch); ``output`` overrides ``[output]``
    keys and ``engine`` ``[engine]`` keys.
    """
    data = tomllib.loads(DEMO_PROFILE.read_text())
    data["engine"].update(engine)
    data["output"].update(output or {})
    tag = uuid.uuid4().hex[:10]
    for role in ("spikes", "lfp", "behavior", "output"):
        data["streams"][role]["name"] = f"test-{tag}-{role}"
        data["streams"][role]["source_id"] = f"test-{tag}-{role}-src"
    data["model"] = {
        "artifact": str(artifact),
        "sha256": sha256 or read_manifest(artifact).sha256,
        "backend": backend,
        "input": "lfp",
    }
    return write_profile(data, tmp_path / f"profile-{tag}.toml")


class OutputReader:
    """A real pylsl inlet on the decoder's output stream."""

    def __init__(self, stream_name: str, timeout: float = 10.0) -> None:
        import pylsl

        found = pylsl.resolve_byprop("name", stream_name, minimum=1, timeout=timeout)
        assert found, f"output stream {stream_name!r} not visible"
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=2)
        self.inlet.open_stream(timeout=timeout)

    def samples(self, n: int, timeout: float = 10.0) -> np.ndarray:
        """The next ``n`` samples pushed after everything queued so far is dropped."""
        self.inlet.flush()
        rows: list[np.ndarray] = []
        while sum(len(r) for r in rows) < n:
            data, _ = self.inlet.pull_chunk(timeout=timeout, max_samples=n, as_numpy=True)
            assert len(data), f"no output samples within {timeout} s"
            rows.append(np.asarray(data))
        return np.concatenate(rows)[:n]

    def close(self) -> None:
        self.inlet.close_stream()
