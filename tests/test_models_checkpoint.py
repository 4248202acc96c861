"""Checkpoint round trip: config, grown session table, weights, metadata."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rtbci.models import (
    Checkpoint,
    CheckpointError,
    Decoder,
    Encoder,
    EncoderConfig,
    RidgeHead,
    build_decoder,
    build_encoder,
    load_checkpoint,
    save_checkpoint,
)


def make_decoder() -> Decoder:
    config = EncoderConfig(
        modality="lfp",
        n_channels=16,
        n_features=2,
        patch_channels=8,
        d_model=16,
        n_layers=1,
        n_heads=2,
        window_bins=4,
        n_sessions=2,
    )
    decoder = Decoder(Encoder(config), RidgeHead(16, 2)).eval()
    decoder.encoder.set_normalization([1.0, 2.0], [3.0, 4.0])
    return decoder


def test_decoder_checkpoint_roundtrip(tmp_path):
    decoder = make_decoder()
    decoder.encoder.add_sessions(1)
    checkpoint = Checkpoint(
        encoder_config=dataclasses.replace(decoder.encoder.config),
        state_dict=decoder.state_dict(),
        session_ids=["a", "b", "c"],
        kinematics_names=["vel_x", "vel_y"],
        kinematics_units="m/s",
        normalization={"mean": [1.0, 2.0], "std": [3.0, 4.0]},
        features={"bin_ms": 20.0, "bands_hz": [[8.0, 15.0]]},
        metrics={"heldout_r2": 0.5},
    )
    path = save_checkpoint(tmp_path / "model.pt", checkpoint)
    loaded = load_checkpoint(path)
    assert loaded.session_ids == ["a", "b", "c"] and loaded.session_index("c") == 2
    assert loaded.features == checkpoint.features and loaded.metrics == {"heldout_r2": 0.5}
    rebuilt = build_decoder(loaded)
    x = torch.randn(1, 6, 16, 2)
    for session in (0, 2):
        index = torch.tensor([session])
        assert torch.equal(rebuilt(x, index), decoder(x, index))
    assert torch.equal(build_encoder(loaded)(x, torch.tensor([1])), decoder.encoder(x, torch.tensor([1])))
    with pytest.raises(CheckpointError, match="'zzz'"):
        loaded.session_index("zzz")


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an rtbci checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    encoder_only = Checkpoint(
        EncoderConfig(modality="spikes", n_channels=8, d_model=16, n_heads=2, n_layers=1),
        Encoder(
            EncoderConfig(modality="spikes", n_channels=8, d_model=16, n_heads=2, n_layers=1)
        ).state_dict(),
        ["s"],
    )
    save_checkpoint(tmp_path / "teacher.pt", encoder_only)
    with pytest.raises(CheckpointError, match="encoder only"):
        build_decoder(load_checkpoint(tmp_path / "teacher.pt"))
