"""Stage B's optimiser groups and early stopping; the calibration split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from calibrate.split import CalibrationSplitConfig, split_calibration_block
from rtbci.models import Decoder, Encoder, EncoderConfig, RidgeHead
from rtbci.train.data import SessionBins
from rtbci.train.finetune import FinetuneConfig, layerwise_groups
from rtbci.train.loop import LoopConfig
from rtbci.train.stage_b import STAGE_B_FINETUNE, StageBConfig, run_stage_b


def _decoder(n_layers: int = 3) -> Decoder:
    config = EncoderConfig(
        modality="lfp", n_channels=8, n_features=2, d_model=16, n_layers=n_layers, n_heads=2, window_bins=6
    )
    return Decoder(Encoder(config), RidgeHead(16, 2))


def test_split_holds_out_the_last_fifth_with_gaps():
    split = split_calibration_block(1000, 50, CalibrationSplitConfig())
    assert (split.heldout.start, split.heldout.stop) == (800, 1000)
    assert split.train.stop == 750  # one window's gap before the held-out block
    assert split.val.stop == 750 and split.val.n_bins == 150
    assert split.fit.stop == 550 and split.fit.start == 0  # and one before the validation block
    with pytest.raises(ValueError, match="too few"):
        split_calibration_block(120, 50, CalibrationSplitConfig())


def test_layerwise_groups_decay_by_depth_and_boost_new_parameters():
    decoder = _decoder(n_layers=3)
    new = decoder.encoder.tokenizer.session_table().chunks[0]
    config = FinetuneConfig(new_lr_factor=10.0, layer_decay=0.75, loop=LoopConfig(lr=1e-3))
    groups = layerwise_groups(decoder, [new], config)
    rate_of = {id(p): group["lr"] for group in groups for p in group["params"]}
    assert sum(len(group["params"]) for group in groups) == len(list(decoder.parameters()))
    assert rate_of[id(decoder.head.linear.weight)] == pytest.approx(1e-3)
    assert rate_of[id(decoder.encoder.norm.weight)] == pytest.approx(1e-3)
    for index, block in enumerate(decoder.encoder.blocks):
        expected = 1e-3 * 0.75 ** (3 - index)
        assert all(rate_of[id(p)] == pytest.approx(expected) for p in block.parameters())
    assert rate_of[id(decoder.encoder.tokenizer.project.weight)] == pytest.approx(1e-3 * 0.75**4)
    assert rate_of[id(new)] == pytest.approx(1e-2)
    decays = {id(p): group["weight_decay"] for group in groups for p in group["params"]}
    assert decays[id(new)] == 0.0 and decays[id(decoder.encoder.norm.weight)] == 0.0
    assert decays[id(decoder.head.linear.weight)] == config.loop.weight_decay


def test_finetune_lowers_the_error_and_keeps_the_best_validation_weights():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n_bins = 600
    lfp = rng.standard_normal((n_bins, 8, 2)).astype(np.float32)
    kinematics = np.stack([lfp[:, 0, 0] + lfp[:, 1, 1], lfp[:, 2, 0] - lfp[:, 3, 1]], axis=1)
    bins = SessionBins("s", "subject", 0, np.zeros((n_bins, 8, 1), np.float32), lfp, kinematics)
    split = split_calibration_block(n_bins, 6, CalibrationSplitConfig())
    decoder = _decoder(n_layers=1)
    loop = dataclasses.replace(
        STAGE_B_FINETUNE.loop, lr=3e-3, steps=60, eval_every=10, patience=10, batch_size=8, max_seconds=600.0
    )
    config = StageBConfig(dataclasses.replace(STAGE_B_FINETUNE, loop=loop))

    fitted = run_stage_b(decoder, bins, split, [], config, progress=False)

    steps, _, val = zip(*fitted.history, strict=True)
    assert steps[0] == 0 and steps[-1] == 60
    assert max(val[1:]) > val[0]  # training helped on the validation block
    assert np.mean(fitted.val_r2) > 0.5
    assert fitted.latents.shape == (n_bins, 16)
