"""NWB import: the real fixture, and a file written here with electrodes, LFP, behavior and trials."""

from __future__ import annotations

from datetime import UTC, datetime

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO, NWBFile
from pynwb.behavior import Position, SpatialSeries
from pynwb.ecephys import LFP, ElectricalSeries
from pynwb.file import Subject

from rtbci.io.importers import ImportOptions, import_session
from rtbci.io.session import StreamKind
from rtbci.io.store import read_session, write_session

QUIET = ImportOptions(progress=False)


def _units_from_hdf5(path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Unit ids and spike times read straight from the HDF5 layout, without pynwb."""
    with h5py.File(path, "r") as handle:
        ids = handle["units/id"][:]
        flat = handle["units/spike_times"][:]
        ends = handle["units/spike_times_index"][:]
    starts = np.concatenate([[0], ends[:-1]])
    return ids, [flat[a:b] for a, b in zip(starts, ends, strict=True)]


@pytest.mark.realdata
def test_real_nwb_spike_counts_equal_numpy_histogram(real_data, tmp_path):
    path = real_data / "nwb_fixture" / "A8604-211122.nwb"
    unit_ids, spike_times = _units_from_hdf5(path)

    session = import_session(path, QUIET)

    spikes = session.streams["spikes"]
    assert spikes.kind == StreamKind.SPIKES and spikes.rate == 1000.0 and spikes.units == "count"
    assert spikes.channel_labels == [f"unit{i}" for i in unit_ids]  # no electrodes column: one per unit
    assert "one channel per unit" in session.meta.provenance["spike_counts"]
    last = max(t.max() for t in spike_times)
    n = spikes.n_samples
    assert n == int(last * 1000) + 1
    edges = np.arange(n + 1) / 1000.0
    np.testing.assert_array_equal(spikes.timestamps, edges[:-1])
    for channel, times in enumerate(spike_times):
        expected, _ = np.histogram(times, bins=edges)
        np.testing.assert_array_equal(spikes.data[:, channel], expected)
    assert int(spikes.data.sum()) == sum(len(t) for t in spike_times)

    events = session.streams["spike_events"]
    all_times = np.concatenate(spike_times)
    order = np.argsort(all_times, kind="stable")
    np.testing.assert_array_equal(events.timestamps, all_times[order])
    np.testing.assert_array_equal(
        events.data[:, 1], np.repeat(unit_ids, [len(t) for t in spike_times])[order]
    )

    assert session.meta.session_id == "A8604-211122"
    assert session.meta.date.startswith("2022-04-05")
    assert session.meta.channel_regions == ["group0_psb"] * 3
    assert session.streams["epochs"].data[:, 0].tolist() == ["epochs_start wake", "epochs_stop wake"]

    # And it survives the trip through the Session file.
    out = tmp_path / "nwb.h5"
    write_session(out, session)
    np.testing.assert_array_equal(read_session(out, ["spikes"]).streams["spikes"].data, spikes.data)


def _write_nwb(path) -> dict:
    """A small NWB file with what a BCI lab records; returns what went into it."""
    rng = np.random.default_rng(3)
    nwb = NWBFile(
        session_description="centre-out reaching",
        identifier="T1-d01",
        session_start_time=datetime(2026, 1, 2, 9, 30, tzinfo=UTC),
        subject=Subject(subject_id="T1", species="Macaca mulatta"),
    )
    device = nwb.create_device(name="utah")
    group = nwb.create_electrode_group(name="arrayA", description="96-ch", location="M1", device=device)
    for location in ("M1", "M1", "PMd", "PMd"):
        nwb.add_electrode(group=group, location=location)
    spike_times = [np.sort(rng.uniform(0.0, 5.0, size)) for size in (400, 250, 300)]
    unit_electrode = [0, 0, 2]
    for times, electrode in zip(spike_times, unit_electrode, strict=True):
        nwb.add_unit(spike_times=times, electrodes=[electrode])
    lfp_raw = rng.integers(-2000, 2000, size=(3000, 4)).astype(np.int16)
    lfp_series = ElectricalSeries(
        name="lfp_series",
        data=lfp_raw,
        electrodes=nwb.create_electrode_table_region(region=[0, 1, 2, 3], description="all"),
        starting_time=2.0,
        rate=1000.0,
        conversion=0.25e-6,  # 0.25 uV per bit
    )
    nwb.create_processing_module(name="ecephys", description="lfp").add(LFP(electrical_series=lfp_series))
    hand_t = np.cumsum(rng.uniform(0.009, 0.011, 400))
    hand_xy = rng.normal(size=(400, 2))
    hand = SpatialSeries(
        name="hand", data=hand_xy, timestamps=hand_t, reference_frame="centre", unit="meters"
    )
    nwb.create_processing_module(name="behavior", description="hand").add(Position(spatial_series=hand))
    nwb.add_trial(start_time=0.5, stop_time=1.5)
    nwb.add_trial(start_time=2.0, stop_time=3.25)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return {
        "spike_times": spike_times,
        "unit_electrode": unit_electrode,
        "lfp_raw": lfp_raw,
        "hand_t": hand_t,
        "hand_xy": hand_xy,
    }


def test_written_nwb_with_electrodes_lfp_behavior_and_trials(tmp_path):
    path = tmp_path / "rig.nwb"
    written = _write_nwb(path)

    session = import_session(path, QUIET)

    assert (session.meta.subject, session.meta.session_id, session.meta.task) == (
        "T1",
        "T1-d01",
        "centre-out reaching",
    )
    spikes = session.streams["spikes"]
    assert spikes.channel_labels == ["elec0", "elec2"]  # units merged on their electrode
    assert session.meta.channel_regions == ["M1", "PMd"]
    assert "one channel per electrode" in session.meta.provenance["spike_counts"]
    edges = np.arange(spikes.n_samples + 1) / 1000.0
    times = written["spike_times"]
    np.testing.assert_array_equal(spikes.data[:, 0], np.histogram(np.concatenate(times[:2]), edges)[0])
    np.testing.assert_array_equal(spikes.data[:, 1], np.histogram(times[2], edges)[0])

    per_unit = import_session(path, ImportOptions(keep_units=True, progress=False)).streams["spikes"]
    assert per_unit.n_channels == 3
    assert per_unit.data[:, :2].sum(axis=1).tolist() == spikes.data[:, 0].tolist()

    lfp = session.streams["lfp_series"]
    assert lfp.kind == StreamKind.LFP and lfp.units == "uV" and lfp.rate == 1000.0
    assert lfp.channel_labels == ["elec0", "elec1", "elec2", "elec3"]
    np.testing.assert_array_equal(lfp.data, (written["lfp_raw"] * 0.25).astype(np.float32))
    np.testing.assert_allclose(lfp.timestamps, 2.0 + np.arange(3000) / 1000.0, rtol=0, atol=1e-12)

    hand = session.streams["hand"]
    assert hand.kind == StreamKind.KINEMATICS and hand.units == "meters"
    assert hand.channel_labels == ["hand_x", "hand_y"]
    np.testing.assert_array_equal(hand.data, written["hand_xy"])
    np.testing.assert_array_equal(hand.timestamps, written["hand_t"])

    trials = session.streams["trials"]
    assert trials.data[:, 0].tolist() == ["trials_start", "trials_stop", "trials_start", "trials_stop"]
    np.testing.assert_array_equal(trials.timestamps, [0.5, 1.5, 2.0, 3.25])
