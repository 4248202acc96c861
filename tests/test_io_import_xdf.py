"""XDF import on a file this test writes byte by byte, following the XDF 1.0 specification.

A file is the magic ``XDF:`` and then chunks: ``[NumLengthBytes][Length][Tag u16][Content]``,
where Length counts the tag and content. Tags: 1 FileHeader (XML), 2 StreamHeader
(stream id u32 + XML), 3 Samples (stream id, varlen sample count, samples), 4
ClockOffset (stream id, collection time f64, offset f64), 6 StreamFooter (stream id
+ XML). A sample is ``[TimeStampBytes 0|8][f64 stamp][values]``; string values are
each ``[varlen length][utf-8 bytes]``. All numbers little-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import numpy as np

from rtbci.io.importers import ImportOptions, import_session
from rtbci.io.session import StreamKind
from rtbci.io.store import read_session, write_session

FORMAT_OF_DTYPE = {
    "float32": "float32",
    "float64": "double64",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
}


def _varlen(value: int) -> bytes:
    if value < 1 << 8:
        return b"\x01" + struct.pack("<B", value)
    if value < 1 << 32:
        return b"\x04" + struct.pack("<I", value)
    return b"\x08" + struct.pack("<Q", value)


def _chunk(tag: int, content: bytes) -> bytes:
    body = struct.pack("<H", tag) + content
    return _varlen(len(body)) + body


@dataclass
class XdfStream:
    """One stream to write: its header fields and its samples, in chunks."""

    stream_id: int
    name: str
    type: str
    channel_format: str
    nominal_srate: float
    labels: list[str]
    units: list[str]
    chunks: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (timestamps, values)
    clock_offsets: list[tuple[float, float]] = field(default_factory=list)  # (collection time, offset)

    def header(self) -> bytes:
        channels = "".join(
            f"<channel><label>{escape(label)}</label><unit>{escape(unit)}</unit></channel>"
            for label, unit in zip(self.labels, self.units, strict=True)
        )
        xml = (
            '<?xml version="1.0"?><info>'
            f"<name>{escape(self.name)}</name><type>{escape(self.type)}</type>"
            f"<channel_count>{len(self.labels)}</channel_count><nominal_srate>{self.nominal_srate}</nominal_srate>"
            f"<channel_format>{self.channel_format}</channel_format><source_id>src{self.stream_id}</source_id>"
            f"<created_at>100.0</created_at><desc><channels>{channels}</channels></desc></info>"
        )
        return _chunk(2, struct.pack("<I", self.stream_id) + xml.encode())

    def samples(self, timestamps: np.ndarray, values: np.ndarray) -> bytes:
        body = [struct.pack("<I", self.stream_id), _varlen(len(timestamps))]
        for stamp, row in zip(timestamps, values, strict=True):
            body.append(b"\x08" + struct.pack("<d", stamp))
            if self.channel_format == "string":
                body.extend(_varlen(len(v.encode())) + v.encode() for v in row)
            else:
                body.append(np.asarray(row).astype(np.asarray(row).dtype.newbyteorder("<")).tobytes())
        return _chunk(3, b"".join(body))

    def footer(self) -> bytes:
        stamps = np.concatenate([t for t, _ in self.chunks]) if self.chunks else np.zeros(0)
        first, last = (stamps[0], stamps[-1]) if len(stamps) else (0.0, 0.0)
        offsets = "".join(
            f"<offset><time>{t}</time><value>{v}</value></offset>" for t, v in self.clock_offsets
        )
        xml = (
            '<?xml version="1.0"?><info>'
            f"<first_timestamp>{first}</first_timestamp><last_timestamp>{last}</last_timestamp>"
            f"<sample_count>{len(stamps)}</sample_count><clock_offsets>{offsets}</clock_offsets></info>"
        )
        return _chunk(6, struct.pack("<I", self.stream_id) + xml.encode())


def write_xdf(path, streams: list[XdfStream]) -> None:
    """All headers, then the sample chunks interleaved as a recorder would, then the footers."""
    parts = [b"XDF:", _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')]
    parts += [stream.header() for stream in streams]
    for round_index in range(max(len(s.chunks) for s in streams)):
        for stream in streams:
            if round_index < len(stream.chunks):
                parts.append(stream.samples(*stream.chunks[round_index]))
            if round_index < len(stream.clock_offsets):
                collected, offset = stream.clock_offsets[round_index]
                parts.append(
                    _chunk(4, struct.pack("<I", stream.stream_id) + struct.pack("<dd", collected, offset))
                )
    parts += [stream.footer() for stream in streams]
    path.write_bytes(b"".join(parts))


def _regular(stream: XdfStream, start: float, sizes: list[int], make) -> None:
    """Fill ``stream`` with chunks of regularly timestamped samples made by ``make(index)``."""
    first = 0
    for size in sizes:
        index = np.arange(first, first + size)
        stream.chunks.append((start + index / stream.nominal_srate, make(index)))
        first += size


def _streams() -> list[XdfStream]:
    rng = np.random.default_rng(11)
    lfp = XdfStream(1, "Rig LFP", "EEG", "float32", 1000.0, ["e1", "e2", "e3"], ["microvolts"] * 3)
    _regular(lfp, 5000.0, [100, 1, 250, 37], lambda i: rng.normal(size=(len(i), 3)).astype(np.float32))
    spikes = XdfStream(2, "Rig/Spikes", "SpikeCounts", "int16", 1000.0, ["s1", "s2"], ["count"] * 2)
    _regular(spikes, 5000.0005, [200, 188], lambda i: rng.poisson(0.05, (len(i), 2)).astype(np.int16))
    hand = XdfStream(3, "Hand", "MoCap", "double64", 100.0, ["x", "y"], ["m", "m"])
    _regular(hand, 5000.01, [20, 20], lambda i: rng.normal(size=(len(i), 2)))
    hand.clock_offsets = [(5000.0, -0.25), (5000.2, -0.25), (5000.4, -0.25)]
    task = XdfStream(4, "Task", "Markers", "string", 0.0, ["event"], [""])
    task.chunks = [
        (np.array([5000.1]), np.array([["target_on"]])),
        (np.array([5000.2, 5000.2]), np.array([["go ✓"], [""]])),
    ]
    codes = XdfStream(5, "Codes", "Markers", "int32", 0.0, ["code"], [""])
    codes.chunks = [(np.array([5000.05, 5000.3]), np.array([[7], [-2]], dtype=np.int32))]
    aux = XdfStream(6, "Aux", "GSR", "int8", 10.0, ["a"], ["au"])
    _regular(aux, 5000.0, [4], lambda i: i.reshape(-1, 1).astype(np.int8))
    empty = XdfStream(7, "Rig LFP", "EEG", "float32", 1000.0, ["e1"], ["microvolts"])
    return [lfp, spikes, hand, task, codes, aux, empty]


def _all(stream: XdfStream) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([t for t, _ in stream.chunks]), np.concatenate([v for _, v in stream.chunks])


def test_every_xdf_stream_is_kept_with_its_timestamps(tmp_path):
    path = tmp_path / "recording.xdf"
    written = _streams()
    lfp, spikes, hand, aux = written[0], written[1], written[2], written[5]
    write_xdf(path, written)

    session = import_session(path, ImportOptions(progress=False))

    assert sorted(session.streams) == sorted(
        ["Rig LFP", "Rig_Spikes", "Hand", "Task", "Codes", "Aux", "Rig LFP_2"]
    )
    expected_kinds = {
        "Rig LFP": StreamKind.LFP,
        "Rig_Spikes": StreamKind.SPIKES,
        "Hand": StreamKind.KINEMATICS,
        "Task": StreamKind.MARKERS,
        "Codes": StreamKind.MARKERS,
        "Aux": StreamKind.ANALOG,
        "Rig LFP_2": StreamKind.LFP,
    }
    assert {name: s.kind for name, s in session.streams.items()} == expected_kinds
    for name, source in (("Rig LFP", lfp), ("Rig_Spikes", spikes), ("Aux", aux)):
        stream = session.streams[name]
        timestamps, values = _all(source)
        assert stream.data.dtype == values.dtype
        np.testing.assert_array_equal(stream.data, values)
        np.testing.assert_array_equal(stream.timestamps, timestamps)  # no clock offsets: kept exactly
        assert stream.rate == source.nominal_srate
        assert stream.channel_labels == source.labels
        assert stream.chunk_sizes is None  # XDF does not record the LSL chunking
    assert session.streams["Rig LFP"].units == "microvolts"

    hand_stream = session.streams["Hand"]
    timestamps, values = _all(hand)
    np.testing.assert_array_equal(hand_stream.data, values)
    np.testing.assert_allclose(hand_stream.timestamps, timestamps - 0.25, rtol=0, atol=1e-9)

    assert session.streams["Task"].data.tolist() == [["target_on"], ["go ✓"], [""]]
    np.testing.assert_array_equal(session.streams["Task"].timestamps, [5000.1, 5000.2, 5000.2])
    assert session.streams["Codes"].data.tolist() == [["7"], ["-2"]]
    assert session.streams["Rig LFP_2"].n_samples == 0
    assert "Hand: type 'MoCap' -> kinematics" in session.meta.provenance["stream_kinds"]

    out = tmp_path / "recording.h5"
    write_session(out, session)
    np.testing.assert_array_equal(read_session(out).streams["Rig LFP"].data, _all(lfp)[1])


def test_gzipped_xdf_reads_the_same(tmp_path):
    import gzip

    plain, zipped = tmp_path / "r.xdf", tmp_path / "r.xdfz"
    write_xdf(plain, _streams())
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    a = import_session(plain, ImportOptions(progress=False))
    b = import_session(zipped, ImportOptions(progress=False))
    for name, stream in a.streams.items():
        np.testing.assert_array_equal(b.streams[name].data, stream.data)
        np.testing.assert_array_equal(b.streams[name].timestamps, stream.timestamps)


def test_an_rtbci_task_stream_imports_as_the_task_kind(tmp_path):
    """``rtbci task``'s stream (type CursorTask) keeps its layout, so ``featurize(labels=...)`` reads it."""
    from rtbci.task.stream import TASK_CHANNELS

    path = tmp_path / "closed-loop.xdf"
    task = XdfStream(1, "rtbci-task-demo", "CursorTask", "float32", 50.0, list(TASK_CHANNELS), [""] * 10)
    rows = np.arange(30 * len(TASK_CHANNELS), dtype=np.float32).reshape(30, -1)
    _regular(task, 7000.0, [10, 20], lambda i: rows[i])
    write_xdf(path, [task])

    stream = import_session(path, ImportOptions(progress=False)).streams["rtbci-task-demo"]

    assert stream.kind == StreamKind.TASK
    assert stream.channel_labels == list(TASK_CHANNELS) and stream.rate == 50.0
    np.testing.assert_array_equal(stream.data, rows)
    np.testing.assert_allclose(stream.timestamps, 7000.0 + np.arange(30) / 50.0)
