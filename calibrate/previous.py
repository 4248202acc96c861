"""The profile's current decoder: the starting point of calibration and the baseline it must beat."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from calibrate.errors import CalibrationError
from rtbci.models.checkpoint import Checkpoint, build_decoder, load_checkpoint
from rtbci.models.decoder import Decoder
from rtbci.profile import Profile
from rtbci.runtime.manifest import Manifest, check_expected_hash, read_manifest, verify_file

__all__ = ["PreviousDecoder", "load_previous"]


@dataclass
class PreviousDecoder:
    """The decoder the profile runs now.

    Attributes
    ----------
    artifact_dir
        Its artifact folder.
    manifest
        Its manifest.
    checkpoint
        Its torch checkpoint (``decoder.pt`` in the artifact): the weights calibration starts from.
    session_row
        The row of the session its artifact serves, in the checkpoint's session table.
    """

    artifact_dir: Path
    manifest: Manifest
    checkpoint: Checkpoint
    session_row: int

    @property
    def modality(self) -> str:
        """``lfp`` or ``spikes``."""
        return self.checkpoint.encoder_config.modality

    def decoder(self) -> Decoder:
        """A fresh copy of the decoder (encoder + head) in eval mode."""
        return build_decoder(self.checkpoint)


def load_previous(profile: Profile) -> PreviousDecoder:
    """Load the decoder that ``profile``'s ``[model]`` points to, checking its hashes.

    Raises
    ------
    CalibrationError
        If the profile has no ``[model]`` section.
    ArtifactError
        If the artifact is missing, altered, or not the one the profile's sha256 names.
    """
    if profile.model is None:
        raise CalibrationError(
            f"{profile.path}: no [model] section. Calibration adapts a trained decoder to a new session: "
            "train one (rtbci train pipeline) and point [model] artifact/sha256 at its artifact"
        )
    artifact_dir = profile.artifact_dir()
    manifest = read_manifest(artifact_dir)
    check_expected_hash(manifest, profile.model.sha256, source=f"{profile.path} [model] sha256")
    verify_file(artifact_dir, manifest.graph_file, manifest.sha256)
    checkpoint = load_checkpoint(verify_file(artifact_dir, manifest.torch_file, manifest.torch_sha256))
    if checkpoint.kinematics_names != list(profile.output.kinematics):
        raise CalibrationError(
            f"{artifact_dir}: the decoder outputs {checkpoint.kinematics_names} but {profile.path} "
            f"[output] kinematics is {list(profile.output.kinematics)}"
        )
    return PreviousDecoder(artifact_dir, manifest, checkpoint, checkpoint.session_index(manifest.session_id))
