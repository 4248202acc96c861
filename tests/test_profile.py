import tomllib
from pathlib import Path

import pytest

from rtbci.profile import ProfileError, load_profile, profile_from_dict, profile_toml, write_profile

PROFILES = Path(__file__).resolve().parents[1] / "profiles"


def _demo_dict() -> dict:
    return tomllib.loads((PROFILES / "demo.toml").read_text())


@pytest.mark.parametrize("name", sorted(p.name for p in PROFILES.glob("*.toml")))
def test_shipped_profiles_load(name):
    profile = load_profile(PROFILES / name)
    assert profile.streams.spikes.channels == profile.streams.lfp.channels
    assert profile.path == (PROFILES / name).resolve()


def test_demo_profile_describes_the_simulated_rig():
    profile = load_profile(PROFILES / "demo.toml")
    assert profile.streams.spikes.channels == 96
    assert profile.streams.spikes.rate == 1000.0
    assert profile.streams.lfp.rate == 1000.0
    assert profile.bin_s == pytest.approx(0.02)
    assert profile.channel_regions() == ["M1-array"] * 96


def test_wrong_type_names_file_and_field():
    data = _demo_dict()
    data["streams"]["spikes"]["rate"] = "1000"
    with pytest.raises(ProfileError) as info:
        profile_from_dict(data, Path("rig.toml"))
    message = str(info.value)
    assert "rig.toml" in message
    assert "streams.spikes.rate" in message
    assert "valid number" in message


def test_missing_field_and_unknown_key_are_both_reported():
    data = _demo_dict()
    del data["rig"]["subject"]
    data["features"]["bin_width"] = 20
    with pytest.raises(ProfileError) as info:
        profile_from_dict(data, Path("rig.toml"))
    message = str(info.value)
    assert "field 'rig.subject': Field required" in message
    assert "features.bin_width" in message


def test_region_outside_the_rig_is_rejected():
    data = _demo_dict()
    data["regions"] = [{"name": "PMd", "first_channel": 90, "count": 10}]
    with pytest.raises(ProfileError, match="ends at channel 99"):
        profile_from_dict(data, Path("rig.toml"))


def test_overlapping_regions_are_rejected():
    data = _demo_dict()
    data["regions"] = [
        {"name": "a", "first_channel": 0, "count": 50},
        {"name": "b", "first_channel": 40, "count": 56},
    ]
    with pytest.raises(ProfileError, match="channel 40 is in both"):
        profile_from_dict(data, Path("rig.toml"))


def test_stream_needs_an_identifier():
    data = _demo_dict()
    data["streams"]["lfp"] = {"channels": 96, "rate": 1000.0}
    with pytest.raises(ProfileError, match=r"streams\.lfp"):
        profile_from_dict(data, Path("rig.toml"))


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rig\nname=1")
    with pytest.raises(ProfileError, match=r"bad\.toml: not valid TOML"):
        load_profile(bad)
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile(tmp_path / "absent.toml")


def test_bad_artifact_hash_is_rejected():
    data = _demo_dict()
    data["model"] = {"artifact": "models/demo", "sha256": "not-a-hash"}
    with pytest.raises(ProfileError, match=r"model\.sha256"):
        profile_from_dict(data, Path("rig.toml"))


@pytest.mark.parametrize("bins", [1, 51])
def test_an_lfp_convolution_longer_than_the_window_or_of_one_bin_is_rejected(bins):
    data = _demo_dict()
    data["features"]["lfp_conv_bins"] = bins
    expected = rf"lfp_conv_bins must be 0 \(off\) or 2\.\.window_bins \(50\), not {bins}"
    with pytest.raises(ProfileError, match=expected):
        profile_from_dict(data, Path("rig.toml"))


@pytest.mark.parametrize("name", sorted(p.name for p in PROFILES.glob("*.toml")))
def test_the_profile_writer_writes_back_what_it_read(tmp_path, name):
    data = tomllib.loads((PROFILES / name).read_text())
    written = write_profile(data, tmp_path / name)
    assert tomllib.loads(written.read_text()) == data
    assert load_profile(written).streams == load_profile(PROFILES / name).streams


def test_the_profile_writer_writes_tables_arrays_of_tables_and_strings_toml_reads_back():
    data = {
        "name": 'a "quoted" näme\\',
        "flag": False,
        "values": [1, 2.5, "x"],
        "section": {"rate": 1000.0, "nested": {"on": True}},
        "regions": [{"name": "M1", "count": 32}, {"name": "PMd", "count": 64}],
    }
    text = profile_toml(data)
    assert tomllib.loads(text) == data
    assert text.startswith('name = "a \\"quoted\\" n')
    assert "[[regions]]" in text and "[section.nested]" in text and text.endswith("\n")
