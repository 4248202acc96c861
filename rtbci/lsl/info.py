"""LSL stream descriptions: channel formats and channel metadata, shared by the outlets we create."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rtbci.lsl import require_pylsl

__all__ = [
    "channel_format_for",
    "described_channel_labels",
    "make_marker_info",
    "make_stream_info",
    "numpy_dtype_for",
]

# LSL has no unsigned types: counts stored as uint8 travel as int16, which holds every value.
_FORMAT_BY_KIND_SIZE = {
    ("f", 4): "float32",
    ("f", 8): "double64",
    ("i", 1): "int8",
    ("i", 2): "int16",
    ("i", 4): "int32",
    ("i", 8): "int64",
    ("u", 1): "int16",
    ("u", 2): "int32",
    ("u", 4): "int64",
    ("b", 1): "int8",
}
_NUMPY_BY_FORMAT = {
    "float32": np.float32,
    "double64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
}


def channel_format_for(dtype: np.dtype) -> str:
    """The LSL channel format name that carries samples of ``dtype`` without loss.

    Parameters
    ----------
    dtype
        Numpy dtype of the samples; string/object dtypes map to ``"string"``.

    Returns
    -------
    str
        One of pylsl's format names (``float32``, ``double64``, ``int16``, ``string``, ...).
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "OUS":
        return "string"
    try:
        return _FORMAT_BY_KIND_SIZE[(dtype.kind, dtype.itemsize)]
    except KeyError:
        raise ValueError(f"no LSL channel format carries samples of dtype {dtype}") from None


def numpy_dtype_for(channel_format: int) -> np.dtype:
    """The numpy dtype liblsl writes for a numeric pylsl channel-format code.

    Raises
    ------
    ValueError
        For string (or unknown) formats, which cannot be pulled into numpy buffers.
    """
    pylsl = require_pylsl()
    names = {getattr(pylsl, f"cf_{name}"): name for name in _NUMPY_BY_FORMAT}
    if channel_format not in names:
        raise ValueError(f"LSL channel format code {channel_format} is not numeric")
    return np.dtype(_NUMPY_BY_FORMAT[names[channel_format]])


def make_stream_info(
    name: str,
    stream_type: str,
    source_id: str,
    channel_labels: Sequence[str],
    units: str | Sequence[str],
    rate: float,
    channel_format: str,
    description: Mapping[str, str] | None = None,
    channel_fields: Mapping[str, Sequence[str]] | None = None,
):
    """A ``pylsl.StreamInfo`` whose description names every channel and its unit.

    Parameters
    ----------
    name, stream_type, source_id
        LSL identity of the stream.
    channel_labels
        One label per channel; sets the channel count.
    units
        One unit for all channels, or one per channel.
    rate
        Nominal rate in Hz (0 for irregular streams).
    channel_format
        pylsl format name, e.g. ``"float32"``.
    description
        Values written at the top of the description, before the channels
        (e.g. ``manufacturer``, ``subject``), in order.
    channel_fields
        More per-channel values after ``label`` and ``unit``: field name -> one value per
        channel (e.g. ``type``, ``region``); an empty value is left out.

    Returns
    -------
    pylsl.StreamInfo
    """
    pylsl = require_pylsl()
    labels = list(channel_labels)
    unit_list = [units] * len(labels) if isinstance(units, str) else list(units)
    if len(unit_list) != len(labels):
        raise ValueError(f"stream {name!r}: {len(labels)} channel labels but {len(unit_list)} units")
    fields = dict(channel_fields or {})
    for field, values in fields.items():
        if len(values) != len(labels):
            raise ValueError(
                f"stream {name!r}: {len(labels)} channel labels but {len(values)} {field} values"
            )
    info = pylsl.StreamInfo(name, stream_type, len(labels), float(rate), channel_format, source_id)
    _describe(info, description)
    channels = info.desc().append_child("channels")
    for index, (label, unit) in enumerate(zip(labels, unit_list, strict=True)):
        channel = channels.append_child("channel")
        channel.append_child_value("label", label)
        channel.append_child_value("unit", unit)
        for field, values in fields.items():
            if values[index]:
                channel.append_child_value(field, values[index])
    return info


def make_marker_info(name: str, source_id: str, description: Mapping[str, str] | None = None):
    """A ``pylsl.StreamInfo`` for event markers: one string channel at an irregular rate, type ``Markers``.

    Parameters
    ----------
    name, source_id
        LSL identity of the stream.
    description
        Values written into the description, in order.

    Returns
    -------
    pylsl.StreamInfo
    """
    pylsl = require_pylsl()
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, "string", source_id)
    _describe(info, description)
    return info


def _describe(info, description: Mapping[str, str] | None) -> None:
    desc = info.desc()
    for key, value in (description or {}).items():
        desc.append_child_value(key, value)


def described_channel_labels(info, n_channels: int, fallback: Sequence[str]) -> list[str]:
    """The channel labels a stream's description gives, or ``fallback`` when they are not usable.

    Parameters
    ----------
    info
        A full ``pylsl.StreamInfo`` (from an inlet's ``info()``, which carries the description).
    n_channels
        Channels of the stream.
    fallback
        ``n_channels`` labels to use when the description names fewer channels,
        leaves a label empty, or repeats one.
    """
    channel = info.desc().child("channels").child("channel")
    labels = []
    while not channel.empty() and len(labels) < n_channels:
        labels.append(channel.child_value("label"))
        channel = channel.next_sibling()
    if len(labels) == n_channels and all(labels) and len(set(labels)) == n_channels:
        return labels
    return list(fallback)
