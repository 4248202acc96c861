"""describe_decoder: the line that says which profile and decoder a run runs."""

from __future__ import annotations

import pytest

from rtbci.home import SHIPPED_PROFILES
from rtbci.profile import ProfileError, load_profile
from rtbci.provenance import describe_decoder


def test_the_bundled_demo_decoder_says_bundled(monkeypatch):
    monkeypatch.chdir(SHIPPED_PROFILES.parent)
    profile = load_profile(SHIPPED_PROFILES / "demo.toml")
    short = profile.model.sha256[:12]
    assert describe_decoder(profile) == (
        f"profile profiles/demo.toml: decoder profiles/models/demo (sha256 {short}), bundled"
    )


def test_a_calibrated_decoder_says_on_what_and_when(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = SHIPPED_PROFILES / "demo.toml"
    text = demo.read_text().replace(
        'artifact = "models/demo"', f'artifact = "{SHIPPED_PROFILES / "models" / "demo"}"'
    )
    text = text.replace('input = "lfp"', 'input = "lfp"\ncalibrated = "2026-12-06T03:20:00+00:00"')
    path = tmp_path / "lab.toml"
    path.write_text(text)
    line = describe_decoder(load_profile(path))
    assert line.startswith("profile lab.toml: decoder ")
    assert line.endswith(" at 2026-12-06T03:20:00+00:00") and ", calibrated on sim-S0-d" in line


def test_a_profile_without_a_model_is_a_profile_error(tmp_path):
    text = (SHIPPED_PROFILES / "demo.toml").read_text()
    path = tmp_path / "nomodel.toml"
    path.write_text(text[: text.index("[model]")])
    with pytest.raises(ProfileError, match=r"no \[model\] section"):
        describe_decoder(load_profile(path))
