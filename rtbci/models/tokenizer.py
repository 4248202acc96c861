"""Tokenizer: one time bin x a group of channels -> one token, plus session/subject context.

The spatial scale (BaRISTA) decides the channel groups: ``channel`` (one token per
electrode), ``patch`` (K consecutive electrodes, NDT2's default K=32) or ``region``
(the electrodes of one region or array of the profile's map).

LFP features can also pass through a small causal convolution over time, per
channel (:class:`CausalChannelConvolution`), before they are grouped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from rtbci.models.config import EncoderConfig

__all__ = ["CausalChannelConvolution", "GrowingTable", "Tokenizer", "token_groups"]


def token_groups(
    n_channels: int, spatial_scale: str, patch_channels: int, channel_regions: tuple[int, ...] | None
) -> list[list[int]]:
    """Channel indices of each token of one bin.

    Parameters
    ----------
    n_channels
        Electrodes per bin.
    spatial_scale
        ``channel``, ``patch`` or ``region``.
    patch_channels
        Electrodes per patch for the ``patch`` scale (the last patch may be shorter).
    channel_regions
        Region id of every electrode, needed for the ``region`` scale.

    Returns
    -------
    list of list of int
        One list of channel indices per token, in token order.
    """
    if spatial_scale == "channel":
        return [[c] for c in range(n_channels)]
    if spatial_scale == "patch":
        return [
            list(range(s, min(s + patch_channels, n_channels))) for s in range(0, n_channels, patch_channels)
        ]
    if spatial_scale == "region":
        if channel_regions is None or len(channel_regions) != n_channels:
            raise ValueError("spatial_scale 'region' needs channel_regions with one region id per channel")
        order = list(dict.fromkeys(channel_regions))
        return [[c for c, r in enumerate(channel_regions) if r == region] for region in order]
    raise ValueError(f"spatial_scale must be channel, patch or region, not {spatial_scale!r}")


class GrowingTable(nn.Module):
    """A table of per-entry parameters (one entry per session or subject) that grows at run time.

    Entries live in chunks, one :class:`torch.nn.Parameter` per :meth:`grow` call, so that
    the entries added for a new session are parameters of their own: calibration can train
    only them while the old entries stay untouched.

    Parameters
    ----------
    n_entries
        Initial number of entries.
    init
        Returns a fresh ``(n, *entry_shape)`` tensor for ``n`` new entries.
    """

    def __init__(self, n_entries: int, init: Callable[[int], torch.Tensor]):
        super().__init__()
        self.init = init
        self.chunks = nn.ParameterList([nn.Parameter(init(n_entries))])

    def grow(self, n: int) -> str:
        """Add ``n`` entries; returns the local name of their new parameter."""
        if n < 1:
            raise ValueError(f"can only add a positive number of entries, not {n}")
        device = self.chunks[0].device
        self.chunks.append(nn.Parameter(self.init(n).to(device)))
        return f"chunks.{len(self.chunks) - 1}"

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # A saved table that grew has several chunks, while a table built from a config has one chunk
        # of all entries: load such a state as one chunk. Parameters are replaced only when even that
        # does not fit, so an optimizer built before loading keeps training the live tensors.
        chunk_prefix = prefix + "chunks."
        keys = sorted(
            (k for k in state_dict if k.startswith(chunk_prefix)), key=lambda k: int(k[len(chunk_prefix) :])
        )
        own_shapes = [tuple(chunk.shape) for chunk in self.chunks]
        if keys and [tuple(state_dict[k].shape) for k in keys] != own_shapes:
            merged = torch.cat([state_dict.pop(k) for k in keys], dim=0)
            state_dict[chunk_prefix + "0"] = merged
            if own_shapes != [tuple(merged.shape)]:
                device = self.chunks[0].device
                self.chunks = nn.ParameterList([nn.Parameter(torch.empty_like(merged, device=device))])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        table = self.chunks[0] if len(self.chunks) == 1 else torch.cat(list(self.chunks), dim=0)
        return table[index]


# Table initialisers are partials of module functions, not closures, so that an encoder pickles
# (the accuracy benchmark trains stages in worker processes and sends the encoders back).
def _normal_rows(shape: tuple[int, ...], n: int) -> torch.Tensor:
    return torch.randn(n, *shape) * 0.02


def _identity_rows(n_channels: int, n: int) -> torch.Tensor:
    return torch.eye(n_channels).expand(n, n_channels, n_channels).clone()


def _normal_init(shape: tuple[int, ...]) -> Callable[[int], torch.Tensor]:
    return functools.partial(_normal_rows, shape)


def _identity_init(n_channels: int) -> Callable[[int], torch.Tensor]:
    return functools.partial(_identity_rows, n_channels)


def _all_channels_live_when_absent(module: nn.Module, state_dict: dict, prefix: str, *_: object) -> None:
    """Checkpoints written before channels could be switched off read every channel."""
    state_dict.setdefault(f"{prefix}channel_live", torch.ones_like(module.channel_live))


class CausalChannelConvolution(nn.Module):
    """A learned causal filter bank over each channel's recent LFP features, shared by all channels.

    A bin's band power is the log mean square of 20 ms of signal: a noisy
    estimate, most of all for the low bands, whose period is longer than a bin.
    This reads each channel's ``F`` features over the last ``bins`` bins and gives
    ``n_out`` GELU outputs per channel and bin, before channels are mixed into
    tokens. Distilled from the saved teachers of ``rtbci bench accuracy`` (its
    default plan, channel check on), 5 bins and 8 outputs lifted the student's
    held-out R² from 0.324 to 0.366 with seed 0 and from 0.339 to 0.375 with
    seed 1 (on later blocks of the training sessions 0.376 -> 0.424 and
    0.412 -> 0.462). With seed 0, 10 bins scored 0.375 and 16 outputs 0.366.
    With 10 bins the whole benchmark (teacher retrained, the same) gave 0.389 and
    0.391 held-out, 0.84 and 0.87 of the teacher (linear: 0.70 and 0.76), and
    0.533 with seed 2, 1.05 (linear: 0.93).

    Parameters
    ----------
    n_features
        Features per channel, ``F``.
    n_out
        Outputs per channel.
    bins
        Kernel length in bins, at least 2.
    """

    def __init__(self, n_features: int, n_out: int, bins: int):
        super().__init__()
        self.bins = bins
        self.conv = nn.Conv1d(n_features, n_out, bins)

    def forward(self, values: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, C, F)`` normalised values -> ``(B, T, C, n_out)``.

        Parameters
        ----------
        values
            Per-channel values of ``T`` consecutive bins.
        history
            ``(B, bins - 1, C, F)`` values of the bins just before; ``None`` reads
            zeros there (an average bin), as at the start of a stream.
        """
        B, T, C, F = values.shape
        if history is None:
            history = values.new_zeros(B, self.bins - 1, C, F)
        series = torch.cat([history, values], dim=1).permute(0, 2, 3, 1).reshape(B * C, F, -1)
        out = nn.functional.gelu(self.conv(series))
        return out.reshape(B, C, -1, T).permute(0, 3, 1, 2)


class Tokenizer(nn.Module):
    """Raw bin features -> tokens ``(B, T, N, d)``.

    Spike counts are clamped to ``0..max_count`` and embedded per channel (a shared
    count embedding of ``d_model // group_size`` dims, NDT2-style). LFP features are
    z-scored with the baked-in normalization buffers. Each token is then a linear map
    of its group's per-channel values plus a learned token (spatial) embedding.

    With ``lfp_conv_bins`` set, each LFP channel's values are read together with a
    causal convolution of its recent values (:class:`CausalChannelConvolution`).

    Context: ``embedding`` adds a per-session vector to every token; ``stitching``
    instead maps the channels through a per-session linear read-in (identity at
    init) before grouping. An optional per-subject vector is added in both cases.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        groups = token_groups(
            config.n_channels, config.spatial_scale, config.patch_channels, config.channel_regions
        )
        group_size = max(len(g) for g in groups)
        # Index n_channels is an all-zero padding channel for groups shorter than the longest.
        padded = [g + [config.n_channels] * (group_size - len(g)) for g in groups]
        self.register_buffer("group_index", torch.tensor(padded, dtype=torch.long), persistent=False)
        self.register_buffer("group_valid", self.group_index < config.n_channels, persistent=False)
        self.group_size = group_size
        self.n_tokens = len(groups)
        d = config.d_model
        if config.modality == "spikes":
            self.channel_dim = max(1, d // group_size)
            self.count_embedding = nn.Embedding(config.max_count + 1, self.channel_dim)
        else:
            self.channel_dim = config.n_features
        # Raw -> normalized input, baked into every exported graph (see Encoder.set_normalization).
        shape = (config.n_channels, config.n_features)
        self.register_buffer("feature_mean", torch.zeros(shape))
        self.register_buffer("feature_std", torch.ones(shape))
        if config.modality == "lfp":
            # 1 for a channel the model reads, 0 for one switched off on this session
            # (rtbci.train.channel_check): its normalized value is then always 0.
            self.register_buffer("channel_live", torch.ones(config.n_channels))
            self.register_load_state_dict_pre_hook(_all_channels_live_when_absent)
        self.temporal: CausalChannelConvolution | None = None
        embedded_dim = self.channel_dim
        if config.lfp_conv_bins:
            self.temporal = CausalChannelConvolution(
                config.n_features, config.lfp_conv_channels, config.lfp_conv_bins
            )
            embedded_dim += config.lfp_conv_channels
        self.project = nn.Linear(group_size * embedded_dim, d)
        self.token_embedding = nn.Parameter(torch.randn(self.n_tokens, d) * 0.02)
        if config.context == "embedding":
            self.session_context = GrowingTable(config.n_sessions, _normal_init((d,)))
        else:
            self.session_stitch = GrowingTable(config.n_sessions, _identity_init(config.n_channels))
        if config.n_subjects > 0:
            self.subject_context = GrowingTable(config.n_subjects, _normal_init((d,)))

    def session_table(self) -> GrowingTable:
        """The per-session table (context vectors or stitching read-ins)."""
        return self.session_context if self.config.context == "embedding" else self.session_stitch

    def channel_values(self, x: torch.Tensor) -> torch.Tensor:
        """Raw ``(B, T, C, F)`` -> per-channel values ``(B, T, C, E)``."""
        if self.config.modality == "spikes":
            counts = x[..., 0].round().clamp(0, self.config.max_count).long()
            return self.count_embedding(counts)
        # One scale from two buffers: a constant the exported graph folds, so the per-bin
        # work is a subtraction and a multiplication, as it was before channels could be off.
        return (x - self.feature_mean) * (self.channel_live[:, None] / self.feature_std)

    def group_channels(self, values: torch.Tensor) -> torch.Tensor:
        """Per-channel ``(B, T, C, E)`` -> per-token ``(B, T, N, G, E)``, zero where a group is padded."""
        B, T, _, E = values.shape
        padded = torch.cat([values, values.new_zeros(B, T, 1, E)], dim=2)
        return padded[:, :, self.group_index]

    def reconstruction_target(self, x: torch.Tensor) -> torch.Tensor:
        """What masked modelling predicts, per token ``(B, T, N, G, F)``.

        Clamped spike counts (for a Poisson NLL) or z-scored LFP features (for an MSE).
        """
        if self.config.modality == "spikes":
            return self.group_channels(x.round().clamp(0, self.config.max_count))
        return self.group_channels(self.channel_values(x))

    @property
    def history_bins(self) -> int:
        """Earlier bins whose values the newest bin's tokens read (0 without the LFP convolution)."""
        return self.temporal.bins - 1 if self.temporal is not None else 0

    def forward(
        self, x: torch.Tensor, session: torch.Tensor, subject: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Tokens of raw features.

        Parameters
        ----------
        x
            ``(B, T, C, F)`` raw features (spike counts with ``F = 1``, or LFP features).
        session
            ``(B,)`` session indices into the context table.
        subject
            ``(B,)`` subject indices; required when the config has subjects.

        Returns
        -------
        torch.Tensor
            ``(B, T, N, d)`` tokens.
        """
        return self.embed_values(self.channel_values(x), session, subject)

    def embed_values(
        self,
        values: torch.Tensor,
        session: torch.Tensor,
        subject: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tokens of per-channel values ``(B, T, C, E)`` (:meth:`channel_values` of raw features).

        ``history`` is ``(B, history_bins, C, F)``, the values of the bins before, for
        the LFP convolution (the streaming step); ``None`` reads zeros there.
        """
        if self.temporal is not None:
            values = torch.cat([values, self.temporal(values, history)], dim=-1)
        if self.config.context == "stitching":
            values = torch.einsum("btce,bcf->btfe", values, self.session_stitch(session))
        B, T = values.shape[:2]
        tokens = (
            self.project(self.group_channels(values).reshape(B, T, self.n_tokens, -1)) + self.token_embedding
        )
        if self.config.context == "embedding":
            tokens = tokens + self.session_context(session)[:, None, None, :]
        if self.config.n_subjects > 0:
            if subject is None:
                raise ValueError("this encoder has subject tokens: pass subject indices")
            tokens = tokens + self.subject_context(subject)[:, None, None, :]
        return tokens
