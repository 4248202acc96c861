"""The one Session file format: HDF5 through h5py.

Layout::

    /                       attrs: format, format_version, subject, session_id,
                                   task, date, channel_regions (JSON),
                                   provenance (JSON), bin_epoch (when the engine recorded it)
    /streams/<name>/data         (n_samples, n_channels), chunked, compressed
    /streams/<name>/timestamps   (n_samples,) float64, LSL clock
    /streams/<name>/chunk_sizes  (n_chunks,) int64, the original chunking
                            attrs: kind, rate, channel_labels (JSON), units

Live recordings go through :class:`SessionWriter`, which writes in HDF5's
single-writer/multiple-reader (SWMR) mode. SWMR orders its writes so that the
file on disk is consistent after every flush; a writer killed with SIGKILL
leaves a file that opens (read-only, in SWMR mode) with everything up to the
last flush. :func:`read_session` does that recovery by itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import h5py
import numpy as np
from tqdm import tqdm

from rtbci.errors import UserError
from rtbci.io.session import Session, SessionMeta, Stream, StreamKind

__all__ = [
    "SessionFileError",
    "SessionWriter",
    "StreamInfo",
    "StreamLayout",
    "read_session",
    "read_session_info",
    "write_session",
]

FORMAT_NAME = "rtbci-session"
FORMAT_VERSION = 1
_STRING = h5py.string_dtype("utf-8")
_ROWS_PER_CHUNK = 4096
_ROWS_PER_WRITE = 64 * _ROWS_PER_CHUNK
T = TypeVar("T")


class SessionFileError(UserError, OSError):
    """A Session file is missing, is not a Session file, or is damaged.

    A :class:`~rtbci.errors.UserError`, so the CLI reports it as one message.
    """


def _dataset_kwargs(n_channels: int, dtype: np.dtype) -> dict:
    kwargs: dict = {"chunks": (_ROWS_PER_CHUNK, max(n_channels, 1))}
    if dtype != _STRING:
        # Shuffle + gzip level 1: about 3x smaller for counts, and fast enough
        # to keep up with a live recording on one core.
        kwargs.update(compression="gzip", compression_opts=1, shuffle=True)
    return kwargs


def _stream_dtype(data: np.ndarray) -> np.dtype:
    if data.dtype.kind in "OUS":
        return _STRING
    return data.dtype


def _write_root_attrs(handle: h5py.File, meta: SessionMeta) -> None:
    handle.attrs["format"] = FORMAT_NAME
    handle.attrs["format_version"] = FORMAT_VERSION
    handle.attrs["subject"] = meta.subject
    handle.attrs["session_id"] = meta.session_id
    handle.attrs["task"] = meta.task
    handle.attrs["date"] = meta.date
    handle.attrs["channel_regions"] = json.dumps(meta.channel_regions)
    handle.attrs["provenance"] = json.dumps(meta.provenance)
    if meta.bin_epoch is not None:
        handle.attrs["bin_epoch"] = float(meta.bin_epoch)


def _create_stream_group(
    streams: h5py.Group,
    name: str,
    kind: StreamKind,
    n_channels: int,
    dtype: np.dtype,
    rate: float,
    channel_labels: list[str],
    units: str,
    n_samples: int = 0,
) -> h5py.Group:
    group = streams.create_group(name)
    group.attrs["kind"] = str(StreamKind(kind))
    group.attrs["rate"] = float(rate)
    group.attrs["channel_labels"] = json.dumps(list(channel_labels))
    group.attrs["units"] = units
    group.create_dataset(
        "data",
        shape=(n_samples, n_channels),
        maxshape=(None, n_channels),
        dtype=dtype,
        **_dataset_kwargs(n_channels, dtype),
    )
    group.create_dataset(
        "timestamps",
        shape=(n_samples,),
        maxshape=(None,),
        dtype=np.float64,
        chunks=(_ROWS_PER_CHUNK,),
        compression="gzip",
        compression_opts=1,
    )
    group.create_dataset("chunk_sizes", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
    return group


def write_session(path: str | Path, session: Session, progress: bool = False) -> None:
    """Write a whole Session to a new HDF5 file.

    Parameters
    ----------
    path
        Destination; an existing file is replaced.
    session
        What to write.
    progress
        Show a tqdm progress bar over the samples written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    total = sum(stream.n_samples for stream in session.streams.values())
    with (
        h5py.File(path, "w") as handle,
        tqdm(total=total, unit="sample", desc=f"writing {path.name}", disable=not progress) as bar,
    ):
        _write_root_attrs(handle, session.meta)
        streams = handle.create_group("streams")
        for stream in session.streams.values():
            dtype = _stream_dtype(stream.data)
            group = _create_stream_group(
                streams,
                stream.name,
                stream.kind,
                stream.n_channels,
                dtype,
                stream.rate,
                stream.channel_labels,
                stream.units,
                n_samples=stream.n_samples,
            )
            # Whole HDF5 chunks at a time, so the bar moves on long streams.
            for first in range(0, stream.n_samples, _ROWS_PER_WRITE):
                rows = slice(first, min(first + _ROWS_PER_WRITE, stream.n_samples))
                values = stream.data[rows]
                group["data"][rows] = values.astype(str) if dtype == _STRING else values
                group["timestamps"][rows] = stream.timestamps[rows]
                bar.update(rows.stop - rows.start)
            if stream.chunk_sizes is not None:
                group["chunk_sizes"].resize((len(stream.chunk_sizes),))
                group["chunk_sizes"][...] = stream.chunk_sizes


def _open_for_reading(path: Path) -> tuple[h5py.File, bool]:
    """Open read-only; fall back to SWMR for a recording that was not closed."""
    if not path.exists():
        raise SessionFileError(f"{path}: no such file")
    # h5py raises OSError, or RuntimeError for a damaged superblock.
    try:
        return h5py.File(path, "r"), False
    except (OSError, RuntimeError) as first_error:
        try:
            return h5py.File(path, "r", swmr=True), True
        except (OSError, RuntimeError):
            raise SessionFileError(f"{path}: cannot be opened as HDF5 ({first_error})") from None


def _n_rows(group: h5py.Group) -> int:
    # A recording killed between appending data and timestamps may have one
    # longer than the other; keep the rows that have both.
    return min(group["data"].shape[0], group["timestamps"].shape[0])


def _is_string(dataset: h5py.Dataset) -> bool:
    return dataset.dtype.kind == "O" or h5py.check_string_dtype(dataset.dtype) is not None


def _chunk_sizes(group: h5py.Group, n_rows: int) -> np.ndarray | None:
    """The recorded chunking, or None when absent or not matching the rows (a killed recording)."""
    chunk_sizes = group["chunk_sizes"][...] if "chunk_sizes" in group else None
    if chunk_sizes is not None and (len(chunk_sizes) == 0 or int(chunk_sizes.sum()) != n_rows):
        return None
    return chunk_sizes


def _read_stream(name: str, group: h5py.Group) -> Stream:
    data = group["data"]
    n_rows = _n_rows(group)
    values = data.asstr()[:n_rows].astype(str) if _is_string(data) else data[:n_rows]
    return Stream(
        name=name,
        kind=StreamKind(group.attrs["kind"]),
        data=values,
        timestamps=group["timestamps"][:n_rows],
        rate=float(group.attrs["rate"]),
        channel_labels=json.loads(group.attrs["channel_labels"]),
        units=str(group.attrs["units"]),
        chunk_sizes=_chunk_sizes(group, n_rows),
    )


@dataclass(frozen=True)
class StreamInfo:
    """A stream described without loading its samples (see :func:`read_session_info`).

    Attributes
    ----------
    name, kind, rate, channel_labels, units
        As in :class:`~rtbci.io.session.Stream`.
    n_samples, n_channels
        The shape of its data.
    dtype
        Sample type (``"str"`` for strings).
    first_timestamp, last_timestamp
        LSL times of the first and last sample; None when empty.
    n_chunks
        Number of recorded chunks; None when the chunking is unknown.
    """

    name: str
    kind: StreamKind
    n_samples: int
    n_channels: int
    rate: float
    channel_labels: list[str]
    units: str
    dtype: str
    first_timestamp: float | None
    last_timestamp: float | None
    n_chunks: int | None


def _stream_info(name: str, group: h5py.Group) -> StreamInfo:
    data, timestamps = group["data"], group["timestamps"]
    n_rows = _n_rows(group)
    chunk_sizes = _chunk_sizes(group, n_rows)
    return StreamInfo(
        name=name,
        kind=StreamKind(group.attrs["kind"]),
        n_samples=n_rows,
        n_channels=int(data.shape[1]),
        rate=float(group.attrs["rate"]),
        channel_labels=json.loads(group.attrs["channel_labels"]),
        units=str(group.attrs["units"]),
        dtype="str" if _is_string(data) else str(data.dtype),
        first_timestamp=float(timestamps[0]) if n_rows else None,
        last_timestamp=float(timestamps[n_rows - 1]) if n_rows else None,
        n_chunks=None if chunk_sizes is None else len(chunk_sizes),
    )


def _read_meta(path: Path, attrs: h5py.AttributeManager) -> SessionMeta:
    try:
        return SessionMeta(
            subject=str(attrs["subject"]),
            session_id=str(attrs["session_id"]),
            task=str(attrs["task"]),
            date=str(attrs["date"]),
            channel_regions=json.loads(attrs["channel_regions"]),
            provenance=json.loads(attrs["provenance"]),
            bin_epoch=float(attrs["bin_epoch"]) if "bin_epoch" in attrs else None,
        )
    except (KeyError, ValueError) as error:
        raise SessionFileError(f"{path}: session metadata is damaged: {error}") from error


def _open_session(path: Path) -> tuple[h5py.File, SessionMeta]:
    """Open a Session file and read its metadata (marking a recovered recording)."""
    handle, recovered = _open_for_reading(path)
    try:
        if handle.attrs.get("format") != FORMAT_NAME:
            raise SessionFileError(
                f"{path}: not an rtbci Session file (missing attribute format={FORMAT_NAME!r})"
            )
        meta = _read_meta(path, handle.attrs)
    except SessionFileError:
        handle.close()
        raise
    if recovered:
        meta.provenance["recovered"] = "recording was not closed; read up to its last flush"
    return handle, meta


def _each_stream(
    path: Path, handle: h5py.File, names: list[str], read: Callable[[str, h5py.Group], T]
) -> list[T]:
    found = []
    for name in names:
        if name not in handle["streams"]:
            raise KeyError(f"{path}: no stream named {name!r}; it has {list(handle['streams'])}")
        try:
            found.append(read(name, handle["streams"][name]))
        except (KeyError, ValueError) as error:  # a missing attribute or dataset, bad JSON, bad shapes
            raise SessionFileError(f"{path}: stream {name!r} is damaged: {error}") from error
    return found


def read_session(path: str | Path, streams: Iterable[str] | None = None) -> Session:
    """Read a Session file.

    A recording that was not closed cleanly (the recorder was killed) is read
    up to its last flush, and ``meta.provenance["recovered"]`` is set.

    Parameters
    ----------
    path
        The ``.h5`` file.
    streams
        Names of the streams to load; all of them by default.

    Returns
    -------
    Session

    Raises
    ------
    SessionFileError
        If the file is missing, is not HDF5, or is not a Session file.
    KeyError
        If a requested stream is not in the file.
    """
    path = Path(path)
    handle, meta = _open_session(path)
    with handle:
        names = list(handle["streams"]) if streams is None else list(streams)
        session = Session(meta)
        for stream in _each_stream(path, handle, names, _read_stream):
            session.add(stream)
    return session


def read_session_info(path: str | Path) -> tuple[SessionMeta, list[StreamInfo]]:
    """Read a Session file's metadata and stream shapes without loading any samples.

    Parameters
    ----------
    path
        The ``.h5`` file.

    Returns
    -------
    meta : SessionMeta
    streams : list of StreamInfo
        In the file's (alphabetical) order.

    Raises
    ------
    SessionFileError
        As :func:`read_session`.
    """
    path = Path(path)
    handle, meta = _open_session(path)
    with handle:
        return meta, _each_stream(path, handle, list(handle["streams"]), _stream_info)


class StreamLayout:
    """The shape of a stream a :class:`SessionWriter` will record.

    Parameters
    ----------
    name, kind, n_channels, rate, channel_labels, units
        As in :class:`~rtbci.io.session.Stream`.
    dtype
        Sample type; ``str`` for markers.
    """

    def __init__(
        self,
        name: str,
        kind: StreamKind | str,
        n_channels: int,
        rate: float,
        channel_labels: list[str] | None = None,
        units: str = "",
        dtype: np.dtype | type = np.float32,
    ) -> None:
        self.name = name
        self.kind = StreamKind(kind)
        self.n_channels = n_channels
        self.rate = rate
        self.channel_labels = channel_labels or [f"ch{i}" for i in range(n_channels)]
        self.units = units
        self.dtype = _STRING if dtype is str else np.dtype(dtype)
        if n_channels < 1:
            raise ValueError(f"stream {name!r}: needs at least one channel, got {n_channels}")
        if len(self.channel_labels) != n_channels:
            raise ValueError(f"stream {name!r}: {n_channels} channels but {len(self.channel_labels)} labels")


@dataclass(frozen=True)
class _StreamDatasets:
    data: h5py.Dataset
    timestamps: h5py.Dataset
    chunk_sizes: h5py.Dataset


class SessionWriter:
    """Append to a Session file while recording, flushing at least every second.

    All streams are declared up front: SWMR mode cannot add datasets later.
    Use as a context manager, or call :meth:`close`.

    Parameters
    ----------
    path
        New file to create.
    meta
        Session metadata.
    layouts
        The streams that will be recorded.
    flush_interval_s
        Longest time between flushes; a SIGKILL loses at most about this much.

    Examples
    --------
    >>> with SessionWriter(path, meta, [StreamLayout("lfp", "lfp", 96, 1000.0)]) as writer:
    ...     writer.append("lfp", chunk, chunk_timestamps)
    """

    def __init__(
        self,
        path: str | Path,
        meta: SessionMeta,
        layouts: Iterable[StreamLayout],
        flush_interval_s: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush_interval_s = flush_interval_s
        self._handle = h5py.File(self.path, "w", libver="latest")
        _write_root_attrs(self._handle, meta)
        streams = self._handle.create_group("streams")
        self._datasets: dict[str, _StreamDatasets] = {}
        self._layouts: dict[str, StreamLayout] = {}
        for layout in layouts:
            self._layouts[layout.name] = layout
            group = _create_stream_group(
                streams,
                layout.name,
                layout.kind,
                layout.n_channels,
                layout.dtype,
                layout.rate,
                layout.channel_labels,
                layout.units,
            )
            # Opened once and kept: reopening a dataset per append, and closing
            # it again, cost about 1 ms per call in SWMR mode.
            self._datasets[layout.name] = _StreamDatasets(
                group["data"], group["timestamps"], group["chunk_sizes"]
            )
        self._handle.swmr_mode = True
        self._handle.flush()
        self._last_flush = time.monotonic()
        self.samples_written: dict[str, int] = dict.fromkeys(self._layouts, 0)

    def append(
        self,
        name: str,
        data: np.ndarray,
        timestamps: np.ndarray,
        chunk_sizes: Sequence[int] | None = None,
    ) -> None:
        """Append samples to a stream, and flush if a flush is due.

        Parameters
        ----------
        name
            A stream declared at construction.
        data
            ``(n, n_channels)`` samples.
        timestamps
            ``(n,)`` LSL times.
        chunk_sizes
            The sizes of the chunks the samples arrived in, when several
            chunks are appended in one call (one write is far cheaper than
            many); by default the samples are one chunk.
        """
        datasets = self._datasets.get(name)
        if datasets is None:
            raise KeyError(f"{self.path}: stream {name!r} was not declared; declared: {list(self._layouts)}")
        layout = self._layouts[name]
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != layout.n_channels:
            raise ValueError(
                f"{self.path}: stream {name!r} expects (n, {layout.n_channels}) samples, "
                f"got shape {data.shape}"
            )
        n_new = data.shape[0]
        if len(timestamps) != n_new:
            raise ValueError(
                f"{self.path}: stream {name!r}: {n_new} samples but {len(timestamps)} timestamps"
            )
        sizes = [n_new] if chunk_sizes is None else list(chunk_sizes)
        if sum(sizes) != n_new:
            raise ValueError(f"{self.path}: stream {name!r}: chunk sizes sum to {sum(sizes)}, not {n_new}")
        if n_new:
            start = self.samples_written[name]
            for dataset, values in ((datasets.data, data), (datasets.timestamps, np.asarray(timestamps))):
                dataset.resize(start + n_new, axis=0)
                dataset[start:] = values
            first_chunk = datasets.chunk_sizes.shape[0]
            datasets.chunk_sizes.resize((first_chunk + len(sizes),))
            datasets.chunk_sizes[first_chunk:] = sizes
            self.samples_written[name] = start + n_new
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Write everything appended so far to disk."""
        self._handle.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush and close; the file then opens without recovery."""
        if self._handle.id.valid:
            self._handle.flush()
            self._handle.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
