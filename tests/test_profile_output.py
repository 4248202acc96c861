"""The profile's ``[output] arm_on_start``: a live rig starts held unless its profile says otherwise."""

import tomllib
from pathlib import Path

import pytest

from rtbci.profile import ProfileError, load_profile, profile_from_dict

PROFILES = Path(__file__).resolve().parents[1] / "profiles"


def test_a_live_rig_starts_held_and_the_demo_arms_itself():
    assert load_profile(PROFILES / "blackrock_2x96.toml").output.arm_on_start is False
    assert load_profile(PROFILES / "demo.toml").output.arm_on_start is True
    data = tomllib.loads((PROFILES / "demo.toml").read_text())
    del data["output"]["arm_on_start"]
    assert profile_from_dict(data, Path("rig.toml")).output.arm_on_start is False, "the default is held"


@pytest.mark.parametrize("value", ["yes", 1])
def test_arm_on_start_must_be_a_boolean(value):
    data = tomllib.loads((PROFILES / "demo.toml").read_text())
    data["output"]["arm_on_start"] = value
    with pytest.raises(ProfileError, match=r"output\.arm_on_start"):
        profile_from_dict(data, Path("rig.toml"))
