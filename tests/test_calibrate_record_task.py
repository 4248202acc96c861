"""``record_block(labels="cue"|"refit")``: its task needs the decoder, and the rig's task stream to itself."""

from __future__ import annotations

import uuid

import pytest
from calibrate_fixtures import profile_text_with_model, streaming_rig

from calibrate.errors import CalibrationDataError
from calibrate.record import record_block
from rtbci.profile import load_profile
from rtbci.task.publisher import TaskPublisher

pytestmark = pytest.mark.slow


@pytest.fixture
def profile_path(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text(profile_text_with_model(uuid.uuid4().hex[:10], None, None), encoding="utf-8")
    return path


def test_another_task_for_the_rig_is_named_and_nothing_is_recorded(profile_path, tmp_path):
    profile = load_profile(profile_path)
    with TaskPublisher(profile) as other, pytest.raises(CalibrationDataError) as error:
        record_block(profile, 10.0, tmp_path / "block.h5", labels="cue", show_bar=False)
    assert f"another `rtbci task` already publishes {other.spec.name!r}" in str(error.value)
    assert "stop it first" in str(error.value) and not (tmp_path / "block.h5").exists()


def test_without_a_decoder_the_task_says_to_start_one_and_nothing_is_recorded(profile_path, tmp_path):
    profile = load_profile(profile_path)
    with streaming_rig(profile_path), pytest.raises(CalibrationDataError) as error:
        record_block(profile, 10.0, tmp_path / "block.h5", labels="refit", show_bar=False)
    message = str(error.value)
    assert message.startswith("the cursor task of --labels refit stopped: no LSL stream for output")
    assert "start the decoder (`rtbci run --profile P`, or the app) before recording" in message
    assert not (tmp_path / "block.h5").exists()
