"""Channel check: outlier LFP channels of a new session are found and switched off, in torch and in ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtbci.models import Decoder, Encoder, EncoderConfig
from rtbci.models.checkpoint import Checkpoint, save_checkpoint
from rtbci.models.heads import RidgeHead
from rtbci.runtime import load_backend
from rtbci.runtime.export import export_artifact
from rtbci.train.channel_check import outlier_channels, silence_outlier_channels

N_CHANNELS, N_FEATURES = 40, 3
MEAN = np.tile(np.linspace(-1.0, 1.0, N_FEATURES), (N_CHANNELS, 1))
STD = np.tile(np.linspace(0.5, 2.0, N_FEATURES), (N_CHANNELS, 1))


def lfp_encoder(modality: str = "lfp", conv_bins: int = 0) -> Encoder:
    torch.manual_seed(0)
    config = EncoderConfig(
        modality=modality,
        n_channels=N_CHANNELS,
        n_features=N_FEATURES if modality == "lfp" else 1,
        patch_channels=16,
        d_model=32,
        n_layers=1,
        n_heads=2,
        window_bins=4,
        n_sessions=1,
        lfp_conv_bins=conv_bins,
    )
    encoder = Encoder(config).eval()
    if modality == "lfp":
        encoder.set_normalization(MEAN, STD)
    return encoder


def block(shifts_sd: dict[tuple[int, int], float], bins: int = 400, seed: int = 0) -> np.ndarray:
    """Raw features drawn from the normalisation, with some (channel, feature) means shifted."""
    z = np.random.default_rng(seed).standard_normal((bins, N_CHANNELS, N_FEATURES))
    for (channel, feature), shift in shifts_sd.items():
        z[:, channel, feature] += shift
    return (MEAN + STD * z).astype(np.float32)


def test_outlier_channels_are_those_beyond_the_threshold_in_any_feature():
    lfp = block({(3, 0): -6.0, (7, 2): 4.0, (11, 1): 1.5})
    assert outlier_channels(lfp, MEAN, STD).tolist() == [3, 7]
    assert outlier_channels(lfp, MEAN, STD, threshold_sd=1.0).tolist() == [3, 7, 11]
    assert outlier_channels(block({}), MEAN, STD).size == 0


def test_outlier_channels_refuses_a_block_that_does_not_match_the_normalisation():
    with pytest.raises(ValueError, match="does not match"):
        outlier_channels(np.zeros((10, N_CHANNELS + 1, N_FEATURES)), MEAN, STD)
    with pytest.raises(ValueError, match="at least one bin"):
        outlier_channels(np.zeros((0, N_CHANNELS, N_FEATURES)), MEAN, STD)


@pytest.mark.parametrize("conv_bins", [0, 3])
def test_a_switched_off_channel_no_longer_changes_the_latents(conv_bins):
    encoder = lfp_encoder(conv_bins=conv_bins)
    lfp = block({(5, 1): -8.0})
    assert silence_outlier_channels(encoder, lfp).tolist() == [5]
    x = torch.as_tensor(block({}, bins=12, seed=1))[None]
    session = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        before = encoder(x, session)
        x[..., 5, :] = 1e4
        assert torch.equal(encoder(x, session), before)
        x[..., 6, :] = 1e4
        assert not torch.allclose(encoder(x, session), before)
    # Already off: not checked, not reported again.
    assert silence_outlier_channels(encoder, lfp).size == 0


def test_a_recheck_switches_a_recovered_channel_back_on():
    encoder = lfp_encoder()
    silence_outlier_channels(encoder, block({(5, 1): -8.0, (8, 0): 6.0}))
    # Channel 5 recovered; channel 8 is still noisy and is reported again.
    assert silence_outlier_channels(encoder, block({(8, 0): 6.0}, seed=3), recheck=True).tolist() == [8]
    live = encoder.tokenizer.channel_live
    assert live[5] == 1 and live[8] == 0 and int(live.sum()) == N_CHANNELS - 1


def test_the_switch_is_saved_and_old_state_dicts_read_every_channel():
    encoder = lfp_encoder()
    silence_outlier_channels(encoder, block({(2, 0): 5.0}))
    reloaded = lfp_encoder()
    reloaded.load_state_dict(encoder.state_dict())
    assert reloaded.tokenizer.channel_live[2] == 0 and reloaded.tokenizer.channel_live.sum() == N_CHANNELS - 1
    old = {k: v for k, v in encoder.state_dict().items() if not k.endswith("channel_live")}
    fresh = lfp_encoder()
    fresh.tokenizer.channel_live.zero_()
    fresh.load_state_dict(old)
    assert torch.equal(fresh.tokenizer.channel_live, torch.ones(N_CHANNELS))


def test_spike_encoders_have_no_channel_check():
    with pytest.raises(ValueError, match="only LFP encoders"):
        silence_outlier_channels(lfp_encoder("spikes"), block({}))


def test_the_exported_graph_ignores_a_switched_off_channel(tmp_path):
    torch.set_num_threads(1)
    encoder = lfp_encoder()
    silence_outlier_channels(encoder, block({(9, 2): 7.0}))
    decoder = Decoder(encoder, RidgeHead(encoder.config.d_model, 2)).eval()
    save_checkpoint(
        tmp_path / "model.pt",
        Checkpoint(
            encoder_config=encoder.config,
            state_dict=decoder.state_dict(),
            session_ids=["sim-S0-d00"],
            kinematics_names=["vel_x", "vel_y"],
            kinematics_units="m/s",
            normalization={"mean": MEAN.tolist(), "std": STD.tolist()},
            features={"bin_ms": 20.0, "window_bins": 4},
            metrics={},
        ),
    )
    export_artifact(tmp_path / "model.pt", tmp_path / "art", parity_steps=20)
    clean = block({}, bins=8, seed=2)

    def decoded(channel: int | None) -> np.ndarray:
        bins = clean.copy()
        if channel is not None:
            bins[:, channel, :] = 1e4
        backend = load_backend("onnxruntime", tmp_path / "art")
        return np.stack([backend.step(b) for b in bins])

    np.testing.assert_array_equal(decoded(9), decoded(None))
    assert not np.allclose(decoded(10), decoded(None))
