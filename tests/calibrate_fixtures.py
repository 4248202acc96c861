"""Shared pieces for the calibration tests: a profile copy with unique stream names and a small
trained "previous" decoder artifact, and simulated calibration blocks of the demo subject."""

from __future__ import annotations

import dataclasses
import re
import threading
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rtbci.io.session import Session, Stream, StreamKind
from rtbci.io.store import write_session
from rtbci.models.checkpoint import save_checkpoint
from rtbci.models.decoder import Decoder
from rtbci.models.heads import RidgeHead
from rtbci.profile import Profile, load_profile
from rtbci.runtime.export import export_artifact
from rtbci.signal import featurize
from rtbci.sim import SimConfig, simulate_session
from rtbci.sim.live import LiveRigSource
from rtbci.task.labels import LABEL_LAG_MS
from rtbci.task.stream import CUED_VELOCITY, DECODED_VELOCITY, STATE, TARGET, TASK_CHANNELS, TRIAL_ID
from rtbci.task.trials import TrialState
from rtbci.train.checkpoints import decoder_checkpoint
from rtbci.train.data import SessionBins
from rtbci.train.encoders import SIZES, fit_lfp_normalization, new_encoder
from rtbci.train.latents import encode_bins

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"


def simulated_block(seconds: float, session: int = 5, seed: int = 11) -> Session:
    """A simulated recording of the demo subject (a session the test model never saw)."""
    return simulate_session(SimConfig(), 0, session, seconds / 60.0, seed)


def with_recording_edges(session: Session, edge_s: float) -> Session:
    """``session`` as a live recording may lose it at worst: the neural streams' first ``edge_s``
    seconds and the behavior's last ``edge_s`` seconds missing."""
    streams = {}
    for name, stream in session.streams.items():
        if stream.kind in (StreamKind.SPIKES, StreamKind.LFP):
            keep = stream.timestamps >= stream.timestamps[0] + edge_s
        elif stream.kind is StreamKind.KINEMATICS:
            keep = stream.timestamps <= stream.timestamps[-1] - edge_s
        else:
            keep = np.ones(stream.n_samples, bool)
        streams[name] = dataclasses.replace(
            stream, data=stream.data[keep], timestamps=stream.timestamps[keep], chunk_sizes=None
        )
    return Session(session.meta, streams)


def with_task_instead_of_hand(session: Session, profile: Profile) -> Session:
    """``session`` with its behavior replaced by a cursor task stream that cues the hand's own velocity.

    One task row per bin of the session's grid, stamped at the bin's end plus the cue labels' lag
    (:data:`rtbci.task.labels.LABEL_LAG_MS`); its cued velocity is the hand's at the profile's
    kinematics lag, so that ``cue`` labels are the ``hand`` ones bin for bin. For ``refit``: the
    cursor at the centre, the target where the hand's velocity points, and a decoded velocity of
    other speeds (the hand's, reversed in time).
    """
    hand = featurize(session, profile, progress=False)
    rows = np.zeros((len(hand), len(TASK_CHANNELS)), np.float32)
    rows[:, STATE] = int(TrialState.REACH)
    rows[:, TRIAL_ID] = 1
    rows[:, CUED_VELOCITY] = hand.kinematics
    rows[:, TARGET] = 10.0 * hand.kinematics  # 10 s ahead: mostly outside the target radius
    rows[:, DECODED_VELOCITY] = hand.kinematics[::-1]
    streams = {name: s for name, s in session.streams.items() if s.kind != StreamKind.KINEMATICS}
    stamps = hand.bin_ends + LABEL_LAG_MS["cue"] / 1000.0
    task = Stream("task", StreamKind.TASK, rows, stamps, 1.0 / profile.bin_s, list(TASK_CHANNELS))
    return Session(session.meta, {**streams, "task": task})


def write_block(session: Session, path: Path) -> Path:
    """Write a Session file and return its path."""
    write_session(path, session)
    return path


def demo_text_without_model() -> str:
    """The demo profile's text without its [model] table (comments and other tables kept)."""
    text = DEMO_PROFILE.read_text(encoding="utf-8")
    return re.sub(r"(?ms)^\[model\]\s*$.*?(?=^\[|\Z)", "", text)


def profile_text_with_model(tag: str, artifact: str | None, sha256: str | None) -> str:
    """The demo profile's text with unique stream names and (optionally) a [model] table."""
    text = demo_text_without_model()
    for role in ("spikes", "lfp", "behavior", "output"):
        data = tomllib.loads(text)["streams"][role]
        text = text.replace(f'name = "{data["name"]}"', f'name = "test-{tag}-{role}"', 1)
        text = text.replace(f'source_id = "{data["source_id"]}"', f'source_id = "test-{tag}-{role}-src"', 1)
    if artifact is not None:
        text += f'\n[model]\nartifact = "{artifact}"\nsha256 = "{sha256}"\n'
    return text


@dataclass(frozen=True)
class PreviousModel:
    """A trained decoder artifact and the stream-name tag of the profiles that use it."""

    artifact_dir: Path
    sha256: str
    tag: str

    def write_profile(self, path: Path) -> Path:
        """A profile at ``path`` whose [model] is this artifact (absolute path)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            profile_text_with_model(self.tag, str(self.artifact_dir), self.sha256), encoding="utf-8"
        )
        return path


def make_previous_model(folder: Path, fit_session: Session, oracle: bool = False) -> PreviousModel:
    """A tiny LFP decoder artifact in ``folder`` fit on ``fit_session``.

    The backbone is a randomly initialised tiny encoder (no pretraining: the tests
    check the calibration machinery, the benchmark checks accuracy); the head is a
    ridge fit on the first 80% of ``fit_session``, or on all of it with ``oracle``
    (a previous decoder that has seen the held-out block, so calibration cannot beat it).
    """
    folder.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:10]
    bare = folder / "bare.toml"
    bare.write_text(profile_text_with_model(tag, None, None), encoding="utf-8")
    profile = load_profile(bare)
    binned = featurize(fit_session, profile, progress=False)
    session_ids = ["sim-S0-d90", binned.session_id]
    torch.manual_seed(0)
    encoder = new_encoder(profile, "lfp", binned.lfp.shape[-1], len(session_ids), SIZES["tiny"])
    bins = SessionBins.from_binned(binned, context=1)
    normalizer = fit_lfp_normalization([bins])
    encoder.set_normalization(normalizer.mean, normalizer.std)
    encoder.eval()
    latents = encode_bins(encoder, bins.lfp, bins.context)
    stop = len(latents) if oracle else int(0.8 * len(latents))
    head = RidgeHead(encoder.config.d_model, bins.kinematics.shape[1]).fit(
        latents[:stop], bins.kinematics[:stop], alpha=1.0
    )
    checkpoint = decoder_checkpoint(Decoder(encoder, head).eval(), session_ids, profile, {"heldout_r2": 0.0})
    checkpoint_path = save_checkpoint(folder / "previous.pt", checkpoint)
    manifest = export_artifact(checkpoint_path, folder / "artifact", parity_steps=20)
    bare.unlink()
    return PreviousModel(folder / "artifact", manifest.sha256, tag)


def heldout_r2_by_onnxruntime(
    artifact_dir: Path, session: Session, profile_path: Path, heldout_start: int
) -> np.ndarray:
    """Recompute held-out R² by stepping the artifact in ONNX Runtime over every bin from the first."""
    from rtbci.metrics import r2_per_axis
    from rtbci.runtime import load_backend

    binned = featurize(session, load_profile(profile_path), progress=False)
    backend = load_backend("onnxruntime", artifact_dir)
    backend.reset()
    predicted = np.stack([backend.step(features) for features in binned.lfp])
    return r2_per_axis(binned.kinematics[heldout_start:], predicted[heldout_start:])


@contextmanager
def streaming_rig(profile_path: Path, seed: int = 5, session: int = 6) -> Iterator[None]:
    """The simulated rig streaming the profile's streams over real LSL on loopback, from a thread."""
    source = LiveRigSource(load_profile(profile_path), seed=seed, session=session)
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10.0)
