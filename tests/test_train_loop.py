"""The training loop: it learns, and a resumed run equals an uninterrupted one."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rtbci.train.data import Batch, SessionBins, WindowSampler, WindowSet
from rtbci.train.ddp import init_distributed
from rtbci.train.loop import LoopConfig, run_loop


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

    def crash_after_six() -> None:
        steps_done.append(1)
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
            after_step=crash_after_six,
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
