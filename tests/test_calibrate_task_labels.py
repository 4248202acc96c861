"""Calibration from a Session file with ``--labels cue|refit``: labels from its recorded task stream."""

from __future__ import annotations

import json

import numpy as np
import pytest
from calibrate_fixtures import make_previous_model, simulated_block, with_task_instead_of_hand, write_block

import calibrate.command
from calibrate import CalibrationConfig, CalibrationDataError, CalibrationError, run_calibration
from rtbci.cli import main
from rtbci.io.store import read_session
from rtbci.profile import load_profile
from rtbci.signal import LABELS, featurize

CONFIG = CalibrationConfig(min_seconds=40.0, show_progress=False)


def test_the_command_offers_the_labels_featurize_knows():
    assert calibrate.command.LABELS == LABELS


@pytest.fixture(scope="module")
def blocks(tmp_path_factory) -> dict:
    """A previous decoder, and a 50 s block with a hand, and the same with a task stream instead."""
    folder = tmp_path_factory.mktemp("task-labels")
    previous = make_previous_model(folder / "previous", simulated_block(45.0, session=4))
    block = simulated_block(50.0, session=5)
    profile = load_profile(previous.write_profile(folder / "bare.toml"))
    return {
        "previous": previous,
        "hand_file": write_block(block, folder / "hand.h5"),
        "cued_file": write_block(with_task_instead_of_hand(block, profile), folder / "cued.h5"),
    }


@pytest.mark.slow
def test_cue_labels_equal_to_the_hand_give_the_hand_calibration(blocks, tmp_path, capsys):
    profile_path = blocks["previous"].write_profile(tmp_path / "rig.toml")
    hand = run_calibration(profile_path, session_file=blocks["hand_file"], config=CONFIG)
    report_path = tmp_path / "cue.json"
    code = main(
        [
            *("calibrate", "--profile", str(profile_path), "--from", str(blocks["cued_file"])),
            *("--labels", "cue", "--min-seconds", "40", "--json", str(report_path), "--force"),
        ]
    )
    output = capsys.readouterr().out
    assert code == 0
    report = json.loads(report_path.read_text())
    assert hand.labels == "hand" and hand.to_json()["labels"] == "hand"
    assert report["labels"] == "cue" and f"of {blocks['cued_file']} (labels: cue):" in output
    assert report["split_bins"] == hand.to_json()["split_bins"]
    # The same bins and the same numbers to fit (exactly), so the same decoder, scored the same up
    # to Stage A's run-to-run jitter (torch's threaded reductions: 0.001 seen).
    profile = load_profile(profile_path)
    cued = featurize(read_session(blocks["cued_file"]), profile, labels="cue", progress=False)
    handed = featurize(read_session(blocks["hand_file"]), profile, progress=False)
    np.testing.assert_array_equal(cued.kinematics, handed.kinematics)
    np.testing.assert_array_equal(cued.bin_ends, handed.bin_ends)
    np.testing.assert_allclose(report["heldout_r2_mean"], hand.heldout_r2, atol=0.01)
    assert report["artifact"] is not None


@pytest.mark.slow
def test_refit_fits_the_decoded_speed_turned_toward_the_target(blocks, tmp_path):
    profile_path = blocks["previous"].write_profile(tmp_path / "rig.toml")
    refit = run_calibration(profile_path, session_file=blocks["cued_file"], config=CONFIG, labels="refit")
    assert refit.labels == "refit" and np.isfinite(refit.heldout_r2)
    # The cue labels of the rows refit reads (at refit's lag, not the cue's).
    cue = featurize(
        read_session(blocks["cued_file"]), load_profile(profile_path), 0.0, labels="cue", progress=False
    )
    heldout = refit.split.heldout
    actual, cued = refit.scores.actual, cue.kinematics[heldout.start : heldout.stop]
    moving = np.hypot(*actual.T) > 0
    assert moving.mean() > 0.5
    # The targets sit where the hand's velocity points: refit points there too, at another speed.
    cosine = np.sum(actual[moving] * cued[moving], axis=1) / (
        np.hypot(*actual[moving].T) * np.hypot(*cued[moving].T)
    )
    np.testing.assert_allclose(cosine, 1.0, atol=1e-4)
    assert not np.allclose(np.hypot(*actual[moving].T), np.hypot(*cued[moving].T), rtol=0.1)


@pytest.mark.slow
def test_a_block_without_a_task_stream_says_how_to_record_one(blocks, tmp_path):
    profile_path = blocks["previous"].write_profile(tmp_path / "rig.toml")
    with pytest.raises(CalibrationDataError) as error:
        run_calibration(profile_path, session_file=blocks["hand_file"], config=CONFIG, labels="refit")
    message = str(error.value)
    assert message.startswith(f"{blocks['hand_file']}: no cursor task stream, and --labels refit reads")
    assert "rtbci calibrate --record S --labels refit" in message and "--labels hand" in message
    with pytest.raises(CalibrationError, match="labels must be one of hand, cue, refit, got 'hnad'"):
        run_calibration(profile_path, session_file=blocks["hand_file"], config=CONFIG, labels="hnad")
