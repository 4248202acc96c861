"""A decoder is served the features it was trained with: the artifact's settings against the profile's."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from rtbci.engine.engine import Engine
from rtbci.errors import UserError
from rtbci.profile import load_profile, profile_from_dict
from rtbci.runtime.manifest import feature_disagreements, read_manifest
from rtbci.signal.grid import FEATURIZER_SETTINGS

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"


def _demo_with_features(**changes: object):
    data = tomllib.loads(DEMO_PROFILE.read_text(encoding="utf-8"))
    data["features"].update(changes)
    profile = profile_from_dict(data, DEMO_PROFILE)
    return profile, read_manifest(profile.artifact_dir())


def test_the_demo_artifact_agrees_with_its_profile_on_what_the_featurizers_read():
    profile = load_profile(DEMO_PROFILE)
    manifest = read_manifest(profile.artifact_dir())
    assert feature_disagreements(manifest, dataclasses.asdict(profile.features), FEATURIZER_SETTINGS) == []


def test_a_changed_band_is_named_with_both_values():
    profile, manifest = _demo_with_features(bands_hz=[[8.0, 15.0], [15.0, 30.0], [30.0, 80.0], [80.0, 150.0]])
    found = feature_disagreements(manifest, dataclasses.asdict(profile.features))
    (line,) = [line for line in found if line.startswith("bands_hz")]
    assert "150.0" in line and "200.0" in line


def test_a_setting_the_artifact_never_recorded_is_a_disagreement():
    profile, manifest = _demo_with_features()
    manifest = dataclasses.replace(manifest, features={"bin_ms": 20.0})
    found = feature_disagreements(manifest, dataclasses.asdict(profile.features), ["bin_ms", "line_hz"])
    assert found == ["line_hz: the profile says 60.0, the artifact does not record it (older artifact)"]


def test_the_engine_refuses_a_profile_whose_featurizer_differs_from_the_decoders():
    profile, _ = _demo_with_features(line_hz=50.0)
    expected = r"line_hz: the profile says 50\.0, the artifact was trained with 60\.0"
    with pytest.raises(UserError, match=expected):
        Engine.from_profile(profile)
