"""Self-supervised pretraining pieces: random space-time masking, masked autoencoding (MAE)
and masked latent reconstruction (an EMA target encoder, as in CAE / BaRISTA).

Every objective is an ``nn.Module`` whose ``forward`` returns a dict with a scalar
``"loss"`` (plus its parts), so a training loop treats them alike.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional

from rtbci.models.backbone import Block, RMSNorm, bin_rotary, window_mask
from rtbci.models.encoder import Encoder
from rtbci.models.tokenizer import Tokenizer

__all__ = [
    "MaskedAutoencoder",
    "MaskedLatentObjective",
    "TokenDecoder",
    "masked_reconstruction_loss",
    "random_keep",
]


def random_keep(
    batch: int,
    n_bins: int,
    n_tokens: int,
    mask_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Random space-time token mask: exactly ``round(mask_ratio * T * N)`` tokens hidden per sample.

    Returns
    -------
    torch.Tensor
        ``(batch, n_bins, n_tokens)`` bool, True = visible to the encoder.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), not {mask_ratio}")
    n = n_bins * n_tokens
    n_masked = round(mask_ratio * n)
    scores = torch.rand(batch, n, generator=generator, device=device)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return (ranks >= n_masked).reshape(batch, n_bins, n_tokens)


class TokenDecoder(nn.Module):
    """Small transformer over all tokens: visible latents plus a learned mask token elsewhere.

    Used as the MAE decoder and as the latent regressor. Same sliding-window causal
    attention as the encoder, so a prediction never uses later bins.
    """

    def __init__(self, d_model: int, n_heads: int, n_tokens: int, window_bins: int, n_layers: int = 2):
        super().__init__()
        self.window_bins = window_bins
        self.mask_token = nn.Parameter(torch.zeros(d_model))
        self.token_embedding = nn.Parameter(torch.randn(n_tokens, d_model) * 0.02)
        self.blocks = nn.ModuleList([Block(d_model, n_heads, 0.0) for _ in range(n_layers)])
        self.norm = RMSNorm(d_model)

    def forward(self, latents: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``(B, T, N, d)`` latents and ``(B, T, N)`` keep -> ``(B, T, N, d)`` decoded tokens."""
        B, T, N, d = latents.shape
        h = torch.where(keep[..., None], latents, self.mask_token) + self.token_embedding
        token_bins = torch.arange(T, device=latents.device).repeat_interleave(N)
        mask = window_mask(token_bins, self.window_bins)
        rotary = bin_rotary(T, N, d // self.blocks[0].attn.n_heads, latents.device)
        h = h.reshape(B, T * N, d)
        for block in self.blocks:
            h = block(h, rotary, mask)
        return self.norm(h).reshape(B, T, N, d)


def masked_reconstruction_loss(
    tokenizer: Tokenizer, x: torch.Tensor, prediction: torch.Tensor, masked: torch.Tensor
) -> torch.Tensor:
    """Loss on the hidden tokens only: Poisson NLL for spikes, MSE for z-scored LFP features.

    Parameters
    ----------
    tokenizer
        Gives the targets and the channel grouping.
    x
        ``(B, T, C, F)`` raw features.
    prediction
        ``(B, T, N, G, F)``: log firing rates per channel (spikes) or feature values (LFP).
    masked
        ``(B, T, N)`` bool, True where the token was hidden from the encoder.
    """
    target = tokenizer.reconstruction_target(x)
    if tokenizer.config.modality == "spikes":
        elementwise = functional.poisson_nll_loss(prediction, target, log_input=True, reduction="none")
    else:
        elementwise = (prediction - target).pow(2)
    weight = (masked[..., None] & tokenizer.group_valid)[..., None].to(elementwise.dtype)
    return (elementwise * weight).sum() / (weight.sum() * elementwise.shape[-1]).clamp_min(1)


class MaskedAutoencoder(nn.Module):
    """MAE: encode the visible tokens, decode all with a 2-layer decoder, score the hidden ones.

    Parameters
    ----------
    encoder
        The encoder being pretrained.
    decoder_layers
        Layers of the :class:`TokenDecoder`.
    mask_ratio
        Fraction of tokens hidden when no ``keep`` is passed.
    """

    def __init__(self, encoder: Encoder, decoder_layers: int = 2, mask_ratio: float = 0.5):
        super().__init__()
        config = encoder.config
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.decoder = TokenDecoder(
            config.d_model, config.n_heads, encoder.n_tokens, config.window_bins, decoder_layers
        )
        self.reconstruct = nn.Linear(config.d_model, encoder.tokenizer.group_size * config.n_features)

    def forward(
        self,
        x: torch.Tensor,
        session: torch.Tensor,
        keep: torch.Tensor | None = None,
        subject: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{"loss": masked reconstruction loss}`` on raw ``(B, T, C, F)`` features."""
        B, T = x.shape[:2]
        if keep is None:
            keep = random_keep(B, T, self.encoder.n_tokens, self.mask_ratio, device=x.device)
        latents = self.encoder(x, session, keep, subject)
        decoded = self.decoder(latents, keep)
        prediction = self.reconstruct(decoded).reshape(
            *decoded.shape[:3], self.encoder.tokenizer.group_size, -1
        )
        return {"loss": masked_reconstruction_loss(self.encoder.tokenizer, x, prediction, ~keep)}


class MaskedLatentObjective(nn.Module):
    """Masked latent reconstruction: predict a stop-gradient EMA encoder's latents of hidden tokens.

    A :class:`TokenDecoder` regressor sees the visible tokens' latents and mask tokens
    and predicts the target encoder's (LayerNorm'd) latents of the hidden tokens. A light
    linear head on the regressor output also reconstructs the hidden tokens' inputs, which
    keeps the latents grounded. Call :meth:`update_target` after each optimizer step.

    Parameters
    ----------
    encoder
        The encoder being pretrained (the online encoder).
    regressor_layers
        Layers of the regressor.
    mask_ratio
        Fraction of tokens hidden when no ``keep`` is passed.
    ema_decay
        Target-encoder EMA decay per :meth:`update_target`.
    reconstruction_weight
        Weight of the input-reconstruction term.
    """

    def __init__(
        self,
        encoder: Encoder,
        regressor_layers: int = 2,
        mask_ratio: float = 0.5,
        ema_decay: float = 0.996,
        reconstruction_weight: float = 0.1,
    ):
        super().__init__()
        config = encoder.config
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.ema_decay = ema_decay
        self.reconstruction_weight = reconstruction_weight
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False).eval()
        self.regressor = TokenDecoder(
            config.d_model, config.n_heads, encoder.n_tokens, config.window_bins, regressor_layers
        )
        self.reconstruct = nn.Linear(config.d_model, encoder.tokenizer.group_size * config.n_features)

    def train(self, mode: bool = True) -> MaskedLatentObjective:
        super().train(mode)
        self.target_encoder.eval()  # the target is a fixed function of its weights: no dropout
        return self

    @torch.no_grad()
    def update_target(self) -> None:
        """EMA step of the target encoder towards the online encoder."""
        for target, online in zip(self.target_encoder.parameters(), self.encoder.parameters(), strict=True):
            target.lerp_(online, 1.0 - self.ema_decay)
        for target, online in zip(self.target_encoder.buffers(), self.encoder.buffers(), strict=True):
            target.copy_(online)

    def forward(
        self,
        x: torch.Tensor,
        session: torch.Tensor,
        keep: torch.Tensor | None = None,
        subject: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{"loss", "latent", "reconstruction"}`` on raw ``(B, T, C, F)`` features."""
        B, T = x.shape[:2]
        if keep is None:
            keep = random_keep(B, T, self.encoder.n_tokens, self.mask_ratio, device=x.device)
        with torch.no_grad():
            target = self.target_encoder(x, session, subject=subject)
            target = functional.layer_norm(target, target.shape[-1:])
        predicted = self.regressor(self.encoder(x, session, keep, subject), keep)
        masked = ~keep
        per_token = (functional.layer_norm(predicted, predicted.shape[-1:]) - target).pow(2).mean(-1)
        latent = (per_token * masked).sum() / masked.sum().clamp_min(1)
        prediction = self.reconstruct(predicted).reshape(
            *predicted.shape[:3], self.encoder.tokenizer.group_size, -1
        )
        reconstruction = masked_reconstruction_loss(self.encoder.tokenizer, x, prediction, masked)
        return {
            "loss": latent + self.reconstruction_weight * reconstruction,
            "latent": latent,
            "reconstruction": reconstruction,
        }
