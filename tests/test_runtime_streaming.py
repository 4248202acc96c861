"""Streaming step (torch) against the full sliding-window forward; exactness far into a stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtbci.models import Decoder, Encoder, EncoderConfig, RidgeHead
from rtbci.runtime.streaming import FullWindowStep, StreamingStep


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Batch-1 steps on a shared 2-core machine: extra torch threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_decoder(seed: int = 0, **overrides) -> Decoder:
    torch.manual_seed(seed)
    base = dict(modality="lfp", n_channels=96, n_features=5, n_sessions=2, dropout=0.1)
    config = EncoderConfig(**{**base, **overrides})
    decoder = Decoder(Encoder(config), RidgeHead(config.d_model, 2))
    if config.modality == "lfp":
        decoder.encoder.set_normalization(np.linspace(-1, 1, 5), np.linspace(0.5, 2, 5))
    return decoder.eval()


def stream(step: StreamingStep, bins: torch.Tensor, state=None) -> tuple[torch.Tensor, tuple]:
    state = state if state is not None else step.initial_state()
    outputs = []
    with torch.no_grad():
        for features in bins:
            kinematics, *state = step(features, *state)
            outputs.append(kinematics)
    return torch.stack(outputs), tuple(state)


def test_500_streaming_steps_equal_full_sliding_window_forward():
    decoder = make_decoder()  # the default size: d=128, 4 layers, 4 heads, W=50 bins
    bins = torch.randn(500, 96, 5) * 2
    streamed, _ = stream(StreamingStep(decoder, session_index=1), bins)
    with torch.no_grad():
        full = decoder(bins[None], torch.tensor([1]))[0]
    assert streamed.shape == (500, 2)
    assert (streamed - full).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    ("context", "scale", "n_subjects", "conv_bins"),
    [
        ("stitching", "patch", 0, 0),
        ("embedding", "region", 2, 0),
        ("stitching", "channel", 1, 0),
        ("embedding", "patch", 0, 4),
        ("stitching", "region", 1, 6),
    ],
)
def test_streaming_equals_full_forward_for_every_tokenizer_variant(context, scale, n_subjects, conv_bins):
    regions = tuple([0] * 40 + [1] * 56)
    decoder = make_decoder(
        context=context,
        spatial_scale=scale,
        channel_regions=regions,
        n_subjects=n_subjects,
        lfp_conv_bins=conv_bins,
        d_model=32,
        n_heads=2,
        n_layers=2,
        window_bins=6,
    )
    subject = 0 if n_subjects else None
    bins = torch.randn(30, 96, 5)
    streamed, _ = stream(StreamingStep(decoder, 1, subject), bins)
    with torch.no_grad():
        subjects = torch.tensor([subject]) if n_subjects else None
        full = decoder(bins[None], torch.tensor([1]), subjects)[0]
    assert (streamed - full).abs().max().item() <= 1e-5


def test_spike_decoder_streams_counts():
    decoder = make_decoder(modality="spikes", n_features=1, window_bins=10, n_layers=2)
    bins = torch.poisson(torch.full((40, 96), 2.0))
    step = StreamingStep(decoder, session_index=0)
    assert step.input_shape == (96,)
    streamed, _ = stream(step, bins)
    with torch.no_grad():
        full = decoder(bins[None, :, :, None], torch.tensor([0]))[0]
    assert (streamed - full).abs().max().item() <= 1e-5


def test_state_has_fixed_shapes_and_no_step_counter():
    decoder = make_decoder(window_bins=8, n_layers=2)
    step = StreamingStep(decoder, 0)
    k_cache, v_cache, valid = step.initial_state()
    assert k_cache.shape == v_cache.shape == (2, 4, 7 * 3, 32)
    assert valid.shape == (7 * 3,) and valid.dtype == torch.float32
    _, (k2, v2, valid2) = stream(step, torch.randn(3, 96, 5))
    assert k2.shape == v2.shape == k_cache.shape and valid2.tolist() == [0.0] * 12 + [1.0] * 9


def test_exact_after_1_44_million_steps():
    """8 hours of 20 ms bins: outputs equal a fresh computation placed at bin 1,440,000.

    A step's output depends only on the state and the new bin, and the state holds no
    step count. So after any history, once the receptive field (L x (W-1) bins) has
    passed, the stream is bit-for-bit the stream that started fresh on those bins. And
    that fresh stream equals the full forward with rotary positions starting at
    1,440,000 (angles computed in float64), so nothing drifts with stream length.
    """
    decoder = make_decoder(window_bins=8, n_layers=2)
    step = StreamingStep(decoder, 1)
    receptive = decoder.encoder.config.n_layers * (decoder.encoder.config.window_bins - 1)
    history = torch.randn(2000, 96, 5)
    probe = torch.randn(receptive + 6, 96, 5)
    _, long_state = stream(step, history)
    long_run, _ = stream(step, probe, long_state)
    fresh_run, _ = stream(step, probe)
    assert torch.equal(long_run[receptive:], fresh_run[receptive:])
    first_bin = 1_440_000 - len(probe) + 1
    with torch.no_grad():
        far = decoder.head(
            decoder.encoder.pool(decoder.encoder(probe[None], torch.tensor([1]), first_bin=first_bin))
        )
    assert (fresh_run - far[0]).abs().max().item() <= 1e-5


def test_full_window_baseline_reads_the_newest_bin():
    decoder = make_decoder(window_bins=8, n_layers=2)
    window = torch.randn(8, 96, 5)
    with torch.no_grad():
        expected = decoder(window[None], torch.tensor([0]))[0, -1]
        assert torch.equal(FullWindowStep(decoder, 0)(window), expected)
