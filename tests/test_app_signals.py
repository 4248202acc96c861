"""The dashboard's signal views (pytest-qt, offscreen): channel states by the channel check's rule, the
decoder's switched-off channels read from its artifact, and the Signals tab drawing the live engine's
records of the simulated rig at 25 frames a second or more, with a screenshot saved."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from app_fixtures import write_unique_profile
from PySide6 import QtGui

from apps.decoder.channels import ChannelState, DecoderChannels, channel_states, read_decoder_channels
from apps.decoder.main_window import DecoderWindow, EngineState
from apps.decoder.signal_panel import MAX_TRACES, SPIKE_RATE, SignalPanel, parse_channels
from rtbci.demo import DEMO_PROFILE
from rtbci.models.checkpoint import build_decoder, load_checkpoint, save_checkpoint
from rtbci.profile import load_profile
from rtbci.runtime.export import export_artifact
from rtbci.sim.rig_process import SimulatedRig

ARTIFACTS = Path(os.environ.get("RTBCI_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))
SWITCHED_OFF = (5, 17)


def test_channel_numbers_are_parsed_or_refused():
    assert parse_channels("3, 1 3,40", 96) == [3, 1, 40]
    for text in ("", "96", "-1", "a", " ".join(str(c) for c in range(MAX_TRACES + 1))):
        with pytest.raises(ValueError):
            parse_channels(text, 96)


def test_channel_states_follow_the_channel_checks_rule():
    rng = np.random.default_rng(0)
    n_channels, n_features = 6, 3
    mean, std = np.zeros((n_channels, n_features)), np.ones((n_channels, n_features))
    live = np.ones(n_channels, dtype=bool)
    live[4] = False
    channels = DecoderChannels("lfp", ["lmp", "a", "b"], mean, std, live)
    block = rng.normal(0.0, 1.0, (250, n_channels, n_features))
    block[:, 1, 2] -= 6.0  # band power at the amplifier floor
    block[:, 2, 1] += 6.0  # noise
    block[:, 3] = 0.5  # nothing changes
    block[:, 4, 0] += 9.0  # switched off: whatever it reads
    states = channel_states(block, channels)
    expected = [ChannelState.OK, ChannelState.DEAD, ChannelState.NOISY, ChannelState.DEAD]
    assert states.tolist() == [*expected, ChannelState.OFF, ChannelState.OK]


@pytest.fixture(scope="module")
def demo_with_channels_off(tmp_path_factory) -> Path:
    """The demo decoder, re-exported with channels :data:`SWITCHED_OFF` switched off (as the channel
    check does on a new session); returns the artifact folder."""
    folder = tmp_path_factory.mktemp("channels-off")
    checkpoint = load_checkpoint(load_profile(DEMO_PROFILE).artifact_dir() / "decoder.pt")
    decoder = build_decoder(checkpoint)
    with torch.no_grad():
        decoder.encoder.tokenizer.channel_live[list(SWITCHED_OFF)] = 0.0
    checkpoint.state_dict = decoder.state_dict()
    save_checkpoint(folder / "decoder.ckpt", checkpoint)
    export_artifact(folder / "decoder.ckpt", folder / "artifact", parity_steps=10)
    return folder / "artifact"


def test_the_switched_off_channels_come_from_the_artifact(tmp_path, demo_with_channels_off):
    channels = read_decoder_channels(load_profile(write_unique_profile(tmp_path, demo_with_channels_off)))
    assert np.flatnonzero(~channels.live).tolist() == list(SWITCHED_OFF)
    assert channels.feature_names == ["lmp", "8-15Hz", "15-30Hz", "30-80Hz", "80-200Hz"]
    assert channels.mean.shape == channels.std.shape == (96, 5)
    demo = read_decoder_channels(load_profile(DEMO_PROFILE))
    assert demo.live.all(), "an artifact from before the channel check has every channel live"


def _distinct_colors(image: QtGui.QImage, step: int = 4) -> int:
    return len(
        {image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)}
    )


@pytest.mark.slow
def test_the_signals_tab_draws_the_live_records_at_25_fps(qtbot, tmp_path, demo_with_channels_off):
    profile_path = write_unique_profile(tmp_path, demo_with_channels_off)
    with SimulatedRig(load_profile(profile_path)):
        window = DecoderWindow([profile_path], record_dir=tmp_path, lower_priority=False)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        window.connect_engine()
        qtbot.waitUntil(lambda: window.state is EngineState.RUNNING, timeout=120_000)
        qtbot.waitUntil(lambda: window.feed.bins >= 100, timeout=30_000)
        panel = window.signals  # the panels are built anew for the profile the engine starts on
        assert isinstance(panel, SignalPanel) and not panel.isVisible(), "the Latency tab comes first"
        assert panel.frames == 0, "a hidden tab is not redrawn"

        window.lower_tabs.setCurrentWidget(panel)
        qtbot.waitUntil(lambda: panel.frames > 0, timeout=5_000)
        frames, started = panel.frames, time.monotonic()
        qtbot.wait(3000)
        fps = (panel.frames - frames) / (time.monotonic() - started)
        assert fps >= 25.0, f"the signal views drew {fps:.1f} frames a second"

        grid = panel.image.image  # (columns, rows), one cell per channel row by row
        values = grid.T.reshape(-1)[:96]
        assert np.isfinite(values).all() and np.ptp(values) > 0, "every channel's cell has a value"
        assert np.isnan(grid.T.reshape(-1)[96:]).all(), "cells past the last channel stay empty"
        # The decoder reads 0 from a switched-off channel, but the map shows what the electrode reads.
        assert not np.allclose(values[list(SWITCHED_OFF)], 0.0)
        for lane, channel in enumerate(panel.traced):
            x, y = panel.trace_curves[lane].getData()
            assert len(x) >= 100 and x[-1] == 0.0 and np.ptp(y) > 0, f"trace of channel {channel}"
            assert np.all(np.abs(y - 8.0 * lane) <= 4.0)
        assert "not raw LFP" in panel.traces.getPlotItem().titleLabel.text

        marked = {spot.data(): spot.symbol() for spot in panel.marks.points()}
        assert {channel for channel, symbol in marked.items() if symbol == "x"} == set(SWITCHED_OFF)
        assert [int(c) for c in np.flatnonzero(panel.states == ChannelState.OFF)] == list(SWITCHED_OFF)
        summary = panel.summary.text()
        assert "switched off 2 (5, 17)" in summary
        assert "NaN values replaced (per stream): spikes 0, lfp 0" in summary
        assert "decode thread default" in window.health.engine_line.text(), "not prioritized in tests"

        panel.channel_edit.setText("1, 95")
        panel.channel_edit.editingFinished.emit()
        qtbot.wait(200)
        assert panel.traced == [1, 95]
        left_over, _ = panel.trace_curves[2].getData()
        assert left_over is None or len(left_over) == 0, "a lane no longer chosen is cleared"

        image = window.grab().toImage()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert image.save(str(ARTIFACTS / "decoder_signals.png"))
        assert _distinct_colors(panel.grab().toImage()) > 20, "the signal views look blank"

        # The records carry each bin's spike counts beside the LFP features: the map shows their rate.
        panel.feature_box.setCurrentText(SPIKE_RATE)
        qtbot.wait(300)
        panel.refresh(window.feed)  # drawn from the feed as it is now
        counts = window.feed.spike_counts.values
        assert counts.shape[1] == 96 and (counts >= 0).all() and np.array_equal(counts, np.round(counts))
        assert counts.sum() > 0
        rates = panel.image.image.T.reshape(-1)[:96]
        assert rates.max() > 0
        np.testing.assert_allclose(rates, counts[-50:].mean(axis=0) * 50.0)  # 1 s of 20 ms bins
        assert panel.colorbar.getAxis("left").labelText == "spikes/s"
        assert not panel.colorbar.getAxis("right").labelText, "one label only"
        assert window.grab().toImage().save(str(ARTIFACTS / "decoder_signals_rates.png"))
        window.close()
