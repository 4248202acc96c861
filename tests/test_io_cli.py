"""``rtbci info`` and the errors of ``rtbci import``, through the real CLI entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtbci.cli import main
from rtbci.io.session import Session, SessionMeta, Stream, StreamKind
from rtbci.io.store import write_session


@pytest.fixture
def session_file(tmp_path):
    session = Session(
        SessionMeta(
            subject="S7",
            session_id="S7-d02",
            task="centre-out",
            date="2026-11-21",
            channel_regions=["M1", "M1", "PMd"],
            provenance={"seed": "42"},
        )
    )
    n = 2001
    session.add(
        Stream(
            "spikes",
            StreamKind.SPIKES,
            np.ones((n, 3), np.uint8),
            100.0 + np.arange(n) / 1000.0,
            1000.0,
            ["e0", "e1", "e2"],
            "count",
            np.full(n // 3, 3),
        )
    )
    session.add(
        Stream(
            "markers", StreamKind.MARKERS, np.array([["go"], ["stop"]]), np.array([100.5, 101.0]), 0.0, ["m"]
        )
    )
    path = tmp_path / "s.h5"
    write_session(path, session)
    return path


def test_info_json(session_file, capsys):
    assert main(["info", str(session_file), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["file"] == str(session_file)
    assert summary["meta"]["subject"] == "S7" and summary["meta"]["session_id"] == "S7-d02"
    assert summary["meta"]["regions"] == ["M1", "PMd"]
    assert summary["meta"]["provenance"] == {"seed": "42"}
    assert summary["duration_s"] == pytest.approx(2.0)
    streams = {s["name"]: s for s in summary["streams"]}
    spikes = streams["spikes"]
    assert (spikes["kind"], spikes["channels"], spikes["samples"], spikes["dtype"]) == (
        "spikes",
        3,
        2001,
        "uint8",
    )
    assert spikes["rate"] == 1000.0 and spikes["measured_rate"] == pytest.approx(1000.0)
    assert spikes["start"] == pytest.approx(100.0) and spikes["chunks"] == 667
    assert streams["markers"]["samples"] == 2 and streams["markers"]["chunks"] is None


def test_info_text(session_file, capsys):
    assert main(["info", str(session_file)]) == 0
    text = capsys.readouterr().out
    assert "subject S7  session S7-d02  task centre-out" in text
    assert "regions: M1, PMd" in text
    spikes_row = next(line.split() for line in text.splitlines() if line.strip().startswith("spikes"))
    assert spikes_row == ["spikes", "spikes", "3", "2001", "1000.0", "1000.0", "count"]


def test_info_on_a_damaged_file_is_one_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "cannot be opened as HDF5" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("broken.nwb", "pynwb cannot read it"),
        ("broken.xdf", "pyxdf cannot read it"),
        ("broken.nev", "not a Blackrock .nev file"),
        ("broken.ns5", "not a Blackrock .ns5 file"),
    ],
)
def test_import_of_a_corrupt_file_names_it_and_the_problem(tmp_path, capsys, name, says):
    source = tmp_path / name
    source.write_bytes(b"\x00\x01garbage" * 64)
    out = tmp_path / "out.h5"
    assert main(["import", str(source), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtbci import: error: ")
    assert str(source) in err and says in err and "Traceback" not in err
    assert not out.exists()


def test_import_of_a_truncated_xdf_is_an_error(tmp_path, capsys):
    source = tmp_path / "cut.xdf"
    source.write_bytes(b"XDF:")  # the magic and nothing else: no stream at all
    assert main(["import", str(source), "--out", str(tmp_path / "o.h5"), "--quiet"]) == 2
    assert "holds no stream headers" in capsys.readouterr().err


def test_import_unknown_extension_lists_the_supported_ones(tmp_path, capsys):
    source = tmp_path / "recording.edf"
    source.write_bytes(b"0")
    assert main(["import", str(source), "--out", str(tmp_path / "o.h5")]) == 2
    err = capsys.readouterr().err
    assert str(source) in err and "unsupported extension '.edf'" in err
    for suffix in (".nwb", ".xdf", ".nev", ".ns6"):
        assert suffix in err


def test_import_missing_file(tmp_path, capsys):
    missing = tmp_path / "absent.nwb"
    assert main(["import", str(missing), "--out", str(tmp_path / "o.h5")]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
