"""Per-channel facts for the signal views, Qt-free: what the decoder expects of each channel, and its state.

The decoder's artifact holds, per input channel and feature, the normalisation it
was trained with and whether the channel check switched the channel off for this
session (the tokenizer's ``channel_live``; :mod:`rtbci.train.channel_check`). The
live records carry each bin's decoder input, so a channel's state is judged on it
with the check's own rule: mean z-score beyond :data:`DEFAULT_THRESHOLD_SD` in any
feature over the last seconds. Such a channel is *noisy* when a feature reads far
above what the decoder learned, and *dead* when it reads only far below (a dead
electrode's band power drops to the amplifier floor) or does not change at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from rtbci.models.checkpoint import build_encoder, load_checkpoint
from rtbci.profile import Profile
from rtbci.runtime.manifest import read_manifest
from rtbci.signal.filters import design_filter_bank
from rtbci.train.channel_check import DEFAULT_THRESHOLD_SD

__all__ = ["ChannelState", "DecoderChannels", "channel_states", "read_decoder_channels"]


class ChannelState(IntEnum):
    """A channel's state as the signal view marks it."""

    OK = 0
    OFF = 1  # switched off by the channel check baked into the decoder
    DEAD = 2
    NOISY = 3


@dataclass(frozen=True)
class DecoderChannels:
    """What the decoder reads of each input channel.

    Attributes
    ----------
    modality
        ``"lfp"`` or ``"spikes"``: the input the decoder reads (and the records carry).
    feature_names
        The F features per channel (``["lmp", "8-15Hz", ...]`` or ``["spike count"]``).
    mean, std
        ``(C, F)`` normalisation the decoder was trained with.
    live
        ``(C,)`` ``False`` for a channel the channel check switched off.
    """

    modality: str
    feature_names: list[str]
    mean: np.ndarray
    std: np.ndarray
    live: np.ndarray

    @property
    def n_channels(self) -> int:
        return len(self.live)


def read_decoder_channels(profile: Profile) -> DecoderChannels:
    """Normalisation and switched-off channels of the profile's decoder artifact.

    An artifact exported before channels could be switched off has every channel live.

    Raises
    ------
    rtbci.errors.UserError
        If the artifact or its checkpoint is missing or unreadable.
    """
    folder = profile.artifact_dir()
    manifest = read_manifest(folder)
    tokenizer = build_encoder(load_checkpoint(folder / manifest.torch_file)).tokenizer
    if manifest.modality == "lfp":
        live = tokenizer.channel_live.numpy() > 0
        names = design_filter_bank(profile.streams.lfp.rate, profile.features).feature_names
    else:
        live = np.ones(manifest.n_channels, dtype=bool)
        names = ["spike count"]
    return DecoderChannels(
        modality=manifest.modality,
        feature_names=names,
        mean=tokenizer.feature_mean.numpy().astype(np.float64),
        std=tokenizer.feature_std.numpy().astype(np.float64),
        live=live,
    )


def channel_states(
    features: np.ndarray, channels: DecoderChannels, threshold_sd: float = DEFAULT_THRESHOLD_SD
) -> np.ndarray:
    """Each channel's :class:`ChannelState` over a block of bins.

    Parameters
    ----------
    features
        ``(T, C, F)`` raw decoder-input features of the newest bins, at least two.
    channels
        The decoder's normalisation and switched-off channels.
    threshold_sd
        Limit on a feature's mean z-score (the channel check's).

    Returns
    -------
    np.ndarray
        ``(C,)`` ``int8`` :class:`ChannelState` values.
    """
    mean_z = (features.mean(axis=0) - channels.mean) / channels.std
    noisy = (mean_z > threshold_sd).any(axis=1)
    low = (mean_z < -threshold_sd).any(axis=1)
    flat = (np.ptp(features, axis=0) == 0).all(axis=1)
    states = np.full(channels.n_channels, ChannelState.OK, dtype=np.int8)
    states[low | flat] = ChannelState.DEAD
    states[noisy] = ChannelState.NOISY
    states[~channels.live] = ChannelState.OFF
    return states
