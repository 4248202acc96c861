"""Export a decoder checkpoint as a streaming-step artifact: decoder.onnx, decoder.pt, manifest.json.

The graph is the :class:`~rtbci.runtime.ring.RingStep` of one session, with static shapes
and batch 1: constants folded, state kept in rings that the backend writes in place. After
writing, the export checks the graph with ``onnx.checker`` and runs it in ONNX Runtime
against the torch reference, :class:`~rtbci.runtime.streaming.StreamingStep`, over several
windows of inputs (the rings wrap); an artifact that disagrees is refused.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from rtbci.models.checkpoint import Checkpoint, build_decoder, load_checkpoint, save_checkpoint
from rtbci.models.decoder import Decoder
from rtbci.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from rtbci.runtime.manifest import (
    GRAPH_FILE,
    MANIFEST_FILE,
    TORCH_FILE,
    ArtifactError,
    Manifest,
    RingSpec,
    TensorSpec,
    sha256_file,
    write_manifest,
)
from rtbci.runtime.ring import RingStep
from rtbci.runtime.streaming import FullWindowStep, StreamingStep

__all__ = [
    "ONNX_OPSET",
    "PARITY_TOLERANCE",
    "check_parity",
    "export_artifact",
    "export_full_window",
    "export_step",
    "parity_inputs",
]

ONNX_OPSET = 17
# ONNX Runtime fuses and reorders float32 arithmetic; 1e-4 on kinematics is far below decoding noise.
PARITY_TOLERANCE = 1e-4
FEATURE_INPUT = "features"
KINEMATICS_OUTPUT = "kinematics"


def _onnx_export(
    module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]
) -> None:
    if module.training:
        # The exporter restores the module's mode afterwards: a training-mode wrapper would switch the
        # shared decoder's dropout on for every later torch caller.
        raise ValueError("export a module in eval() mode")
    with warnings.catch_warnings():
        # Shapes are static by design: the tracer's "converting a tensor to a Python int" notes are expected.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs onnxscript (not a
        # dependency); for this small static graph the TorchScript exporter's output is checked below.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=inputs,
            output_names=outputs,
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def export_step(step: RingStep, path: str | Path) -> tuple[list[TensorSpec], list[TensorSpec], RingSpec]:
    """Write the ring step as an ONNX graph; returns its input and output specs and its ring."""
    path = Path(path)
    inputs = step.example_inputs()
    with torch.no_grad():
        outputs = step(*inputs)
    input_names = step.input_names()
    rings = step.ring_outputs()
    output_names = [KINEMATICS_OUTPUT, *rings.values()]
    _onnx_export(step, inputs, path, input_names, output_names)
    ring = RingSpec(
        slots=step.slots,
        n_tokens=step.n_tokens,
        states=rings,
        slot_axes=step.ring_axes(),
        rotary_inv_freq=step.inv_freq.tolist(),
        position_input="position" if "position" in input_names else None,
    )

    def specs(names: list[str], tensors: tuple[torch.Tensor, ...]) -> list[TensorSpec]:
        return [
            TensorSpec(n, list(t.shape), str(t.dtype).removeprefix("torch."))
            for n, t in zip(names, tensors, strict=True)
        ]

    return specs(input_names, inputs), specs(output_names, outputs), ring


def export_full_window(decoder: Decoder, session_index: int, path: str | Path) -> None:
    """Write the full-window baseline (re-encode ``W`` bins per step) as an ONNX graph."""
    config = decoder.encoder.config
    window = torch.zeros(config.window_bins, config.n_channels, config.n_features)
    _onnx_export(
        FullWindowStep(decoder, session_index), (window,), Path(path), ["window"], [KINEMATICS_OUTPUT]
    )


def parity_inputs(step: StreamingStep, n_steps: int, seed: int = 0) -> np.ndarray:
    """Raw random bins on the scale the model expects: Poisson counts, or LFP features around their mean.

    Returns
    -------
    np.ndarray
        ``(n_steps, *input_shape)`` float32.
    """
    rng = np.random.default_rng(seed)
    shape = (n_steps, *step.input_shape)
    encoder = step.decoder.encoder
    if encoder.config.modality == "spikes":
        return rng.poisson(rng.uniform(0.2, 4.0, size=shape[1:]), size=shape).astype(np.float32)
    mean = encoder.tokenizer.feature_mean.cpu().numpy()
    std = encoder.tokenizer.feature_std.cpu().numpy()
    return (mean + std * rng.standard_normal(shape)).astype(np.float32)


def export_artifact(
    checkpoint_path: str | Path,
    out_dir: str | Path,
    session_id: str | None = None,
    subject_id: str | None = None,
    parity_steps: int = 200,
    check_bins: np.ndarray | None = None,
) -> Manifest:
    """Export a decoder checkpoint as a streaming artifact and verify it.

    Parameters
    ----------
    checkpoint_path
        A decoder checkpoint (encoder + head), see :mod:`rtbci.models.checkpoint`.
    out_dir
        Folder for ``decoder.onnx``, ``decoder.pt`` and ``manifest.json`` (created).
    session_id
        Session whose context the artifact bakes in; default the newest row of the
        session table (calibration appends the session it calibrated).
    subject_id
        Subject whose token the artifact bakes in (encoders with subject tokens only).
    parity_steps
        Steps of random input run through ONNX Runtime and torch to check the graph.
    check_bins
        Optional recorded or simulated raw bins ``(n, *input_shape)`` to check the graph on too.

    Returns
    -------
    Manifest
        What was written to ``manifest.json``.

    Raises
    ------
    ArtifactError
        If ONNX Runtime disagrees with torch by more than ``PARITY_TOLERANCE``.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    decoder = build_decoder(checkpoint)
    session_id = session_id if session_id is not None else checkpoint.session_ids[-1]
    session_index = checkpoint.session_index(session_id)
    subject_index = _subject_index(checkpoint, subject_id)
    step = StreamingStep(decoder, session_index, subject_index).eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs, outputs, ring = export_step(RingStep(decoder, session_index, subject_index), out / GRAPH_FILE)
    save_checkpoint(out / TORCH_FILE, dataclasses.replace(checkpoint, training_state={}))
    config = checkpoint.encoder_config
    heldout = checkpoint.metrics.get("heldout_r2")
    manifest = Manifest(
        inputs=inputs,
        outputs=outputs,
        state_pairs={},
        ring=ring,
        modality=config.modality,
        n_channels=config.n_channels,
        n_features=config.n_features,
        tokens_per_bin=decoder.encoder.n_tokens,
        params=sum(p.numel() for p in decoder.parameters()),
        bin_ms=float(checkpoint.features.get("bin_ms", 20.0)),
        window_bins=config.window_bins,
        kinematics_names=list(checkpoint.kinematics_names),
        kinematics_units=checkpoint.kinematics_units,
        sha256=sha256_file(out / GRAPH_FILE),
        torch_sha256=sha256_file(out / TORCH_FILE),
        session_id=session_id,
        subject_id=subject_id,
        features=_plain(checkpoint.features),
        normalization=checkpoint.normalization,
        calibration_date=str(checkpoint.metrics.get("calibration_date", "")),
        heldout_r2=float(heldout) if heldout is not None else None,
        versions={
            "rtbci": importlib.metadata.version("rtbci"),
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "opset": str(ONNX_OPSET),
            "python": platform.python_version(),
            "exported": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    write_manifest(out, manifest)
    error = check_parity(step, out, parity_inputs(step, parity_steps))
    if check_bins is not None:
        error = max(error, check_parity(step, out, np.asarray(check_bins, dtype=np.float32)))
    if error > PARITY_TOLERANCE:
        (out / MANIFEST_FILE).unlink()  # without its manifest no backend will load the refused graph
        raise ArtifactError(
            f"exported graph in {out} differs from torch by {error:.2e} > {PARITY_TOLERANCE:.0e}"
        )
    return manifest


def check_parity(step: StreamingStep, artifact_dir: str | Path, bins: np.ndarray) -> float:
    """Max absolute difference of ONNX Runtime and torch kinematics, streaming ``bins`` from a fresh state."""
    backend = OnnxRuntimeBackend(artifact_dir)
    state = step.initial_state()
    worst = 0.0
    with torch.no_grad():
        for features in bins:
            expected, *state = step(torch.from_numpy(features), *state)
            worst = max(worst, float(np.abs(backend.step(features) - expected.numpy()).max()))
    return worst


def _subject_index(checkpoint: Checkpoint, subject_id: str | None) -> int | None:
    if checkpoint.encoder_config.n_subjects == 0:
        if subject_id is not None:
            raise ArtifactError(f"subject {subject_id!r} given, but this model has no subject tokens")
        return None
    if subject_id is None or subject_id not in checkpoint.subject_ids:
        raise ArtifactError(
            f"this model has subject tokens: pass one of {checkpoint.subject_ids} as the subject"
        )
    return checkpoint.subject_ids.index(subject_id)


def _plain(value: object) -> object:
    """Tuples -> lists, recursively, so the manifest JSON round-trips to equal values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
