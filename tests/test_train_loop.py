"""The training loop: it learns, a resumed run equals an uninterrupted one, and its groups,
early stopping, time budget and ``on_step`` callback do what they say."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rtbci.train.data import Batch, SessionBins, WindowSampler, WindowSet
from rtbci.train.ddp import init_distributed
from rtbci.train.loop import LoopConfig, StepReport, run_loop


def _sessions(n_sessions: int = 2, n_bins: int = 300) -> list[SessionBins]:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(8 * 3, 2)).astype(np.float32)
    sessions = []
    for row in range(n_sessions):
        lfp = rng.normal(size=(n_bins, 8, 3)).astype(np.float32)
        kinematics = lfp.reshape(n_bins, -1) @ weights
        spikes = rng.poisson(2.0, size=(n_bins, 8, 1)).astype(np.float32)
        sessions.append(SessionBins(f"s{row}", "subject", row, spikes, lfp, kinematics))
    return sessions


class _LinearObjective(nn.Module):
    """MSE of a linear readout with dropout, so that resuming must restore the RNG too."""

    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.2)
        self.readout = nn.Linear(24, 2)

    def forward(self, batch: Batch) -> torch.Tensor:
        features = self.dropout(batch.lfp.flatten(2))
        return nn.functional.mse_loss(self.readout(features), batch.kinematics)


class _SimulatedCrashError(Exception):
    pass


def _config(**changes) -> LoopConfig:
    settings = dict(steps=12, batch_size=8, lr=3e-2, warmup_steps=2, eval_every=4, checkpoint_every=4, seed=3)
    settings.update(changes)
    return LoopConfig(**settings)


def test_loop_lowers_the_loss_and_reports_validation() -> None:
    torch.manual_seed(0)
    objective = _LinearObjective()
    windows = WindowSet(_sessions(), window_bins=10, stride=5)
    calls = []

    def validate() -> float:
        calls.append(objective.training)
        return 0.5

    result = run_loop(
        objective, windows, _config(steps=60), init_distributed("cpu"), desc="t", validate=validate
    )
    losses = result.state.losses
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    assert calls and not any(calls)  # validation always runs in eval mode
    assert [step for step, _ in result.state.val_r2][-1] == 60


def test_resumed_run_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    windows = WindowSet(_sessions(), window_bins=10, stride=5)
    context = init_distributed("cpu")

    torch.manual_seed(0)
    straight = _LinearObjective()
    run_loop(straight, windows, _config(), context, desc="straight", state_path=tmp_path / "a.pt")

    torch.manual_seed(0)
    first = _LinearObjective()
    steps_done = []

    def crash_after_six(report: StepReport) -> None:
        steps_done.append(report.step)
        if len(steps_done) == 6:
            raise _SimulatedCrashError

    with pytest.raises(_SimulatedCrashError):
        run_loop(
            first,
            windows,
            _config(),
            context,
            desc="crash",
            state_path=tmp_path / "b.pt",
            on_step=crash_after_six,
        )

    torch.manual_seed(123)  # a fresh process: different init, all restored from the state file
    resumed = _LinearObjective()
    result = run_loop(resumed, windows, _config(), context, desc="resume", state_path=tmp_path / "b.pt")
    assert result.resumed_from == 4  # the last state file before the crash
    assert result.state.step == 12
    for name, value in straight.state_dict().items():
        assert torch.allclose(value, resumed.state_dict()[name]), name


def test_sampler_is_deterministic_and_shards_disjointly() -> None:
    ranks = [WindowSampler(100, batch_size=8, seed=5, rank=rank, world_size=2) for rank in range(2)]
    for step in range(20):
        first, second = (sampler.indices(step) for sampler in ranks)
        assert len(first) == len(second) == 8
        assert not set(first) & set(second)
        assert np.array_equal(first, ranks[0].indices(step))
    epoch = np.concatenate([sampler.indices(step) for step in range(6) for sampler in ranks])
    assert len(set(epoch)) == len(epoch)  # one epoch never repeats a window


def test_window_set_cuts_windows_inside_sessions() -> None:
    sessions = _sessions(n_sessions=2, n_bins=35)
    windows = WindowSet(sessions, window_bins=10, stride=5)
    assert len(windows) == 2 * 6
    batch = windows.batch(np.arange(len(windows)))
    assert batch.lfp.shape == (12, 10, 8, 3)
    assert batch.spikes.shape == (12, 10, 8, 1)
    assert batch.session.tolist() == [0] * 6 + [1] * 6
    assert torch.equal(batch.lfp[7], torch.from_numpy(sessions[1].lfp[5:15]))


def test_an_in_memory_loop_warms_up_over_5_percent_validates_4_times_and_saves_no_state():
    config = LoopConfig.in_memory(steps=400, lr=2e-3, batch_size=8, seed=3)
    assert (config.warmup_steps, config.eval_every, config.checkpoint_every) == (20, 100, 0)
    assert (config.steps, config.lr, config.batch_size, config.seed) == (400, 2e-3, 8, 3)
    assert LoopConfig.in_memory(steps=10, lr=1e-3, batch_size=1, seed=0).warmup_steps == 1


class _Payload:
    """An object a state file must never bring back: unpickling it would run code."""

    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_a_state_file_holding_a_pickled_object_is_refused(tmp_path: Path, capsys) -> None:
    from rtbci.train.loop import ResumeError

    windows = WindowSet(_sessions(), window_bins=10, stride=5)
    state_path = tmp_path / "state.pt"
    run_loop(
        _LinearObjective(),
        windows,
        _config(steps=4),
        init_distributed("cpu"),
        desc="a",
        state_path=state_path,
    )
    payload = torch.load(state_path, weights_only=True)  # what the loop wrote is plain data: it loads
    payload["metadata"] = {"note": _Payload()}
    torch.save(payload, state_path)
    with pytest.raises(ResumeError, match="refused: the state file holds objects other than plain data"):
        run_loop(
            _LinearObjective(), windows, _config(), init_distributed("cpu"), desc="b", state_path=state_path
        )
    assert "unpickled code ran" not in capsys.readouterr().out


def _constant(**changes) -> LoopConfig:
    settings = dict(steps=20, batch_size=8, lr=1e-2, schedule="constant", eval_every=2, checkpoint_every=0)
    settings.update(changes)
    return LoopConfig(**settings)


def test_each_parameter_group_trains_at_its_own_rate() -> None:
    torch.manual_seed(0)
    objective = _LinearObjective()
    windows = WindowSet(_sessions(), window_bins=10, stride=5)
    weight, bias = objective.readout.weight, objective.readout.bias
    start_weight, start_bias = weight.detach().clone(), bias.detach().clone()
    groups = [{"params": [weight], "lr": 0.0}, {"params": [bias], "lr": 5e-2, "weight_decay": 0.0}]

    run_loop(objective, windows, _constant(steps=1), desc="groups", parameters=groups)

    assert torch.equal(weight.detach(), start_weight)  # rate 0: never moved
    # Adam's first step moves every element by its group's rate, whatever the gradient's size.
    np.testing.assert_allclose((bias.detach() - start_bias).abs().numpy(), 5e-2, rtol=1e-3)


def test_on_step_sees_every_step_and_its_validation() -> None:
    windows = WindowSet(_sessions(), window_bins=10, stride=5)
    reports = []

    result = run_loop(
        _LinearObjective(),
        windows,
        _constant(steps=6),
        desc="s",
        validate=lambda: 0.0,
        on_step=reports.append,
    )

    assert [report.step for report in reports] == [1, 2, 3, 4, 5, 6]
    assert [report.val_r2 is not None for report in reports] == [False, True] * 3
    assert reports[-1].fraction == 1.0 and reports[-1].line().startswith("step 6: loss ")
    assert result.stopped is None


def test_early_stopping_stops_after_patience_and_keeps_the_best_weights() -> None:
    torch.manual_seed(0)
    objective = _LinearObjective()
    windows = WindowSet(_sessions(), window_bins=10, stride=5)
    scores = iter([0.5, 0.1, 0.2, 0.3, 0.9, 0.9])  # the starting weights are the best until step 8
    start = {name: value.clone() for name, value in objective.state_dict().items()}

    result = run_loop(objective, windows, _constant(patience=3), desc="stop", validate=lambda: next(scores))

    assert result.stopped == "early"
    assert result.state.step == 6  # three validations (steps 2, 4, 6) without beating step 0
    assert [step for step, _ in result.state.val_r2] == [0, 2, 4, 6]
    assert [step for step, _, _ in result.history] == [0, 2, 4, 6] and np.isnan(result.history[0][1])
    for name, value in objective.state_dict().items():
        assert torch.equal(value, start[name]), name


def test_the_time_budget_ends_the_run_and_validates_its_last_step() -> None:
    objective = _LinearObjective()
    windows = WindowSet(_sessions(), window_bins=10, stride=5)

    result = run_loop(
        objective,
        windows,
        _constant(steps=1000, eval_every=0, max_seconds=0.0),
        desc="t",
        validate=lambda: 0.2,
    )

    assert result.stopped == "time"
    assert result.state.step == 1
    assert result.state.val_r2 == [(1, 0.2)]


def test_early_stopping_refuses_to_run_without_validation_or_with_a_state_file(tmp_path: Path) -> None:
    windows = WindowSet(_sessions(), window_bins=10, stride=5)
    with pytest.raises(ValueError, match="needs a validate"):
        run_loop(_LinearObjective(), windows, _constant(patience=1), desc="x")
    with pytest.raises(ValueError, match="does not resume"):
        run_loop(
            _LinearObjective(),
            windows,
            _constant(patience=1),
            desc="x",
            validate=lambda: 0.0,
            state_path=tmp_path / "s.pt",
        )
