"""Training stages on small synthetic sessions: pretraining, distillation, head."""

import dataclasses

import numpy as np
import pytest
import torch

from rtbci.models.distillation import alignment_loss
from rtbci.profile import load_profile
from rtbci.train.data import SessionBins, WindowSet
from rtbci.train.ddp import init_distributed
from rtbci.train.distill import DistillConfig, distill
from rtbci.train.encoders import SIZES, fit_lfp_normalization, new_encoder
from rtbci.train.finetune import FinetuneConfig, finetune, head_then_finetune
from rtbci.train.head import HeadConfig, fit_head, score_decoder
from rtbci.train.heldout import add_unseen_session
from rtbci.train.latents import encode_bins
from rtbci.train.loop import LoopConfig
from rtbci.train.objectives import KinematicsLoss
from rtbci.train.pretrain import PretrainConfig, pretrain
from rtbci.train.splits import SplitConfig, split_blocks
from rtbci.train.subject_rows import subject_rows

N_BINS = 1500


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared machine: one thread avoids OpenMP oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def profile():
    return load_profile("profiles/demo.toml")


def _session(row: int, seed: int) -> SessionBins:
    """Spikes and LFP driven by one smooth 2-D velocity; LFP is a noisier view of it."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_BINS) * 0.02
    velocity = np.stack([np.sin(1.1 * t + row), np.cos(0.6 * t + 2 * row)], axis=1).astype(np.float32)
    tuning = rng.normal(size=(2, 96))
    rates = np.exp(-0.5 + 0.7 * velocity @ tuning)
    spikes = rng.poisson(rates)[:, :, None].astype(np.float32)
    mixing = rng.normal(size=(1, 1, 5))
    lfp = (velocity @ tuning)[:, :, None] * mixing + 2.0 * rng.normal(size=(N_BINS, 96, 5)) + 10.0
    return SessionBins(f"s{row}", "subject", row, spikes, lfp.astype(np.float32), velocity)


@pytest.fixture(scope="module")
def blocks():
    sessions = [_session(row, seed=row) for row in range(2)]
    split = split_blocks(N_BINS, SplitConfig(fractions=(0.7, 0.15, 0.15), gap_bins=10))
    return (
        [s.block(split.train) for s in sessions],
        [s.block(split.val) for s in sessions],
        [s.block(split.test) for s in sessions],
    )


def _loop(steps: int) -> LoopConfig:
    return LoopConfig(steps=steps, batch_size=8, lr=3e-3, warmup_steps=5, eval_every=0, checkpoint_every=0)


@pytest.mark.parametrize("objective", ["mae", "latent"])
def test_short_teacher_run_lowers_the_masked_loss(profile, blocks, objective: str) -> None:
    train, val, _ = blocks
    config = PretrainConfig(objective=objective, size=SIZES["tiny"], window_stride=5, loop=_loop(80))
    encoder, result = pretrain(train, val, profile, config, init_distributed("cpu"), n_sessions=2)
    losses = np.asarray(result.state.losses)
    assert len(losses) == 80
    # The masked Poisson NLL (MAE) or latent loss falls well below where it started.
    assert losses[-15:].mean() < 0.95 * losses[:5].mean(), (losses[:5], losses[-15:])
    assert not encoder.training
    assert len(result.state.val_r2) == 1 and np.isfinite(result.state.val_r2[0][1])


def test_short_distillation_lowers_the_alignment_loss(profile, blocks) -> None:
    train, val, _ = blocks
    context = init_distributed("cpu")
    teacher_config = PretrainConfig(size=SIZES["tiny"], window_stride=5, loop=_loop(30))
    teacher, _ = pretrain(train, val, profile, teacher_config, context, n_sessions=2)
    config = DistillConfig(size=SIZES["tiny"], reconstruction_weight=0.0, window_stride=5, loop=_loop(80))
    student, _ = distill(teacher, train, val, profile, config, context)

    # The same untrained student that distill() starts from (same seed, same normalisation).
    torch.manual_seed(config.loop.seed)
    untrained = new_encoder(profile, "lfp", 5, 2, config.size, config.context)
    normalizer = fit_lfp_normalization(train)
    untrained.set_normalization(normalizer.mean, normalizer.std)

    def alignment(encoder) -> float:
        student_latents = np.concatenate([encode_bins(encoder, b.lfp, b.context) for b in val])
        teacher_latents = np.concatenate([encode_bins(teacher, b.spikes, b.context) for b in val])
        return float(alignment_loss(torch.from_numpy(student_latents), torch.from_numpy(teacher_latents)))

    before, after = alignment(untrained), alignment(student)
    assert after < 0.8 * before


def test_subject_rows_map_each_session_to_its_subjects_first_row(blocks) -> None:
    first, second = blocks[0]
    other_subject = dataclasses.replace(second, session_id="s2", subject="other", context=2)
    # Row 3 belongs to no block and keeps its own row.
    assert subject_rows([first, second, other_subject], 4).tolist() == [0, 0, 2, 3]


def test_distillation_with_context_per_subject_trains_one_row_per_subject(profile, blocks) -> None:
    train, val, _ = blocks
    context = init_distributed("cpu")
    teacher, _ = pretrain(
        train, val, profile, PretrainConfig(size=SIZES["tiny"], loop=_loop(5)), context, n_sessions=2
    )
    teacher_rows = teacher.tokenizer.session_table()(torch.arange(2)).clone()
    config = DistillConfig(size=SIZES["tiny"], window_stride=5, context_per_subject=True, loop=_loop(20))
    student, _ = distill(teacher, train, val, profile, config, context)

    torch.manual_seed(config.loop.seed)
    untrained = new_encoder(profile, "lfp", 5, 2, config.size, config.context)
    rows = student.tokenizer.session_table()(torch.arange(2))
    # Both sessions are one subject's: they end with the one row that was trained (row 0).
    assert torch.equal(rows[0], rows[1])
    assert not torch.allclose(rows[0], untrained.tokenizer.session_table()(torch.tensor([0]))[0])
    assert torch.equal(teacher.tokenizer.session_table()(torch.arange(2)), teacher_rows)


@pytest.mark.parametrize("context_kind", ["embedding", "stitching"])
def test_pretraining_with_context_per_subject_trains_one_row_per_subject(
    profile, blocks, context_kind: str
) -> None:
    train, val, _ = blocks
    config = PretrainConfig(
        context=context_kind,
        size=SIZES["tiny"],
        window_stride=5,
        context_per_subject=True,
        loop=_loop(20),
    )
    encoder, _ = pretrain(train, val, profile, config, init_distributed("cpu"), n_sessions=3)

    torch.manual_seed(config.loop.seed)
    untrained = new_encoder(profile, "spikes", 1, 3, config.size, config.context)
    table, untrained_table = encoder.tokenizer.session_table(), untrained.tokenizer.session_table()
    rows, untrained_rows = table(torch.arange(3)), untrained_table(torch.arange(3))
    # Both sessions are one subject's: they end with the one row that was trained (row 0).
    assert torch.equal(rows[0], rows[1])
    trained_shift = (rows[0] - untrained_rows[0]).abs().max()
    assert trained_shift > 0
    # Row 2 belongs to no session: only weight decay moved it, not row 0's copy.
    assert (rows[2] - untrained_rows[2]).abs().max() < 0.1 * trained_shift


def test_head_is_fit_on_train_and_scored_on_later_blocks(profile, blocks) -> None:
    train, val, test = blocks
    config = PretrainConfig(size=SIZES["tiny"], window_stride=5, loop=_loop(20))
    encoder, _ = pretrain(train, val, profile, config, init_distributed("cpu"), n_sessions=2)
    fitted = fit_head(encoder, train, val, HeadConfig(alphas=(1.0, 100.0)))
    assert fitted.alpha in (1.0, 100.0)
    test_r2 = score_decoder(fitted.decoder, test)
    assert test_r2.shape == (2,)
    # Spikes carry the velocity almost noise-free here: even a barely trained encoder decodes it.
    assert np.mean(test_r2) > 0.3


def test_unseen_session_row_starts_at_the_subject_mean(profile) -> None:
    encoder = new_encoder(profile, "spikes", 1, 3, SIZES["tiny"])
    table = encoder.tokenizer.session_table()
    before = table(torch.arange(3)).detach().clone()
    row, (new_row,) = add_unseen_session(encoder, [0, 2])
    assert row == 3 and new_row.requires_grad
    after = table(torch.arange(4)).detach()
    assert torch.equal(after[:3], before)  # old sessions keep their context
    assert torch.allclose(after[3], before[[0, 2]].mean(dim=0))


def test_finetuning_lowers_the_supervised_loss_of_the_ridge_start(profile, blocks) -> None:
    train, val, _ = blocks
    context = init_distributed("cpu")
    encoder = new_encoder(profile, "lfp", 5, 2, SIZES["tiny"])
    normalizer = fit_lfp_normalization(train)
    encoder.set_normalization(normalizer.mean, normalizer.std)
    start = fit_head(encoder, train, val, HeadConfig()).decoder
    config = FinetuneConfig(context_bins=10, window_stride=5, loop=_loop(60))
    target_std = np.concatenate([b.kinematics for b in train]).std(axis=0)
    batch = WindowSet(val, encoder.config.window_bins, 5).batch(np.arange(8))

    def val_loss() -> float:
        with torch.no_grad():
            return float(KinematicsLoss(start, target_std, config.context_bins)(batch))

    before_loss, before_r2 = val_loss(), np.mean(score_decoder(start, val))
    result = finetune(
        start, train, lambda: float(np.mean(score_decoder(start, val))), config, context=context
    )
    assert len(result.state.losses) == 60 and not start.training
    assert val_loss() < 0.9 * before_loss
    assert np.mean(score_decoder(start, val)) > before_r2


def test_head_then_finetune_trains_the_given_encoder_past_its_ridge_start(profile, blocks) -> None:
    train, val, _ = blocks
    encoder = new_encoder(profile, "spikes", 1, 2, SIZES["tiny"])
    ridge_only = np.mean(fit_head(encoder, train, val, HeadConfig()).val_r2)
    config = FinetuneConfig(context_bins=10, window_stride=5, loop=_loop(60))
    decoder = head_then_finetune(encoder, train, val, config, init_distributed("cpu"))
    assert decoder.encoder is encoder and not decoder.training
    assert np.mean(score_decoder(decoder, val)) > ridge_only


def test_concat_pooling_keeps_every_token_and_averages_to_the_mean(profile, blocks) -> None:
    train, _, _ = blocks
    encoder = new_encoder(profile, "spikes", 1, 2, SIZES["tiny"])
    block = train[0]
    mean = encode_bins(encoder, block.spikes, block.context)
    concat = encode_bins(encoder, block.spikes, block.context, pool="concat")
    n, d = encoder.n_tokens, encoder.config.d_model
    assert concat.shape == (block.n_bins, n * d)
    np.testing.assert_allclose(concat.reshape(-1, n, d).mean(axis=1), mean, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pool"):
        encode_bins(encoder, block.spikes, block.context, pool="max")
