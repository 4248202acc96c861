"""Blackrock import (neo) checked against the independent MATLAB export of the same recording.

``l101210-001.mat`` holds, from Blackrock's own MATLAB tools: ``ts`` spike times in
30 kHz ticks, ``el`` electrode, ``un`` unit, ``lfp`` the ns2 channels as raw ADC
values (channels x samples), ``mid``/``mts`` digital input values and their ticks.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from rtbci.cli import main
from rtbci.io.importers import ImportOptions, import_session
from rtbci.io.session import StreamKind
from rtbci.io.store import read_session

NEV_TICKS_PER_S = 30_000
QUIET = ImportOptions(progress=False)

# The ns2 file is NSx spec 2.1: "NEURALSG", a 16-byte label, the sample period in
# 30 kHz ticks, the channel count, then one uint32 channel id per channel. It has
# no scaling; Cerebus analog inputs span +-5 V over +-32767 counts. (The NEV
# header's digitization factor for them, 21516 nV, is a known uint16 overflow.)
ANALOG_INPUT_UV_PER_COUNT = 5e6 / 32767


def _nsx21_header(path) -> tuple[float, np.ndarray]:
    """Sampling rate and channel ids of an NSx 2.1 file."""
    raw = path.read_bytes()
    assert raw[:8] == b"NEURALSG"
    period, n_channels = np.frombuffer(raw, "<u4", count=2, offset=24)
    return NEV_TICKS_PER_S / float(period), np.frombuffer(raw, "<u4", count=int(n_channels), offset=32)


@pytest.fixture
def fixture_set(real_data):
    folder = real_data / "blackrock_fixture"
    mat = scipy.io.loadmat(folder / "l101210-001.mat")
    return folder, {key: mat[key] for key in ("ts", "el", "un", "lfp", "mid", "mts")}


@pytest.mark.realdata
@pytest.mark.parametrize("given", ["l101210-001.nev", "l101210-001.ns2"])
def test_blackrock_matches_the_matlab_export(fixture_set, given):
    folder, mat = fixture_set
    ticks, electrodes, units = mat["ts"].ravel(), mat["el"].ravel().astype(int), mat["un"].ravel().astype(int)

    session = import_session(folder / given, QUIET)

    # Every spike, with its electrode and unit, at its exact time.
    events = session.streams["spike_events"]
    labels = session.streams["spikes"].channel_labels
    event_electrodes = np.array([int(labels[c].removeprefix("elec")) for c in events.data[:, 0]])
    ours = np.lexsort((events.data[:, 1], event_electrodes, events.timestamps))
    theirs = np.lexsort((units, electrodes, ticks))
    assert events.n_samples == len(ticks) == 14210
    np.testing.assert_array_equal(events.timestamps[ours], ticks[theirs] / NEV_TICKS_PER_S)
    np.testing.assert_array_equal(event_electrodes[ours], electrodes[theirs])
    np.testing.assert_array_equal(events.data[ours, 1], units[theirs])

    # Threshold crossings per electrode at 1 kHz: all units of an electrode merged.
    spikes = session.streams["spikes"]
    assert spikes.kind == StreamKind.SPIKES and spikes.rate == 1000.0
    assert labels == [f"elec{e}" for e in range(1, 97)]
    np.testing.assert_array_equal(spikes.timestamps, np.arange(spikes.n_samples) / 1000.0)
    ticks_per_sample = NEV_TICKS_PER_S // 1000
    for column, label in enumerate(labels):
        mine = ticks[electrodes == int(label.removeprefix("elec"))]
        expected = np.bincount(mine // ticks_per_sample, minlength=spikes.n_samples)
        np.testing.assert_array_equal(spikes.data[:, column], expected, err_msg=label)

    # The ns2 channels are analog inputs (ainp, ids > 128), in physical units from the header.
    analog = session.streams["analog"]
    rate, channel_ids = _nsx21_header(folder / "l101210-001.ns2")
    assert analog.kind == StreamKind.ANALOG and analog.rate == rate == 1000.0
    assert all(channel_ids > 128)
    assert analog.channel_labels == [f"ainp{i - 128}" for i in channel_ids]
    assert analog.units == "uV"
    raw = mat["lfp"].astype(np.uint16).view(np.int16).T.astype(np.float64)  # stored as uint16 bit patterns
    assert analog.data.shape == raw.shape
    np.testing.assert_allclose(analog.data, raw * ANALOG_INPUT_UV_PER_COUNT, rtol=1e-6)
    np.testing.assert_array_equal(np.round(analog.data / ANALOG_INPUT_UV_PER_COUNT), raw)
    np.testing.assert_array_equal(analog.timestamps, np.arange(raw.shape[0]) / rate)

    # Digital input port events become markers.
    markers = session.streams["digital_input_port"]
    assert markers.kind == StreamKind.MARKERS
    assert markers.data[:, 0].tolist() == [str(v) for v in mat["mid"].ravel()]
    np.testing.assert_array_equal(markers.timestamps, mat["mts"].ravel() / NEV_TICKS_PER_S)
    assert session.meta.date.startswith("2010-12-10")


@pytest.mark.realdata
def test_keep_units_gives_one_channel_per_unit(fixture_set):
    folder, mat = fixture_set
    pairs = {(int(e), int(u)) for e, u in zip(mat["el"].ravel(), mat["un"].ravel(), strict=True)}
    session = import_session(folder / "l101210-001.nev", ImportOptions(keep_units=True, progress=False))
    spikes = session.streams["spikes"]
    assert spikes.n_channels >= len(pairs)  # units declared in the header may have no spikes
    per_label = dict(zip(spikes.channel_labels, spikes.data.sum(axis=0), strict=True))
    for electrode, unit in pairs:
        expected = np.sum((mat["el"].ravel() == electrode) & (mat["un"].ravel() == unit))
        assert per_label[f"elec{electrode}#{unit}"] == expected


@pytest.mark.realdata
def test_rtbci_import_writes_a_session_file(fixture_set, tmp_path, capsys):
    folder, mat = fixture_set
    out = tmp_path / "blackrock.h5"
    assert main(["import", str(folder / "l101210-001.nev"), "--out", str(out), "--quiet"]) == 0
    session = read_session(out)
    assert int(session.streams["spikes"].data.sum()) == mat["ts"].size
    assert session.meta.provenance["source_format"] == "blackrock"
    # A second import does not silently replace the file.
    assert main(["import", str(folder / "l101210-001.nev"), "--out", str(out), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
