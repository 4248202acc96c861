"""Stage outputs as model checkpoints (:mod:`rtbci.models.checkpoint`).

Every checkpoint carries the encoder config, the session table, the featurizer
settings and the LFP normalisation, so any stage can be reloaded on its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from rtbci.models.checkpoint import Checkpoint
from rtbci.models.decoder import Decoder
from rtbci.models.encoder import Encoder
from rtbci.profile import Profile
from rtbci.signal import Normalizer

__all__ = ["decoder_checkpoint", "encoder_checkpoint", "normalizer_of"]


def normalizer_of(encoder: Encoder) -> Normalizer | None:
    """The input normalisation baked into an LFP encoder (None for spikes)."""
    if encoder.config.modality != "lfp":
        return None
    tokenizer = encoder.tokenizer
    return Normalizer(tokenizer.feature_mean.cpu().numpy(), tokenizer.feature_std.cpu().numpy())


def _common(encoder: Encoder, session_ids: Sequence[str], profile: Profile) -> dict[str, Any]:
    normalizer = normalizer_of(encoder)
    return {
        "encoder_config": dataclasses.replace(encoder.config),
        "session_ids": list(session_ids),
        "normalization": normalizer.to_dict() if normalizer is not None else None,
        "features": dataclasses.asdict(profile.features),
    }


def encoder_checkpoint(
    encoder: Encoder, session_ids: Sequence[str], profile: Profile, metrics: dict[str, Any]
) -> Checkpoint:
    """An encoder-only checkpoint (a pretrained teacher or a distilled student before its head)."""
    return Checkpoint(
        state_dict=encoder.state_dict(), metrics=metrics, **_common(encoder, session_ids, profile)
    )


def decoder_checkpoint(
    decoder: Decoder, session_ids: Sequence[str], profile: Profile, metrics: dict[str, Any]
) -> Checkpoint:
    """A decoder checkpoint (encoder + head), ready for export."""
    return Checkpoint(
        state_dict=decoder.state_dict(),
        kinematics_names=list(profile.output.kinematics),
        kinematics_units=profile.output.units,
        metrics=metrics,
        **_common(decoder.encoder, session_ids, profile),
    )
