"""Encoder settings shared by every stage: size presets and the profile-derived layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rtbci.models.encoder import Encoder, EncoderConfig
from rtbci.profile import Profile
from rtbci.signal import Normalizer
from rtbci.train.data import SessionBins

__all__ = ["SIZES", "EncoderSize", "fit_lfp_normalization", "new_encoder"]


@dataclass(frozen=True)
class EncoderSize:
    """Transformer size of an encoder."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    dropout: float = 0.1


# "default" is ARCHITECTURE.md's real-time CPU model; "small" trains in minutes
# on two CPU cores (quick benchmark, demo model, tests).
SIZES: dict[str, EncoderSize] = {
    "default": EncoderSize(),
    "small": EncoderSize(d_model=64, n_layers=2, n_heads=4, dropout=0.1),
    "tiny": EncoderSize(d_model=32, n_layers=1, n_heads=2, dropout=0.0),
}


def _region_ids(profile: Profile) -> tuple[int, ...] | None:
    names = profile.channel_regions()
    if not any(names):
        return None
    order = list(dict.fromkeys(names))
    return tuple(order.index(name) for name in names)


def new_encoder(
    profile: Profile,
    modality: Literal["spikes", "lfp"],
    n_features: int,
    n_sessions: int,
    size: EncoderSize,
    context: Literal["embedding", "stitching"] = "embedding",
) -> Encoder:
    """A freshly initialised encoder laid out as the profile says.

    Parameters
    ----------
    profile
        Channel count, window, spatial scale, patch size, region map and, for
        LFP, the causal convolution over each channel's features.
    modality
        ``spikes`` or ``lfp``.
    n_features
        Features per channel (1 for spikes).
    n_sessions
        Rows of the session table.
    size
        Transformer size.
    context
        Session context: per-session ``embedding`` or ``stitching`` read-in.
    """
    features = profile.features
    config = EncoderConfig(
        modality=modality,
        n_channels=profile.streams.spikes.channels,
        n_features=1 if modality == "spikes" else n_features,
        spatial_scale=features.spatial_scale,
        patch_channels=features.patch_channels,
        channel_regions=_region_ids(profile),
        d_model=size.d_model,
        n_layers=size.n_layers,
        n_heads=size.n_heads,
        window_bins=features.window_bins,
        dropout=size.dropout,
        context=context,
        n_sessions=n_sessions,
        lfp_conv_bins=features.lfp_conv_bins if modality == "lfp" else 0,
        lfp_conv_channels=features.lfp_conv_channels,
    )
    return Encoder(config)


def fit_lfp_normalization(blocks: Sequence[SessionBins]) -> Normalizer:
    """Per channel and feature z-scoring of raw LFP features, fit on training blocks."""
    return Normalizer().fit(np.concatenate([block.lfp for block in blocks]))
