"""Checkpoint files: one ``torch.save`` of plain data, loadable with ``weights_only=True``.

A checkpoint carries everything needed to rebuild and serve a model: the encoder
config, the state dict, the session (and subject) table ids, the featurizer settings
and normalization, the kinematics names, metrics, and optional training state for
resuming. Encoder-only checkpoints (a pretrained teacher) have no kinematics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rtbci.errors import UserError
from rtbci.models.decoder import Decoder
from rtbci.models.encoder import Encoder, EncoderConfig
from rtbci.models.heads import RidgeHead

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "build_decoder",
    "build_encoder",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT_VERSION = 1


class CheckpointError(UserError):
    """A checkpoint file is missing, unreadable or not an rtbci checkpoint."""


@dataclass
class Checkpoint:
    """Contents of a checkpoint file.

    Parameters
    ----------
    encoder_config
        Rebuilds the encoder.
    state_dict
        ``Decoder.state_dict()`` (keys ``encoder.*``, ``head.*``) when ``kinematics_names``
        is set, else ``Encoder.state_dict()``.
    session_ids
        Session id of every row of the session table (row i = index i).
    subject_ids
        Subject id of every row of the subject table (empty without subject tokens).
    kinematics_names, kinematics_units
        Head outputs, e.g. ``["vel_x", "vel_y"]`` in ``"m/s"``; empty for an encoder-only file.
    normalization
        ``rtbci.signal.Normalizer.to_dict()`` of the input features (also baked into the model).
    features
        Featurizer settings (``FeatureConfig`` fields as plain data: bin_ms, bands_hz, ...).
    metrics
        E.g. ``{"heldout_r2": 0.61}``.
    training_state
        Optimizer/scheduler/epoch/RNG state for resuming; plain data and tensors only.
    """

    encoder_config: EncoderConfig
    state_dict: dict[str, torch.Tensor]
    session_ids: list[str]
    subject_ids: list[str] = field(default_factory=list)
    kinematics_names: list[str] = field(default_factory=list)
    kinematics_units: str = ""
    normalization: dict[str, Any] | None = None
    features: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training_state: dict[str, Any] = field(default_factory=dict)

    @property
    def has_head(self) -> bool:
        return bool(self.kinematics_names)

    def session_index(self, session_id: str) -> int:
        """Row of ``session_id`` in the session table."""
        try:
            return self.session_ids.index(session_id)
        except ValueError:
            raise CheckpointError(
                f"session {session_id!r} is not in this checkpoint's session table {self.session_ids}"
            ) from None


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` (atomically: a temp file renamed into place)."""
    path = Path(path)
    if len(checkpoint.session_ids) != checkpoint.encoder_config.n_sessions:
        raise ValueError(
            f"{len(checkpoint.session_ids)} session ids for a table of {checkpoint.encoder_config.n_sessions}"
        )
    payload = {
        "format": "rtbci-checkpoint",
        "format_version": FORMAT_VERSION,
        **{f.name: getattr(checkpoint, f.name) for f in dataclasses.fields(checkpoint)},
        "encoder_config": checkpoint.encoder_config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    CheckpointError
        If the file is missing or is not an rtbci checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} could not be read: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != "rtbci-checkpoint":
        raise CheckpointError(f"{path} is not an rtbci checkpoint (no 'format: rtbci-checkpoint' entry)")
    if payload["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {payload['format_version']}, newer than this rtbci"
        )
    fields = {f.name for f in dataclasses.fields(Checkpoint)}
    data = {k: v for k, v in payload.items() if k in fields}
    data["encoder_config"] = EncoderConfig.from_dict(payload["encoder_config"])
    return Checkpoint(**data)


def build_encoder(checkpoint: Checkpoint) -> Encoder:
    """The checkpoint's encoder with its weights, in eval mode."""
    encoder = Encoder(dataclasses.replace(checkpoint.encoder_config))
    state = checkpoint.state_dict
    if checkpoint.has_head:
        state = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    encoder.load_state_dict(state)
    return encoder.eval()


def build_decoder(checkpoint: Checkpoint) -> Decoder:
    """The checkpoint's decoder (encoder + head) with its weights, in eval mode."""
    if not checkpoint.has_head:
        raise CheckpointError("this checkpoint holds an encoder only (no kinematics head): fit a head first")
    config = dataclasses.replace(checkpoint.encoder_config)
    decoder = Decoder(Encoder(config), RidgeHead(config.d_model, len(checkpoint.kinematics_names)))
    decoder.load_state_dict(checkpoint.state_dict)
    return decoder.eval()
