"""The simulated participant (rtbci.sim.participant): a delayed view of the cursor, aim at the target,
quiet on holds; and its intention driving the open-loop rig's neural models."""

import numpy as np
import pytest

from rtbci.sim import SimConfig
from rtbci.sim.participant import (
    Intention,
    IntentionRig,
    ParticipantConfig,
    SimulatedParticipant,
)
from rtbci.sim.rig import RigSimulator
from rtbci.task import TaskFrame, TrialState

BIN_S = 0.02
TARGET = np.array([0.08, 0.0])


def _frame(cursor, state=TrialState.REACH, target=TARGET) -> TaskFrame:
    return TaskFrame(
        cursor=np.asarray(cursor, dtype=float),
        target=np.asarray(target, dtype=float),
        state=state,
        trial_id=1,
        hold_fraction=0.0,
        cued_velocity=np.zeros(2),
        events=(),
    )


def _direction(velocity: np.ndarray) -> np.ndarray:
    return velocity / np.linalg.norm(velocity)


def test_the_default_delay_is_a_visual_feedback_delay_in_whole_bins():
    participant = SimulatedParticipant(ParticipantConfig(), BIN_S)
    assert 0.1 <= ParticipantConfig().feedback_delay_ms / 1000 <= 0.15
    assert participant.delay_bins == 6


def test_after_a_cursor_perturbation_the_intention_turns_only_after_the_feedback_delay():
    participant = SimulatedParticipant(ParticipantConfig(), BIN_S)
    delay = participant.delay_bins
    for _ in range(delay + 5):
        before = participant.step(_frame([0.0, 0.0]))
    np.testing.assert_allclose(_direction(before.velocity), [1.0, 0.0])
    # The cursor is knocked 5 cm up: the participant still aims from where it saw it for `delay` bins.
    perturbed = [participant.step(_frame([0.0, 0.05])) for _ in range(delay + 1)]
    for intention in perturbed[:delay]:
        np.testing.assert_allclose(_direction(intention.velocity), [1.0, 0.0])
        np.testing.assert_allclose(intention.cursor, [0.0, 0.0])
    turned = perturbed[delay]
    np.testing.assert_allclose(_direction(turned.velocity), _direction(TARGET - [0.0, 0.05]))
    np.testing.assert_allclose(turned.cursor, [0.0, 0.05])


def test_the_intended_speed_saturates_far_away_and_slows_near_the_target():
    config = ParticipantConfig(feedback_delay_ms=0.0)
    participant = SimulatedParticipant(config, BIN_S)
    far = participant.step(_frame([-0.08, 0.0]))
    assert np.linalg.norm(far.velocity) == pytest.approx(config.max_speed_m_s)
    near = participant.step(_frame([0.07, 0.0]))
    assert np.linalg.norm(near.velocity) == pytest.approx(0.01 / config.approach_s)
    assert np.all(participant.aim(TARGET, TARGET) == 0.0)


@pytest.mark.parametrize(
    "state", [TrialState.HOLD, TrialState.INTER_TRIAL, TrialState.SUCCESS, TrialState.TIMEOUT]
)
def test_the_participant_is_quiet_when_it_sees_a_hold_or_no_trial(state):
    participant = SimulatedParticipant(ParticipantConfig(), BIN_S)
    for _ in range(participant.delay_bins):
        participant.step(_frame([0.0, 0.0]))
    # The reach frames still in view keep it moving; once the quiet state is seen, it stops.
    intentions = [
        participant.step(_frame([0.075, 0.0], state=state)) for _ in range(2 * participant.delay_bins)
    ]
    assert all(np.linalg.norm(i.velocity) > 0 for i in intentions[: participant.delay_bins])
    assert all(np.all(i.velocity == 0.0) for i in intentions[participant.delay_bins :])
    assert not intentions[-1].engaged


def test_before_it_has_seen_anything_the_participant_is_quiet():
    participant = SimulatedParticipant(ParticipantConfig(), BIN_S)
    first = participant.step(_frame([0.0, 0.0]))
    assert np.all(first.velocity == 0.0) and not first.engaged


def test_the_rebound_window_follows_the_end_of_a_reach():
    participant = SimulatedParticipant(ParticipantConfig(feedback_delay_ms=0.0), BIN_S)
    participant.step(_frame([0.0, 0.0]))
    rebound = [participant.step(_frame(TARGET, state=TrialState.HOLD)).rebound for _ in range(60)]
    # 0.2 s to 1.0 s after the reach ended (the open-loop rig's post-movement window).
    assert rebound.index(True) == 10 and rebound[10:50] == [True] * 40 and not any(rebound[50:])


@pytest.mark.parametrize(
    "changes", [{"feedback_delay_ms": -1.0}, {"max_speed_m_s": 0.0}, {"approach_s": -0.2}]
)
def test_bad_participant_settings_name_the_field(changes):
    (name,) = changes
    with pytest.raises(ValueError, match=f"ParticipantConfig.{name}"):
        ParticipantConfig(**changes)


def _intending(velocity) -> Intention:
    return Intention(np.asarray(velocity, dtype=float), np.zeros(2), TARGET, engaged=True, rebound=False)


def test_the_intention_rig_is_the_open_loop_session_and_is_reproducible():
    config = SimConfig()
    rig = IntentionRig(config, subject=0, session=2, seed=5, bin_samples=20)
    open_loop = RigSimulator(config, subject=0, session=2, seed=5)
    np.testing.assert_array_equal(rig.rig.units.preferred, open_loop.rig.units.preferred)
    np.testing.assert_array_equal(rig.rig.dead, open_loop.rig.dead)
    again = IntentionRig(config, subject=0, session=2, seed=5, bin_samples=20)
    for _ in range(3):
        one, two = rig.next_bin(_intending([0.2, 0.0])), again.next_bin(_intending([0.2, 0.0]))
        np.testing.assert_array_equal(one.spikes, two.spikes)
        np.testing.assert_array_equal(one.lfp, two.lfp)
    assert one.start_sample == 40
    assert one.spikes.shape == (20, 96) and one.spikes.dtype == np.uint8
    assert one.lfp.shape == (20, 96) and one.lfp.dtype == np.float32


def test_the_neurons_encode_the_intended_direction():
    """Electrodes whose units prefer +x fire more for an intention to the right than to the left."""
    config = SimConfig()
    right = IntentionRig(config, subject=0, session=0, seed=0, bin_samples=20)
    left = IntentionRig(config, subject=0, session=0, seed=0, bin_samples=20)
    counts_right = sum(
        right.next_bin(_intending([0.25, 0.0])).spikes.sum(axis=0, dtype=np.int64) for _ in range(100)
    )
    counts_left = sum(
        left.next_bin(_intending([-0.25, 0.0])).spikes.sum(axis=0, dtype=np.int64) for _ in range(100)
    )
    units = right.rig.units
    preference = np.zeros(96)
    np.add.at(preference, units.electrode, units.depth_hz * units.preferred[:, 0])
    correlation = np.corrcoef(preference, counts_right - counts_left)[0, 1]
    assert correlation > 0.5
