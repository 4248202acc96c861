"""The HDF5 Session store: bit-exact round trips, clear errors, the live writer."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rtbci.errors import UserError
from rtbci.io.session import Session, SessionMeta, Stream, StreamKind
from rtbci.io.store import (
    SessionFileError,
    SessionWriter,
    StreamLayout,
    read_session,
    read_session_info,
    write_session,
)

NUMERIC_DTYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
]


def _meta() -> SessionMeta:
    return SessionMeta(
        subject="S1 ü",
        session_id="S1-d03",
        task="centre-out",
        date="2026-11-22T00:10:00+00:00",
        channel_regions=["M1", "M1", "PMd", ""],
        provenance={"seed": "7", "tool": "test", "note": 'quotes " and \\ backslash'},
    )


def _random_data(dtype: type, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Random bytes viewed as ``dtype``: every bit pattern, NaN payloads and -0.0 included."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    raw = rng.integers(0, 256, size=shape[0] * shape[1] * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


def _assert_same_stream(read: Stream, written: Stream) -> None:
    assert read.name == written.name
    assert read.kind == written.kind
    assert read.rate == written.rate
    assert read.channel_labels == written.channel_labels
    assert read.units == written.units
    assert read.timestamps.dtype == np.float64
    assert read.timestamps.tobytes() == written.timestamps.tobytes()
    if written.data.dtype.kind in "OUS":
        assert read.data.dtype.kind == "U"
        assert read.data.shape == written.data.shape
        assert read.data.tolist() == written.data.astype(str).tolist()
    else:
        assert read.data.dtype == written.data.dtype
        assert read.data.shape == written.data.shape
        assert read.data.tobytes() == written.data.tobytes()
    if written.chunk_sizes is None:
        assert read.chunk_sizes is None
    else:
        np.testing.assert_array_equal(read.chunk_sizes, written.chunk_sizes)


def _assert_same_session(read: Session, written: Session) -> None:
    assert read.meta == written.meta
    assert sorted(read.streams) == sorted(written.streams)
    for name, stream in written.streams.items():
        _assert_same_stream(read.streams[name], stream)


def test_round_trip_is_bit_exact_for_every_dtype(tmp_path):
    rng = np.random.default_rng(0)
    session = Session(_meta())
    for dtype in NUMERIC_DTYPES:
        n = 5000  # more than one HDF5 chunk of rows
        session.add(
            Stream(
                name=f"s_{np.dtype(dtype).name}",
                kind=StreamKind.ANALOG,
                data=_random_data(dtype, (n, 3), rng),
                timestamps=np.cumsum(rng.random(n)) + 1e9,  # LSL-like large clock values
                rate=1000.0,
                channel_labels=["a", "b", "c"],
                units="uV",
                chunk_sizes=np.full(n // 10, 10),
            )
        )
    markers = np.array([["go"], ["target_on"], [""], ["réach_end ✓"], ["x" * 300]], dtype=object)
    session.add(
        Stream("markers", StreamKind.MARKERS, markers, np.array([0.5, 1.0, 1.0, 2.25, 3.0]), 0.0, ["m"])
    )
    session.add(
        Stream("empty", StreamKind.LFP, np.zeros((0, 4), np.float32), np.zeros(0), 1000.0, list("wxyz"), "uV")
    )
    path = tmp_path / "session.h5"
    write_session(path, session)
    _assert_same_session(read_session(path), session)

    meta, infos = read_session_info(path)
    assert meta == session.meta
    for info in infos:
        stream = session.streams[info.name]
        assert (info.kind, info.n_samples, info.n_channels, info.rate) == (
            stream.kind,
            stream.n_samples,
            stream.n_channels,
            stream.rate,
        )
        assert (info.channel_labels, info.units) == (stream.channel_labels, stream.units)
        assert info.dtype == ("str" if stream.kind == StreamKind.MARKERS else str(stream.data.dtype))
        if stream.n_samples:
            assert (info.first_timestamp, info.last_timestamp) == (
                stream.timestamps[0],
                stream.timestamps[-1],
            )
        else:
            assert info.first_timestamp is None
        assert info.n_chunks == (None if stream.chunk_sizes is None else len(stream.chunk_sizes))


@settings(max_examples=25, deadline=None)
@given(
    data=hnp.arrays(
        dtype=st.sampled_from([np.dtype(d) for d in NUMERIC_DTYPES]),
        shape=st.tuples(st.integers(0, 40), st.integers(1, 6)),
    ),
    rate=st.floats(0, 50_000, allow_nan=False),
    chunked=st.booleans(),
)
def test_round_trip_property(tmp_path_factory, data, rate, chunked):
    n, channels = data.shape
    chunk_sizes = np.array([n]) if chunked and n else None
    session = Session(_meta())
    session.add(
        Stream(
            "s",
            StreamKind.SPIKES,
            data,
            np.arange(n, dtype=np.float64) / 7.0,
            rate,
            [f"c{i}" for i in range(channels)],
            "count",
            chunk_sizes,
        )
    )
    path = tmp_path_factory.mktemp("prop") / "s.h5"
    write_session(path, session)
    _assert_same_session(read_session(path), session)


def test_file_is_chunked_and_compressed(tmp_path):
    session = Session(_meta())
    counts = np.zeros((20_000, 96), dtype=np.uint8)
    counts[::50] = 1
    session.add(
        Stream("spikes", "spikes", counts, np.arange(20_000) / 1000, 1000.0, [f"e{i}" for i in range(96)])
    )
    path = tmp_path / "s.h5"
    write_session(path, session)
    with h5py.File(path, "r") as handle:
        dataset = handle["streams/spikes/data"]
        assert dataset.chunks is not None
        assert dataset.compression == "gzip"
        assert dataset.id.get_storage_size() < counts.nbytes / 10


def test_a_stream_needs_a_channel():
    with pytest.raises(ValueError, match="has no channels"):
        Stream("s", "lfp", np.zeros((3, 0)), np.arange(3.0), 1.0, [])
    with pytest.raises(ValueError, match="at least one channel"):
        StreamLayout("s", "lfp", 0, 1.0)


def test_reads_only_the_streams_asked_for(tmp_path):
    session = Session(_meta())
    for name in ("a", "b"):
        session.add(Stream(name, "lfp", np.ones((3, 1), np.float32), np.arange(3.0), 1.0, ["x"]))
    path = tmp_path / "s.h5"
    write_session(path, session)
    assert list(read_session(path, streams=["b"]).streams) == ["b"]
    with pytest.raises(KeyError, match="no stream named 'c'"):
        read_session(path, streams=["c"])


def test_missing_file_and_non_session_files_give_clear_errors(tmp_path):
    with pytest.raises(SessionFileError, match="no such file"):
        read_session(tmp_path / "absent.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"this is not HDF5")
    with pytest.raises(SessionFileError, match="cannot be opened as HDF5"):
        read_session(garbage)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = 1
    with pytest.raises(SessionFileError, match="not an rtbci Session file") as caught:
        read_session(other)
    # The CLI reports UserErrors as one message; SessionFileError stays an OSError for callers.
    assert isinstance(caught.value, UserError) and isinstance(caught.value, OSError)


def test_damaged_session_files_name_what_is_wrong(tmp_path):
    session = Session(_meta())
    session.add(Stream("lfp", "lfp", np.ones((3, 1), np.float32), np.arange(3.0), 1.0, ["x"]))
    path = tmp_path / "s.h5"
    write_session(path, session)
    with h5py.File(path, "a") as handle:
        del handle["streams/lfp"].attrs["kind"]
    with pytest.raises(SessionFileError, match="stream 'lfp' is damaged"):
        read_session(path)
    with h5py.File(path, "a") as handle:
        handle.attrs["provenance"] = "{not json"
    with pytest.raises(SessionFileError, match="session metadata is damaged"):
        read_session(path)


def test_writer_appends_chunks_and_closes_to_a_normal_file(tmp_path):
    path = tmp_path / "rec.h5"
    layouts = [
        StreamLayout("lfp", "lfp", 2, 1000.0, ["a", "b"], "uV"),
        StreamLayout("markers", "markers", 1, 0.0, ["m"], dtype=str),
    ]
    chunks = [np.full((n, 2), n, np.float32) for n in (10, 1, 0, 7)]
    with SessionWriter(path, _meta(), layouts) as writer:
        start = 0
        for chunk in chunks:
            writer.append("lfp", chunk, np.arange(start, start + len(chunk)) / 1000.0)
            start += len(chunk)
        writer.append("markers", np.array([["go"], ["stop"]]), np.array([0.001, 0.017]))
        with pytest.raises(KeyError, match="was not declared"):
            writer.append("spikes", chunk, np.zeros(len(chunk)))
        with pytest.raises(ValueError, match=r"expects \(n, 2\)"):
            writer.append("lfp", np.zeros((3, 5)), np.zeros(3))
    session = read_session(path)
    assert "recovered" not in session.meta.provenance
    lfp = session.streams["lfp"]
    np.testing.assert_array_equal(lfp.data, np.concatenate(chunks))
    np.testing.assert_array_equal(lfp.timestamps, np.arange(18) / 1000.0)
    np.testing.assert_array_equal(lfp.chunk_sizes, [10, 1, 7])  # an empty chunk is not a chunk
    assert session.streams["markers"].data.tolist() == [["go"], ["stop"]]


def test_writer_keeps_the_chunking_of_several_chunks_appended_at_once(tmp_path):
    path = tmp_path / "rec.h5"
    with SessionWriter(path, _meta(), [StreamLayout("lfp", "lfp", 1, 1000.0)]) as writer:
        writer.append("lfp", np.zeros((3, 1)), np.arange(3) / 1000.0)
        writer.append("lfp", np.ones((9, 1)), np.arange(3, 12) / 1000.0, chunk_sizes=[2, 3, 4])
        with pytest.raises(ValueError, match="chunk sizes sum to 5, not 2"):
            writer.append("lfp", np.ones((2, 1)), np.zeros(2), chunk_sizes=[2, 3])
    lfp = read_session(path).streams["lfp"]
    np.testing.assert_array_equal(lfp.chunk_sizes, [3, 2, 3, 4])
    np.testing.assert_array_equal(lfp.data[:, 0], [0, 0, 0] + [1] * 9)
