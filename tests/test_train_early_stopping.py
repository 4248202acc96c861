import pytest
import torch

from rtbci.train.early_stopping import EarlyStopping


def test_keeps_the_best_weights_and_stops_after_patience_checks_without_gain():
    module = torch.nn.Linear(1, 1, bias=False)
    stopping = EarlyStopping(module, patience=2)
    with torch.no_grad():
        module.weight.fill_(1.0)
    stopping.start(0.1)
    with torch.no_grad():
        module.weight.fill_(2.0)
    assert not stopping.check(0.3)  # new best: weight 2
    with torch.no_grad():
        module.weight.fill_(3.0)
    assert not stopping.check(0.2)  # one check without gain
    assert stopping.check(0.25)  # two: stop
    stopping.restore_best()
    assert module.weight.item() == 2.0


def test_start_weights_are_kept_when_nothing_beats_them():
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(1.0)
    stopping = EarlyStopping(module, patience=1)
    stopping.start(0.5)
    with torch.no_grad():
        module.weight.fill_(-1.0)
    assert stopping.check(0.4)
    stopping.restore_best()
    assert module.weight.item() == 1.0


def test_restore_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="start was never called"):
        EarlyStopping(torch.nn.Linear(1, 1), patience=1).restore_best()
