"""The encoder's settings, on their own so that the tokenizer and the encoder both read them
without importing each other."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["EncoderConfig", "check_lfp_conv_bins"]


def check_lfp_conv_bins(lfp_conv_bins: int, window_bins: int) -> None:
    """The one rule for the LFP convolution's length (a profile's ``[features]`` and a model's config).

    Raises
    ------
    ValueError
        Unless ``lfp_conv_bins`` is 0 (off) or 2..``window_bins``: the convolution reads the
        bin and earlier bins that the attention window also caches.
    """
    if lfp_conv_bins != 0 and not 2 <= lfp_conv_bins <= window_bins:
        raise ValueError(
            f"lfp_conv_bins must be 0 (off) or 2..window_bins ({window_bins}), not {lfp_conv_bins}"
        )


@dataclass
class EncoderConfig:
    """Everything needed to rebuild an :class:`Encoder` (saved in every checkpoint).

    Parameters
    ----------
    modality
        ``spikes`` (counts, ``n_features = 1``) or ``lfp`` (per-channel LFP features).
    n_channels, n_features
        Electrodes per bin and features per electrode.
    spatial_scale, patch_channels, channel_regions
        Token grouping, see :func:`rtbci.models.tokenizer.token_groups`.
    d_model, n_layers, n_heads
        Transformer size.
    window_bins
        Attention window ``W`` in bins (50 bins of 20 ms = 1 s).
    dropout
        Dropout of the residual branches (modules: off in ``eval()``).
    max_count
        Spike counts are clamped to ``0..max_count``.
    context
        ``embedding`` (per-session vector) or ``stitching`` (per-session linear read-in).
    n_sessions, n_subjects
        Rows of the session and subject tables; ``n_subjects = 0`` means no subject token.
    lfp_conv_bins, lfp_conv_channels
        LFP only: a causal convolution over each channel's features in the last
        ``lfp_conv_bins`` bins, with ``lfp_conv_channels`` outputs, is read beside the
        features themselves (:class:`rtbci.models.tokenizer.CausalChannelConvolution`).
        0 bins: the features alone, linearly embedded (checkpoints from before this
        setting load as such).
    """

    modality: Literal["spikes", "lfp"]
    n_channels: int
    n_features: int = 1
    spatial_scale: Literal["channel", "patch", "region"] = "patch"
    patch_channels: int = 32
    channel_regions: tuple[int, ...] | None = None
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    window_bins: int = 50
    dropout: float = 0.1
    max_count: int = 20
    context: Literal["embedding", "stitching"] = "embedding"
    n_sessions: int = 1
    n_subjects: int = 0
    lfp_conv_bins: int = 0
    lfp_conv_channels: int = 8

    def __post_init__(self) -> None:
        if self.modality not in ("spikes", "lfp"):
            raise ValueError(f"modality must be spikes or lfp, not {self.modality!r}")
        if self.modality == "spikes" and self.n_features != 1:
            raise ValueError(f"spike encoders take one feature per channel, not n_features={self.n_features}")
        if self.context not in ("embedding", "stitching"):
            raise ValueError(f"context must be embedding or stitching, not {self.context!r}")
        sizes = {
            "n_channels": self.n_channels,
            "n_features": self.n_features,
            "patch_channels": self.patch_channels,
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
        }
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.window_bins < 2:
            raise ValueError(f"window_bins must be at least 2, not {self.window_bins}")
        if self.n_sessions < 1 or self.n_subjects < 0:
            raise ValueError("n_sessions must be >= 1 and n_subjects >= 0")
        check_lfp_conv_bins(self.lfp_conv_bins, self.window_bins)
        if self.lfp_conv_bins != 0 and self.modality != "lfp":
            raise ValueError(f"lfp_conv_bins is for LFP encoders; a {self.modality} encoder needs 0")
        if self.lfp_conv_channels < 1:
            raise ValueError(f"lfp_conv_channels must be positive, not {self.lfp_conv_channels}")
        if self.channel_regions is not None:
            self.channel_regions = tuple(int(r) for r in self.channel_regions)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-safe)."""
        out = dataclasses.asdict(self)
        out["channel_regions"] = list(self.channel_regions) if self.channel_regions is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        """Inverse of :meth:`to_dict`."""
        regions = data.get("channel_regions")
        return cls(**{**data, "channel_regions": tuple(regions) if regions is not None else None})
