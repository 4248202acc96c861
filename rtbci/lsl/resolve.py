"""Finding the profile's LSL streams, and checking them against the profile on connect."""

from __future__ import annotations

from rtbci.errors import UserError
from rtbci.lsl import require_pylsl
from rtbci.profile import StreamSpec

__all__ = [
    "StreamMismatchError",
    "StreamMissingError",
    "check_stream",
    "describe",
    "predicate_for",
    "resolve_stream",
]

# Channel formats the engine can pull into numpy buffers (not string, not undefined).
_NUMERIC_FORMATS = ("float32", "double64", "int8", "int16", "int32", "int64")


class StreamMissingError(UserError):
    """A stream the profile needs is not visible on the network."""


class StreamMismatchError(UserError):
    """A stream was found but its channel count, rate or format is not what the profile says."""


def predicate_for(spec: StreamSpec) -> str:
    """The XPath predicate that matches every identifier set in ``spec``.

    Examples
    --------
    >>> predicate_for(StreamSpec(channels=96, rate=1000.0, name="lfp", type="LFP"))
    "name='lfp' and type='LFP'"
    """
    terms = [
        f"{field}='{value}'"
        for field, value in (("name", spec.name), ("type", spec.type), ("source_id", spec.source_id))
        if value
    ]
    return " and ".join(terms)


def describe(info) -> str:
    """One line naming a stream: name, type, source_id, channels, rate, format, host."""
    pylsl = require_pylsl()
    fmt = pylsl.lib.fmt2string[info.channel_format()]
    return (
        f"name={info.name()!r} type={info.type()!r} source_id={info.source_id()!r} "
        f"channels={info.channel_count()} rate={info.nominal_srate():g} format={fmt} host={info.hostname()!r}"
    )


def resolve_stream(spec: StreamSpec, role: str, timeout: float):
    """Find the one stream that matches ``spec``.

    Parameters
    ----------
    spec
        The profile's description of the stream.
    role
        What the stream is for (``"spikes"``, ``"lfp"``); used in messages.
    timeout
        Seconds to look for it.

    Returns
    -------
    pylsl.StreamInfo

    Raises
    ------
    StreamMissingError
        If nothing matches within the timeout; the message lists every stream that is visible.
    """
    pylsl = require_pylsl()
    predicate = predicate_for(spec)
    found = pylsl.resolve_bypred(predicate, minimum=1, timeout=timeout)
    if not found:
        visible = pylsl.resolve_streams(wait_time=1.0)
        listing = "\n".join(f"  {describe(info)}" for info in visible) or "  (no LSL streams are visible)"
        raise StreamMissingError(
            f"no LSL stream for {role} matching [{predicate}] within {timeout:g} s. "
            f"Visible streams:\n{listing}"
        )
    # Several matches (e.g. a stale outlet and a new one) are ordered by creation time: take the newest.
    return max(found, key=lambda info: info.created_at())


def check_stream(info, spec: StreamSpec, role: str) -> None:
    """Check a found stream's channel count, rate and format against the profile.

    Raises
    ------
    StreamMismatchError
        Naming the stream, the field, what the profile expects and what the stream has.
    """
    pylsl = require_pylsl()
    problems = []
    if info.channel_count() != spec.channels:
        problems.append(f"{info.channel_count()} channels, the profile expects {spec.channels}")
    if info.nominal_srate() <= 0:
        problems.append(
            "an irregular rate (nominal rate 0); the engine bins by nominal rate and needs a regular stream"
        )
    elif abs(info.nominal_srate() - spec.rate) > 1e-6 * max(spec.rate, 1.0):
        problems.append(f"a rate of {info.nominal_srate():g} Hz, the profile expects {spec.rate:g} Hz")
    fmt = pylsl.lib.fmt2string[info.channel_format()]
    if fmt not in _NUMERIC_FORMATS:
        problems.append(f"channel format {fmt!r}, the engine needs one of {', '.join(_NUMERIC_FORMATS)}")
    if problems:
        raise StreamMismatchError(
            f"{role} stream {info.name()!r} (source_id {info.source_id()!r}) has " + "; and ".join(problems)
        )
