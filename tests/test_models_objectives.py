"""Pretraining and distillation objectives: masking, loss decreases with optimisation, frozen teacher."""

from __future__ import annotations

import pytest
import torch

from rtbci.models import (
    DistillationObjective,
    Encoder,
    EncoderConfig,
    MaskedAutoencoder,
    MaskedLatentObjective,
    alignment_loss,
    masked_reconstruction_loss,
    random_keep,
)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small models on a shared 2-core machine: a second torch thread mostly waits on the first."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_spikes(batch: int, bins: int, channels: int, seed: int) -> torch.Tensor:
    """Poisson counts driven by a shared low-dimensional latent, so masked tokens are predictable."""
    gen = torch.Generator().manual_seed(seed)
    phase = torch.rand(batch, 1, 1, generator=gen) * 6.28
    t = torch.arange(bins, dtype=torch.float32)[None, :, None]
    tuning = torch.rand(1, 1, channels, generator=gen) * 6.28
    rates = 1.5 * (1 + torch.sin(0.3 * t + phase + tuning))
    return torch.poisson(rates, generator=gen)[..., None]


def spike_config(**overrides) -> EncoderConfig:
    base = dict(
        modality="spikes", n_channels=32, patch_channels=8, d_model=32, n_layers=2, n_heads=2, window_bins=8
    )
    return EncoderConfig(**{**base, **overrides})


def test_reconstruction_loss_scores_only_masked_tokens():
    encoder = Encoder(spike_config())
    x = toy_spikes(2, 16, 32, seed=1)
    keep = random_keep(2, 16, encoder.n_tokens, 0.5, generator=torch.Generator().manual_seed(3))
    prediction = torch.zeros(2, 16, encoder.n_tokens, encoder.tokenizer.group_size, 1)
    loss = masked_reconstruction_loss(encoder.tokenizer, x, prediction, ~keep)
    visible_changed = prediction.clone()
    visible_changed[keep] = 3.0
    masked_changed = prediction.clone()
    masked_changed[~keep] = 3.0
    assert torch.equal(loss, masked_reconstruction_loss(encoder.tokenizer, x, visible_changed, ~keep))
    assert not torch.equal(loss, masked_reconstruction_loss(encoder.tokenizer, x, masked_changed, ~keep))


def test_mae_shapes_and_default_masking():
    torch.manual_seed(0)
    mae = MaskedAutoencoder(Encoder(spike_config()), mask_ratio=0.5)
    loss = mae(toy_spikes(2, 16, 32, seed=1), torch.zeros(2, dtype=torch.long))["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_mae_optimisation_lowers_masked_poisson_nll():
    torch.manual_seed(0)
    mae = MaskedAutoencoder(Encoder(spike_config(dropout=0.0)))
    x, session = toy_spikes(8, 24, 32, seed=1), torch.zeros(8, dtype=torch.long)
    keep = random_keep(8, 24, 4, 0.5, generator=torch.Generator().manual_seed(2))
    optimizer = torch.optim.AdamW(mae.parameters(), lr=3e-3)
    with torch.no_grad():
        first = mae(x, session, keep)["loss"].item()
    for step in range(60):
        step_keep = random_keep(8, 24, 4, 0.5, generator=torch.Generator().manual_seed(100 + step))
        loss = mae(x, session, step_keep)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        last = mae(x, session, keep)["loss"].item()
    assert last < 0.85 * first


def test_masked_latent_objective_trains_and_updates_ema_target():
    torch.manual_seed(0)
    objective = MaskedLatentObjective(Encoder(spike_config(dropout=0.1)), ema_decay=0.9)
    objective.train()
    assert not objective.target_encoder.training
    assert not any(p.requires_grad for p in objective.target_encoder.parameters())
    x, session = toy_spikes(4, 16, 32, seed=1), torch.zeros(4, dtype=torch.long)
    parts = objective(x, session)
    assert set(parts) == {"loss", "latent", "reconstruction"}
    parts["loss"].backward()
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-2)
    optimizer.step()
    target_before = objective.target_encoder.blocks[0].attn.qkv.weight.clone()
    objective.update_target()
    target_after = objective.target_encoder.blocks[0].attn.qkv.weight
    online = objective.encoder.blocks[0].attn.qkv.weight
    assert torch.allclose(target_after, 0.9 * target_before + 0.1 * online, atol=1e-6)


def test_alignment_loss_ignores_scale_and_offset():
    student = torch.randn(2, 5, 16)
    assert alignment_loss(student, 3 * student + 1).item() < 1e-6
    assert alignment_loss(student, torch.randn(2, 5, 16)).item() > 0.5


def test_distillation_lowers_alignment_and_keeps_teacher_frozen():
    torch.manual_seed(0)
    spikes = toy_spikes(8, 16, 32, seed=1)
    # LFP features: a noisy linear mix of the spike counts, like a field potential.
    lfp = (spikes.squeeze(-1) @ torch.randn(32, 32) / 6).unsqueeze(-1).repeat(1, 1, 1, 2)
    lfp = lfp + 0.1 * torch.randn_like(lfp)
    teacher = Encoder(spike_config())
    student = Encoder(spike_config(modality="lfp", n_features=2, dropout=0.0))
    teacher_weights = {k: v.clone() for k, v in teacher.state_dict().items()}
    objective = DistillationObjective(student, teacher, reconstruction_weight=0.1)
    objective.train()
    assert not objective.teacher.training
    session = torch.zeros(8, dtype=torch.long)
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=3e-3)
    first = objective(lfp, spikes, session, session)["alignment"].item()
    for _ in range(40):
        parts = objective(lfp, spikes, session, session)
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
    last = objective(lfp, spikes, session, session)["alignment"].item()
    assert last < 0.7 * first
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_weights.items())
