"""``rtbci simulate`` to files: names, contents and errors."""

from __future__ import annotations

from rtbci.cli import main
from rtbci.io.store import read_session


def test_simulate_writes_one_named_file_per_subject_and_session(tmp_path, capsys) -> None:
    out = tmp_path / "sim"
    code = main(
        [
            "simulate",
            "--out",
            str(out),
            "--subjects",
            "2",
            "--sessions",
            "2",
            "--minutes",
            "0.02",
            "--seed",
            "4",
        ]
    )
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["sim-S0-d00.h5", "sim-S0-d01.h5", "sim-S1-d00.h5", "sim-S1-d01.h5"]
    session = read_session(out / "sim-S1-d01.h5")
    assert session.meta.subject == "sim-S1" and session.meta.session_id == "sim-S1-d01"
    assert session.meta.provenance["seed"] == "4"
    assert session.streams["lfp"].data.shape == (1200, 96)
    output = capsys.readouterr().out
    assert "wrote 4 session file(s) of 0.02 min:" in output
    assert all(f"  {out / name}\n" in output for name in names)


def test_simulate_without_a_destination_says_what_to_give(capsys) -> None:
    assert main(["simulate"]) == 2
    assert "--out DIR" in capsys.readouterr().err


def test_simulate_rejects_non_positive_sizes(tmp_path, capsys) -> None:
    assert main(["simulate", "--out", str(tmp_path), "--minutes", "0"]) == 2
    assert "--minutes must be > 0" in capsys.readouterr().err


def test_live_needs_a_valid_profile(tmp_path, capsys) -> None:
    assert main(["simulate", "--lsl"]) == 2
    assert "--profile" in capsys.readouterr().err
    missing = tmp_path / "nope.toml"
    assert main(["simulate", "--lsl", "--profile", str(missing)]) == 2
    assert "nope.toml" in capsys.readouterr().err
