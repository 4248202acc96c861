"""Write the calibrated decoder as a streaming artifact (ONNX + manifest) with :mod:`rtbci.runtime.export`,
and build its TensorRT engine where TensorRT and a GPU are present."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calibrate.errors import CalibrationError
from calibrate.previous import PreviousDecoder
from rtbci.errors import UserError
from rtbci.models.checkpoint import save_checkpoint
from rtbci.profile import Profile
from rtbci.runtime import load_backend
from rtbci.runtime.export import export_artifact
from rtbci.runtime.manifest import Manifest
from rtbci.train.checkpoints import decoder_checkpoint
from rtbci.train.session_fit import FittedDecoder

__all__ = ["ExportedDecoder", "export_calibrated"]


@dataclass
class ExportedDecoder:
    """The written artifact.

    Attributes
    ----------
    artifact_dir
        Folder with ``decoder.onnx``, ``decoder.pt`` and ``manifest.json``.
    manifest
        Its manifest (``sha256`` is the graph hash the profile records).
    tensorrt
        ``built`` with the engine's backend info, or why no engine was built.
    tensorrt_built
        Whether a TensorRT engine was built (no: no TensorRT or no GPU here, the usual case on a CPU machine).
    """

    artifact_dir: Path
    manifest: Manifest
    tensorrt: str
    tensorrt_built: bool


def _build_tensorrt_engine(artifact_dir: Path, device: str) -> tuple[bool, str]:
    # Loading the TensorRT backend builds the engine and caches it beside the graph.
    try:
        backend = load_backend("tensorrt", artifact_dir, device if device.startswith("cuda") else "cuda")
    except UserError as error:
        return False, f"not built: {error}"
    return True, f"built: {backend.info()}"


def export_calibrated(
    fitted: FittedDecoder,
    session_ids: list[str],
    previous: PreviousDecoder,
    profile: Profile,
    metrics: dict[str, Any],
    artifact_dir: Path,
) -> ExportedDecoder:
    """Export the calibrated decoder into a new artifact folder.

    Parameters
    ----------
    fitted
        The calibrated decoder.
    session_ids
        Its session table (the calibrated session last: the artifact bakes in that row).
    previous
        The decoder it started from (subject table).
    profile
        Featurizer settings and kinematics names recorded in the checkpoint.
    metrics
        Stored in the checkpoint and manifest (``heldout_r2``, ``calibration_date``, ...).
    artifact_dir
        New folder; an existing one is never overwritten.

    Raises
    ------
    CalibrationError
        If ``artifact_dir`` already exists.
    """
    if artifact_dir.exists():
        raise CalibrationError(f"{artifact_dir}: artifact folder already exists; it is never overwritten")
    checkpoint = dataclasses.replace(
        decoder_checkpoint(fitted.decoder, session_ids, profile, metrics),
        subject_ids=list(previous.checkpoint.subject_ids),
    )
    with tempfile.TemporaryDirectory(prefix="rtbci-calibrate-") as scratch:
        checkpoint_path = save_checkpoint(Path(scratch) / "calibrated.pt", checkpoint)
        manifest = export_artifact(
            checkpoint_path, artifact_dir, session_id=session_ids[-1], subject_id=previous.manifest.subject_id
        )
    device = profile.model.device if profile.model is not None else "cpu"
    built, tensorrt = _build_tensorrt_engine(artifact_dir, device)
    return ExportedDecoder(artifact_dir, manifest, tensorrt, built)
