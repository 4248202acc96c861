"""Encoder: shapes per spatial scale, masking, sliding-window causality, growing session tables."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

from rtbci.models import Encoder, EncoderConfig, random_keep
from rtbci.models.backbone import bin_rotary, window_mask
from rtbci.models.tokenizer import token_groups

REGIONS = tuple([0] * 10 + [1] * 14 + [2] * 16)


def small_config(**overrides) -> EncoderConfig:
    base = dict(
        modality="lfp",
        n_channels=40,
        n_features=3,
        spatial_scale="patch",
        patch_channels=16,
        channel_regions=REGIONS,
        d_model=32,
        n_layers=2,
        n_heads=2,
        window_bins=4,
        dropout=0.1,
        n_sessions=2,
    )
    return EncoderConfig(**{**base, **overrides})


def inputs(config: EncoderConfig, batch: int = 2, bins: int = 10, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, bins, config.n_channels, config.n_features)
    if config.modality == "spikes":
        return torch.poisson(torch.full(shape, 2.0), generator=gen)
    return torch.randn(shape, generator=gen) * 3 + 1


def test_token_groups_per_scale():
    assert token_groups(5, "channel", 32, None) == [[0], [1], [2], [3], [4]]
    assert token_groups(40, "patch", 16, None)[-1] == list(range(32, 40))
    assert [len(g) for g in token_groups(40, "region", 16, REGIONS)] == [10, 14, 16]
    with pytest.raises(ValueError, match="channel_regions"):
        token_groups(40, "region", 16, None)


@pytest.mark.parametrize("modality", ["spikes", "lfp"])
@pytest.mark.parametrize(("scale", "n_tokens"), [("channel", 40), ("patch", 3), ("region", 3)])
@pytest.mark.parametrize("context", ["embedding", "stitching"])
def test_shapes(modality, scale, n_tokens, context):
    config = small_config(
        modality=modality, n_features=1 if modality == "spikes" else 3, spatial_scale=scale, context=context
    )
    encoder = Encoder(config).eval()
    latents = encoder(inputs(config), torch.tensor([0, 1]))
    assert encoder.n_tokens == n_tokens
    assert latents.shape == (2, 10, n_tokens, 32)
    assert encoder.pool(latents).shape == (2, 10, 32)
    assert torch.isfinite(latents).all()


def test_spike_counts_are_clamped():
    config = small_config(modality="spikes", n_features=1)
    encoder = Encoder(config).eval()
    x = inputs(config)
    session = torch.tensor([0, 1])
    huge = x.clone()
    huge[:, :, :5] = 500.0
    assert torch.equal(encoder(huge, session), encoder(huge.clamp(max=config.max_count), session))
    assert not torch.allclose(encoder(huge, session), encoder(x, session))


def test_random_keep_ratio_and_masked_tokens_hidden():
    keep = random_keep(3, 10, 3, 0.5, generator=torch.Generator().manual_seed(1))
    assert keep.shape == (3, 10, 3)
    assert (keep.reshape(3, -1).sum(1) == 15).all()
    config = small_config()
    encoder = Encoder(config).eval()
    x = inputs(config)
    session = torch.tensor([0, 1])
    keep = random_keep(2, 10, 3, 0.5, generator=torch.Generator().manual_seed(2))
    latents = encoder(x, session, keep)
    assert (latents[~keep] == 0).all()
    # Changing the inputs of hidden tokens' channels must not change any visible token.
    hidden_bin, hidden_token = (~keep[0]).nonzero()[0].tolist()
    channels = encoder.tokenizer.group_index[hidden_token]
    channels = channels[channels < config.n_channels]
    changed = x.clone()
    changed[0, hidden_bin, channels] += 10.0
    again = encoder(changed, session, keep)
    assert torch.allclose(again[keep], latents[keep], atol=1e-6)


def masked_attention_reference(encoder: Encoder, x, session, keep) -> torch.Tensor:
    """Every token through the transformer, hidden ones masked out as keys: what dropping them must equal."""
    tokens = encoder.tokenizer(x, session)
    B, T, N, d = tokens.shape
    mask = window_mask(torch.arange(T).repeat_interleave(N), encoder.config.window_bins, keep.reshape(B, -1))
    h = tokens.reshape(B, T * N, d)
    for block in encoder.blocks:
        h = block(h, bin_rotary(T, N, encoder.head_dim, x.device), mask)
    return encoder.norm(h).reshape(B, T, N, d) * keep[..., None]


def test_dropping_hidden_tokens_equals_masking_them():
    config = small_config(window_bins=3)
    encoder = Encoder(config).eval()
    x = inputs(config, bins=12)
    session = torch.tensor([0, 1])
    keep = random_keep(2, 12, encoder.n_tokens, 0.5, generator=torch.Generator().manual_seed(3))
    reference = masked_attention_reference(encoder, x, session, keep)
    assert torch.allclose(encoder(x, session, keep), reference, atol=1e-5)


def test_samples_that_keep_different_token_counts_are_encoded_as_if_alone():
    config = small_config()
    encoder = Encoder(config).eval()
    x = inputs(config)
    session = torch.tensor([0, 1])
    keep = torch.stack(
        [
            random_keep(1, 10, encoder.n_tokens, ratio, generator=torch.Generator().manual_seed(4))[0]
            for ratio in (0.2, 0.7)
        ]
    )
    together = encoder(x, session, keep)
    for sample in range(2):
        alone = encoder(x[sample : sample + 1], session[sample : sample + 1], keep[sample : sample + 1])
        assert torch.allclose(together[sample], alone[0], atol=1e-5)
    assert torch.allclose(together, masked_attention_reference(encoder, x, session, keep), atol=1e-5)


@pytest.mark.parametrize("conv_bins", [0, 3])
def test_future_bins_do_not_change_past_outputs(conv_bins):
    config = small_config(lfp_conv_bins=conv_bins)
    encoder = Encoder(config).eval()
    x = inputs(config, bins=12)
    session = torch.tensor([0, 1])
    changed = x.clone()
    changed[:, 7:] = torch.randn_like(changed[:, 7:]) * 5
    before, after = encoder(x, session), encoder(changed, session)
    assert torch.allclose(before[:, :7], after[:, :7], atol=1e-6)
    assert not torch.allclose(before[:, 7:], after[:, 7:], atol=1e-3)


@pytest.mark.parametrize("conv_bins", [0, 3])
def test_sliding_window_forgets_bins_older_than_window(conv_bins):
    config = small_config(window_bins=4, lfp_conv_bins=conv_bins)
    encoder = Encoder(config).eval()
    x = inputs(config, bins=16)
    session = torch.tensor([0, 1])
    changed = x.clone()
    changed[:, 2] += 5.0  # bin 2 is in the window of bins 2..5 only (W=4 bins, per layer)
    before, after = encoder(x, session), encoder(changed, session)
    # Information travels W-1 bins per layer, and the LFP convolution reads conv_bins-1 bins back.
    reach = 2 + max(conv_bins - 1, 0) + config.n_layers * (config.window_bins - 1)
    assert torch.allclose(before[:, reach + 1 :], after[:, reach + 1 :], atol=1e-6)
    assert not torch.allclose(before[:, 2 : reach + 1], after[:, 2 : reach + 1], atol=1e-3)


def test_rotary_positions_are_relative():
    config = small_config()
    encoder = Encoder(config).eval()
    x = inputs(config)
    session = torch.tensor([0, 1])
    assert torch.allclose(encoder(x, session), encoder(x, session, first_bin=1_440_000), atol=2e-5)


@pytest.mark.parametrize("context", ["embedding", "stitching"])
def test_add_sessions_keeps_old_sessions(context):
    config = small_config(context=context)
    encoder = Encoder(config).eval()
    x = inputs(config)
    session = torch.tensor([0, 1])
    before = encoder(x, session)
    names = encoder.add_sessions(3)
    params = dict(encoder.named_parameters())
    assert len(names) == 1 and names[0] in params
    assert params[names[0]].shape[0] == 3
    assert encoder.config.n_sessions == 5
    with torch.no_grad():
        params[names[0]].add_(torch.randn_like(params[names[0]]))
    assert torch.equal(encoder(x, session), before)
    new_session = encoder(x, torch.tensor([2, 4]))
    assert new_session.shape == before.shape and not torch.allclose(new_session, before)
    # A grown encoder reloads into a fresh one built from its (updated) config.
    fresh = Encoder(dataclasses.replace(encoder.config)).eval()
    table_before = fresh.tokenizer.session_table().chunks[0]
    fresh.load_state_dict(encoder.state_dict())
    assert fresh.tokenizer.session_table().chunks[0] is table_before  # an optimizer built earlier stays valid
    assert torch.equal(fresh(x, torch.tensor([3, 1])), encoder(x, torch.tensor([3, 1])))


@pytest.mark.parametrize("context", ["embedding", "stitching"])
def test_encoder_pickles_and_still_grows(context):
    # Training stages run in worker processes that send their encoders back by pickling.
    config = small_config(context=context)
    encoder = Encoder(config).eval()
    copy = pickle.loads(pickle.dumps(encoder))
    x, session = inputs(config), torch.tensor([0, 1])
    assert torch.equal(copy(x, session), encoder(x, session))
    copy.add_sessions(1)
    assert copy.tokenizer.session_table()(torch.tensor([2])).shape[0] == 1


def test_subject_token_required_and_used():
    config = small_config(n_subjects=2)
    encoder = Encoder(config).eval()
    x = inputs(config)
    session = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="subject"):
        encoder(x, session)
    a = encoder(x, session, subject=torch.tensor([0, 0]))
    b = encoder(x, session, subject=torch.tensor([1, 1]))
    assert not torch.allclose(a, b)


def test_normalization_is_baked_in():
    config = small_config()
    encoder = Encoder(config).eval()
    x = inputs(config)
    session = torch.tensor([0, 1])
    mean, std = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 0.5, 4.0])
    reference = encoder(x, session)
    encoder.set_normalization(mean.numpy(), std.numpy())
    assert torch.allclose(encoder(x * std + mean, session), reference, atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        encoder.set_normalization(mean.numpy(), (std * 0).numpy())


def test_dropout_off_in_eval_on_in_train():
    config = small_config(dropout=0.5)
    encoder = Encoder(config)
    x, session = inputs(config), torch.tensor([0, 1])
    encoder.eval()
    assert torch.equal(encoder(x, session), encoder(x, session))
    encoder.train()
    assert not torch.equal(encoder(x, session), encoder(x, session))


def test_config_roundtrip_and_validation():
    config = small_config(spatial_scale="region")
    assert EncoderConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="modality"):
        small_config(modality="ecog")
    with pytest.raises(ValueError, match="n_features"):
        small_config(modality="spikes", n_features=3)
    with pytest.raises(ValueError, match="n_layers must be positive"):
        small_config(n_layers=0)
    with pytest.raises(ValueError, match="lfp_conv_bins is for LFP encoders"):
        small_config(modality="spikes", n_features=1, lfp_conv_bins=3)
    with pytest.raises(ValueError, match=r"lfp_conv_bins must be 0 \(off\) or 2\.\.window_bins \(4\), not 5"):
        small_config(lfp_conv_bins=5)
    with pytest.raises(ValueError, match="lfp_conv_bins must be 0"):
        small_config(lfp_conv_bins=1)
    convolved = small_config(lfp_conv_bins=3, lfp_conv_channels=4)
    assert EncoderConfig.from_dict(convolved.to_dict()) == convolved
    # Checkpoints written before the setting existed hold linear embeddings.
    older = {k: v for k, v in config.to_dict().items() if not k.startswith("lfp_conv")}
    assert EncoderConfig.from_dict(older).lfp_conv_bins == 0
    with pytest.raises(ValueError, match="heads of even size"):
        Encoder(small_config(d_model=30, n_heads=2))
