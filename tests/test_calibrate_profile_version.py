"""New profile versions: rendered from the profile's own text, validated, archived, written atomically."""

from __future__ import annotations

import dataclasses
import os
import tomllib

import pytest
from calibrate_fixtures import demo_text_without_model

from calibrate import ProfileWriteError
from calibrate.profile_version import ModelEntry, render_profile, write_profile_version
from rtbci.home import SHIPPED_PROFILES
from rtbci.profile import load_profile

SHA_A = "a" * 64
SHA_B = "b" * 64


def _entry(sha256: str = SHA_B, artifact: str = "models/new") -> ModelEntry:
    return ModelEntry(
        artifact=artifact,
        sha256=sha256,
        backend="onnxruntime",
        device="cpu",
        input="lfp",
        calibrated="2026-11-22T01:00:00+00:00",
        heldout_r2=0.5123,
    )


@pytest.fixture
def profile_path(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text(demo_text_without_model() + f'\n[model]\nartifact = "models/old"\nsha256 = "{SHA_A}"\n')
    return path


def test_render_replaces_only_the_model_table_and_keeps_comments(profile_path):
    original = profile_path.read_text()
    rendered = render_profile(original, _entry())
    old, new = tomllib.loads(original), tomllib.loads(rendered)
    assert new["model"] == {
        "artifact": "models/new",
        "sha256": SHA_B,
        "backend": "onnxruntime",
        "device": "cpu",
        "input": "lfp",
        "calibrated": "2026-11-22T01:00:00+00:00",
        "heldout_r2": 0.5123,
    }
    assert {k: v for k, v in new.items() if k != "model"} == {k: v for k, v in old.items() if k != "model"}
    assert "# The simulated rig that `make demo` runs" in rendered
    assert rendered.count("[model]") == 1


def test_render_appends_a_model_table_to_a_profile_without_one():
    text = demo_text_without_model()
    assert "model" not in tomllib.loads(text)
    rendered = render_profile(text, _entry())
    assert tomllib.loads(rendered)["model"]["sha256"] == SHA_B


def test_each_version_archives_the_previous_one_and_never_overwrites_it(profile_path):
    first = profile_path.read_text()
    version = write_profile_version(profile_path, first, _entry(SHA_B))
    assert version.archived == profile_path.with_name("rig.v1.toml")
    assert version.archived.read_text() == first
    second = profile_path.read_text()
    version = write_profile_version(profile_path, second, _entry("c" * 64))
    assert version.archived == profile_path.with_name("rig.v2.toml")
    assert version.archived.read_text() == second
    assert load_profile(profile_path).model.sha256 == "c" * 64
    assert load_profile(profile_path.with_name("rig.v1.toml")).model.sha256 == SHA_A


def test_a_profile_edited_since_calibration_read_it_is_not_overwritten_silently(profile_path):
    read_at_start = profile_path.read_text()
    profile_path.write_text(read_at_start.replace("velocity_clamp = 0.5", "velocity_clamp = 0.3"))
    with pytest.raises(ProfileWriteError, match="changed on disk since calibration read it"):
        write_profile_version(profile_path, read_at_start, _entry())
    assert "velocity_clamp = 0.3" in profile_path.read_text()
    write_profile_version(profile_path, read_at_start, _entry(), force=True)
    assert load_profile(profile_path).model.sha256 == SHA_B


def test_an_existing_out_profile_is_refused_without_force(profile_path, tmp_path):
    out = tmp_path / "elsewhere" / "next.toml"
    version = write_profile_version(profile_path, profile_path.read_text(), _entry(), out_path=out)
    assert version.path == out and version.archived is None
    assert load_profile(profile_path).model.sha256 == SHA_A  # the original is untouched
    with pytest.raises(ProfileWriteError, match="already exists; pass --force"):
        write_profile_version(profile_path, profile_path.read_text(), _entry("c" * 64), out_path=out)
    assert load_profile(out).model.sha256 == SHA_B


def test_an_invalid_new_version_is_refused_before_anything_is_written(profile_path):
    original = profile_path.read_text()
    with pytest.raises(ProfileWriteError, match="does not validate"):
        write_profile_version(profile_path, original, _entry(sha256="not-a-hash"))
    assert profile_path.read_text() == original
    assert sorted(p.name for p in profile_path.parent.iterdir()) == ["rig.toml"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failure_mid_write_leaves_the_old_profile_intact(profile_path, monkeypatch, failing):
    original = profile_path.read_text()

    def fail(*args, **kwargs):
        raise OSError(f"disk full during {failing}")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="disk full"):
        write_profile_version(profile_path, original, _entry())
    monkeypatch.undo()
    assert profile_path.read_text() == original
    assert load_profile(profile_path).model.sha256 == SHA_A
    # No temporary file is left behind; the archive is a full copy of the (unchanged) profile.
    leftovers = sorted(p.name for p in profile_path.parent.iterdir())
    assert leftovers == ["rig.toml", "rig.v1.toml"]
    assert profile_path.with_name("rig.v1.toml").read_text() == original


def test_render_drops_the_comment_that_described_the_old_model(profile_path):
    text = profile_path.read_text().replace("[model]", "# The bundled demo decoder, made by ...\n[model]")
    entry = dataclasses.replace(_entry(), comment="Calibrated at 2026-11-22 on sim-S0-d05")
    rendered = render_profile(text, entry)
    assert "The bundled demo decoder" not in rendered
    assert "# Calibrated at 2026-11-22 on sim-S0-d05\n[model]\n" in rendered
    assert "# The simulated rig that `make demo` runs" in rendered


def test_a_shipped_profile_is_never_written(profile_path):
    shipped = SHIPPED_PROFILES / "demo.toml"
    before = shipped.read_bytes()
    for out_path in (shipped, SHIPPED_PROFILES / "calibrated.toml"):
        with pytest.raises(ProfileWriteError, match="read-only templates"):
            write_profile_version(
                profile_path, profile_path.read_text(), _entry(), out_path=out_path, force=True
            )
    with pytest.raises(ProfileWriteError, match="read-only templates"):
        write_profile_version(shipped, before.decode(), _entry(), force=True)
    assert shipped.read_bytes() == before
    assert not (SHIPPED_PROFILES / "calibrated.toml").exists()


def test_an_earlier_lab_copy_is_archived_and_replaced(profile_path, tmp_path):
    lab_copy = tmp_path / "home" / "rig.toml"
    first = write_profile_version(
        profile_path, profile_path.read_text(), _entry(SHA_B), out_path=lab_copy, archive_existing=True
    )
    assert first.archived is None and load_profile(lab_copy).model.sha256 == SHA_B
    second = write_profile_version(
        profile_path, profile_path.read_text(), _entry("c" * 64), out_path=lab_copy, archive_existing=True
    )
    assert second.archived == lab_copy.with_name("rig.v1.toml")
    assert load_profile(second.archived).model.sha256 == SHA_B
    assert load_profile(lab_copy).model.sha256 == "c" * 64
