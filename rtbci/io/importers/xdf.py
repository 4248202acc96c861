"""XDF recordings (LabRecorder) through pyxdf.

Every stream is kept with all its samples and timestamps. pyxdf applies the
recorded clock offsets, so all streams share the recording computer's LSL clock;
timestamps are not dejittered. The stream kind comes from the stream's LSL type
(see :data:`KIND_OF_TYPE`); string streams are markers, and numeric marker
streams are stored as strings. XDF does not record how samples were chunked,
so ``chunk_sizes`` is None.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO

import numpy as np
import pyxdf
from tqdm import tqdm

from rtbci.io.importers.common import ImportOptions, SessionImportError, base_provenance, unique_name
from rtbci.io.session import Session, SessionMeta, Stream, StreamKind

__all__ = ["KIND_OF_TYPE", "XDF_SUFFIXES", "read_xdf"]

XDF_SUFFIXES = (".xdf", ".xdfz")

# LSL stream type (lower case) -> Session stream kind; any other numeric type is analog.
KIND_OF_TYPE: dict[str, StreamKind] = {
    **dict.fromkeys(("lfp", "eeg", "ecog", "seeg", "ieeg"), StreamKind.LFP),
    **dict.fromkeys(("spikecounts", "spike_counts", "spikes", "spike counts"), StreamKind.SPIKES),
    **dict.fromkeys(
        ("kinematics", "mocap", "behavior", "behaviour", "position", "velocity", "cursor"),
        StreamKind.KINEMATICS,
    ),
    **dict.fromkeys(("markers", "marker", "events"), StreamKind.MARKERS),
    "cursortask": StreamKind.TASK,  # rtbci task's stream (rtbci.task.publisher.task_stream_spec)
}


def _text(info: dict, key: str, default: str = "") -> str:
    """One text field of pyxdf's XML-as-dict (every value is a list)."""
    values = info.get(key) or [default]
    return str(values[0]) if values[0] is not None else default


def _channels(info: dict, n_channels: int) -> tuple[list[str], str]:
    """Channel labels and units from ``desc/channels``, or ``ch0..`` when absent."""
    labels, units = [f"ch{i}" for i in range(n_channels)], []
    try:
        entries = info["desc"][0]["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        return labels, ""
    if len(entries) == n_channels:
        labels = [_text(entry, "label", f"ch{i}") or f"ch{i}" for i, entry in enumerate(entries)]
        units = [_text(entry, "unit") for entry in entries]
    return labels, ", ".join(unit for unit in dict.fromkeys(units) if unit)


def _stream(raw: dict, taken: set[str]) -> tuple[Stream, str]:
    """One Session stream from a pyxdf stream dict, and how its kind was chosen."""
    info = raw["info"]
    name = _text(info, "name") or f"stream{info['stream_id']}"  # pyxdf sets stream_id as an int
    lsl_type = _text(info, "type")
    channel_format = _text(info, "channel_format")
    n_channels = int(_text(info, "channel_count", "0"))
    timestamps = np.asarray(raw["time_stamps"], dtype=np.float64).reshape(-1)
    if channel_format == "string":
        kind, why = StreamKind.MARKERS, "string stream"
        data = np.asarray(raw["time_series"], dtype=str).reshape(len(timestamps), n_channels)
    else:
        kind = KIND_OF_TYPE.get(lsl_type.lower(), StreamKind.ANALOG)
        why = f"type {lsl_type!r}"
        data = np.asarray(raw["time_series"]).reshape(len(timestamps), n_channels)
        if kind == StreamKind.MARKERS:
            data = np.asarray([[repr(v.item()) for v in row] for row in data], dtype=str).reshape(
                len(timestamps), n_channels
            )
    labels, units = _channels(info, n_channels)
    stream = Stream(
        name=unique_name(name, taken),
        kind=kind,
        data=data,
        timestamps=timestamps,
        rate=float(_text(info, "nominal_srate", "0")),
        channel_labels=labels,
        units=units,
    )
    return stream, f"{stream.name}: {why} -> {kind}"


def _load(path: Path, show: bool) -> tuple[list[dict], dict]:
    """pyxdf.load_xdf with a progress bar over the bytes read."""
    with (
        path.open("rb") as raw_file,
        tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, disable=not show) as bar,
    ):
        handle: IO[bytes] = gzip.GzipFile(fileobj=raw_file) if path.suffix == ".xdfz" else raw_file

        def on_chunk(values, stamps, info, stream_id):  # pyxdf calls this for every Samples chunk
            bar.update(raw_file.tell() - bar.n)
            return values, stamps, info

        streams, header = pyxdf.load_xdf(handle, on_chunk=on_chunk, dejitter_timestamps=False)
        bar.update(bar.total - bar.n)
    return streams, header


def read_xdf(path: Path, options: ImportOptions) -> Session:
    """Read an XDF (or gzipped ``.xdfz``) file.

    Parameters
    ----------
    path
        The file.
    options
        Conversion settings (subject, session id, progress).

    Returns
    -------
    Session

    Raises
    ------
    SessionImportError
        If pyxdf cannot read the file, or it holds no stream.
    """
    try:
        raw_streams, header = _load(path, options.progress)
    except Exception as error:  # pyxdf raises OSError, Exception, RuntimeError, XML ParseError ...
        raise SessionImportError(f"{path}: pyxdf cannot read it: {type(error).__name__}: {error}") from error
    if not raw_streams:
        raise SessionImportError(f"{path}: the XDF file holds no stream headers (is it truncated?)")
    taken: set[str] = set()
    streams, kinds = [], []
    for raw in raw_streams:
        try:
            stream, why = _stream(raw, taken)
        except (
            ValueError,
            KeyError,
            TypeError,
            IndexError,
        ) as error:  # a header field that is missing or wrong
            name = _text(raw["info"], "name", "?")
            raise SessionImportError(f"{path}: stream {name!r} is malformed: {error}") from error
        streams.append(stream)
        kinds.append(why)
    provenance = base_provenance(path, "xdf", f"pyxdf {pyxdf.__version__}")
    provenance["clock"] = "clock offsets applied (pyxdf synchronize_clocks); timestamps not dejittered"
    provenance["stream_kinds"] = "; ".join(kinds)
    file_info = (header or {}).get("info", [{}])[0] or {}
    meta = SessionMeta(
        subject=options.subject or path.stem,
        session_id=options.session_id or path.stem,
        date=_text(file_info, "datetime"),
        provenance=provenance,
    )
    session = Session(meta)
    for stream in streams:
        session.add(stream)
    return session
