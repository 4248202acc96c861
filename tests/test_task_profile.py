"""The profile's ``[task]`` section: documented defaults in the demo profile, and bad values named."""

import tomllib
from pathlib import Path

import pytest

from rtbci.profile import CursorTaskConfig, ProfileError, load_profile, profile_from_dict

PROFILES = Path(__file__).resolve().parents[1] / "profiles"


def _demo_dict() -> dict:
    return tomllib.loads((PROFILES / "demo.toml").read_text())


def test_the_demo_profile_runs_centre_out_with_the_defaults():
    task = load_profile(PROFILES / "demo.toml").task
    assert task == CursorTaskConfig()
    assert (task.targets, task.n_targets, task.hold_ms, task.timeout_s, task.assist) == (
        "center_out",
        8,
        500.0,
        10.0,
        0.0,
    )


def test_a_profile_without_task_gets_the_defaults():
    data = _demo_dict()
    del data["task"]
    assert profile_from_dict(data, Path("rig.toml")).task == CursorTaskConfig()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("assist", 1.5, "less than or equal to 1"),
        ("assist", -0.1, "greater than or equal to 0"),
        ("hold_ms", -1.0, "greater than or equal to 0"),
        ("timeout_s", 0, "greater than 0"),
        ("gain", 0.0, "greater than 0"),
        ("target_radius", "1.5", "valid number"),
        ("targets", "spiral", "'center_out' or 'random'"),
        ("n_targets", 8.5, "valid integer"),
        ("holdms", 500.0, "Unexpected keyword argument"),
    ],
)
def test_a_bad_value_names_the_file_and_the_field(field, value, expected):
    data = _demo_dict()
    data["task"][field] = value
    with pytest.raises(ProfileError) as info:
        profile_from_dict(data, Path("rig.toml"))
    message = str(info.value)
    assert "rig.toml" in message and f"field 'task.{field}'" in message
    assert expected in message


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"center_out_radius": 0.11}, "center_out_radius + target_radius"),
        (
            {"center_out_radius": 0.03, "target_radius": 0.04},
            "target_radius (0.04) must be < center_out_radius",
        ),
        ({"min_distance": 0.01}, "min_distance (0.01) must be > target_radius"),
        ({"min_distance": 0.2}, "<= workspace_half_width - target_radius"),
        ({"hold_ms": 10000.0}, "hold_ms (10000) must be shorter than timeout_s"),
    ],
)
def test_inconsistent_sizes_are_rejected_with_the_fields_named(changes, named):
    data = _demo_dict()
    data["task"].update(changes)
    with pytest.raises(ProfileError) as info:
        profile_from_dict(data, Path("rig.toml"))
    assert "field 'task'" in str(info.value) and named in str(info.value)
