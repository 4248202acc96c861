"""The exported graph against torch on simulated LFP features, not only random numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rtbci.models import Checkpoint, Decoder, Encoder, EncoderConfig, RidgeHead, save_checkpoint
from rtbci.profile import load_profile
from rtbci.runtime import load_backend
from rtbci.runtime.export import export_artifact
from rtbci.signal import Normalizer, featurize
from rtbci.sim import SimConfig, simulate_session

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"


@pytest.mark.slow
def test_onnxruntime_equals_torch_on_simulated_lfp_features(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        profile = load_profile(DEMO_PROFILE)
        binned = featurize(
            simulate_session(SimConfig(), 0, 0, minutes=0.25, seed=11), profile, progress=False
        )
        lfp = binned.lfp
        assert lfp.shape[0] >= 500
        normalizer = Normalizer().fit(lfp[:200])
        torch.manual_seed(0)
        config = EncoderConfig(modality="lfp", n_channels=lfp.shape[1], n_features=lfp.shape[2])
        decoder = Decoder(Encoder(config), RidgeHead(config.d_model, 2)).eval()
        decoder.encoder.set_normalization(normalizer.mean, normalizer.std)
        save_checkpoint(
            tmp_path / "model.pt",
            Checkpoint(
                encoder_config=config,
                state_dict=decoder.state_dict(),
                session_ids=[binned.session_id],
                kinematics_names=list(binned.kinematics_names),
                kinematics_units="m/s",
                normalization=normalizer.to_dict(),
                features={"bin_ms": profile.features.bin_ms},
            ),
        )
        export_artifact(tmp_path / "model.pt", tmp_path / "art", parity_steps=20, check_bins=lfp[:300])
        backend = load_backend("onnxruntime", tmp_path / "art")
        streamed = np.stack([backend.step(features) for features in lfp[:500]])
        with torch.no_grad():
            full = decoder(torch.from_numpy(lfp[None, :500]), torch.tensor([0]))[0].numpy()
        assert np.abs(streamed - full).max() <= 1e-4
        assert streamed.std(axis=0).min() > 0  # the decoder really responds to the simulated features
    finally:
        torch.set_num_threads(threads)
