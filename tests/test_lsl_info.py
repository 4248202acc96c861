"""Stream descriptions made by the LSL layer: identity, described channels, extra fields, markers."""

from __future__ import annotations

import numpy as np
import pytest

from rtbci.lsl import require_pylsl
from rtbci.lsl.info import (
    channel_format_for,
    described_channel_labels,
    make_marker_info,
    make_stream_info,
    numpy_dtype_for,
)


def _channels(info) -> list[dict[str, str]]:
    channel = info.desc().child("channels").child("channel")
    found = []
    while not channel.empty():
        fields, child = {}, channel.first_child()
        while not child.empty():
            fields[child.name()] = child.child_value()
            child = child.next_sibling()
        found.append(fields)
        channel = channel.next_sibling()
    return found


def test_a_stream_info_describes_its_channels_and_extra_fields_in_order():
    info = make_stream_info(
        "rig-lfp",
        "LFP",
        "rig-lfp-S0",
        ["a", "b"],
        "microvolts",
        1000,
        "float32",
        description={"manufacturer": "lab", "subject": "S0"},
        channel_fields={"type": ["lfp", "lfp"], "region": ["M1", ""]},
    )
    assert (info.name(), info.type(), info.source_id()) == ("rig-lfp", "LFP", "rig-lfp-S0")
    assert (info.channel_count(), info.nominal_srate()) == (2, 1000.0)
    assert info.desc().child_value("manufacturer") == "lab"
    assert info.desc().child_value("subject") == "S0"
    assert _channels(info) == [
        {"label": "a", "unit": "microvolts", "type": "lfp", "region": "M1"},
        {"label": "b", "unit": "microvolts", "type": "lfp"},  # an empty value is left out
    ]
    assert described_channel_labels(info, 2, ["x", "y"]) == ["a", "b"]
    assert described_channel_labels(info, 3, ["x", "y", "z"]) == ["x", "y", "z"]


def test_a_field_or_unit_per_channel_must_cover_every_channel():
    with pytest.raises(ValueError, match="2 channel labels but 1 units"):
        make_stream_info("s", "LFP", "s", ["a", "b"], ["uV"], 1000, "float32")
    with pytest.raises(ValueError, match="2 channel labels but 1 region values"):
        make_stream_info("s", "LFP", "s", ["a", "b"], "uV", 1e3, "float32", channel_fields={"region": ["M1"]})


def test_a_marker_stream_is_one_irregular_string_channel():
    pylsl = require_pylsl()
    info = make_marker_info("rig-markers", "rig-markers-S0", {"manufacturer": "lab"})
    assert (info.type(), info.channel_count(), info.nominal_srate()) == ("Markers", 1, pylsl.IRREGULAR_RATE)
    assert info.channel_format() == pylsl.cf_string
    assert info.desc().child_value("manufacturer") == "lab"
    assert info.desc().child("channels").empty()


def test_channel_formats_carry_numpy_dtypes_without_loss():
    pylsl = require_pylsl()
    assert channel_format_for(np.dtype(np.uint8)) == "int16"  # LSL has no unsigned types
    assert channel_format_for(np.dtype(np.float64)) == "double64"
    assert channel_format_for(np.dtype("U8")) == "string"
    assert numpy_dtype_for(pylsl.cf_int16) == np.int16
    with pytest.raises(ValueError, match="not numeric"):
        numpy_dtype_for(pylsl.cf_string)
