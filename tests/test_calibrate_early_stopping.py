import pytest
import torch
from tqdm import tqdm

from calibrate.early_stopping import EarlyStopping


def test_keeps_the_best_weights_and_stops_after_patience_checks_without_gain():
    module = torch.nn.Linear(1, 1, bias=False)
    messages = []
    stopping = EarlyStopping(module, patience=2, total_steps=10, on_step=lambda f, m: messages.append((f, m)))
    with torch.no_grad():
        module.weight.fill_(1.0)
    stopping.start(0.1)
    with tqdm(disable=True) as bar:
        with torch.no_grad():
            module.weight.fill_(2.0)
        assert not stopping.check(2, 0.5, 0.3, bar)  # new best: weight 2
        with torch.no_grad():
            module.weight.fill_(3.0)
        assert not stopping.check(4, 0.4, 0.2, bar)  # one check without gain
        assert stopping.check(6, 0.4, 0.25, bar)  # two: stop
    stopping.restore_best()
    assert module.weight.item() == 2.0
    assert stopping.history[0][0] == 0 and stopping.history[0][2] == 0.1
    assert [(step, score) for step, _, score in stopping.history[1:]] == [(2, 0.3), (4, 0.2), (6, 0.25)]
    assert messages[0] == (0.2, "step 2: loss 0.500, val R² 0.300")


def test_start_weights_are_kept_when_nothing_beats_them():
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(1.0)
    stopping = EarlyStopping(module, patience=1, total_steps=4)
    stopping.start(0.5)
    with torch.no_grad():
        module.weight.fill_(-1.0)
    with tqdm(disable=True) as bar:
        assert stopping.check(1, 1.0, 0.4, bar)
    stopping.restore_best()
    assert module.weight.item() == 1.0


def test_restore_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="start was never called"):
        EarlyStopping(torch.nn.Linear(1, 1), patience=1, total_steps=1).restore_best()
