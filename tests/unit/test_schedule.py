import math

import pytest
import torch

from bicameral.schedule import Constant, CosineWithRestarts, LinearWithRestarts, ScheduleError
from bicameral.tracking.format import format_lr


def optimizer(lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def trained_lrs(schedule, steps: int) -> list[float]:
    """The LR each of `steps` optimizer steps trains at, stepping the schedule as the engine does."""
    lrs = []
    for _ in range(steps):
        lrs.append(schedule.optimizer.param_groups[0]["lr"])
        schedule.optimizer.step()
        schedule.step()
    return lrs


def test_warmup_then_cosine_to_the_floor():
    s = CosineWithRestarts(optimizer(1e-3), total_steps=110, warmup_steps=10, min_lr_ratio=0.1)
    lrs = trained_lrs(s, 111)
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[10] == pytest.approx(1e-3)
    assert lrs[60] == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # halfway down the cosine
    assert lrs[110] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert s.get_last_lr()[0] == s.optimizer.param_groups[0]["lr"]  # torch's own bookkeeping


def test_restart_jumps_back_to_the_peak_and_decays_over_what_remains():
    s = CosineWithRestarts(optimizer(2e-4), total_steps=1000, warmup_steps=0)
    before = trained_lrs(s, 400)[-1]
    s.restart(400)
    assert before < 2e-4 and s.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert s.lr_at(2e-4, 700) == pytest.approx(2e-5 + 1.8e-4 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    restored = CosineWithRestarts(optimizer(2e-4), total_steps=1000, warmup_steps=0)
    restored.load_state_dict(s.state_dict())
    assert trained_lrs(restored, 155) == trained_lrs(s, 155)


def test_a_resume_keeps_its_own_total_steps():
    """Extending trainer.epochs on resume stretches the remaining decay; the position carries over."""
    s = CosineWithRestarts(optimizer(1e-3), total_steps=100)
    trained_lrs(s, 50)
    longer = CosineWithRestarts(optimizer(1e-3), total_steps=200)
    longer.load_state_dict(s.state_dict())
    assert longer.total_steps == 200 and longer.last_epoch == 50


def test_restart_steps_restart_without_an_unlock():
    s = CosineWithRestarts(optimizer(1e-3), total_steps=100, restart_steps=[30, 60])
    lrs = trained_lrs(s, 100)
    assert lrs[30] == lrs[60] == pytest.approx(1e-3) and lrs[29] < 1e-3 and lrs[59] < 1e-3
    # step 45 is 15 steps into the cycle begun at 30, which decays over the 70 steps that remain
    assert lrs[45] == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * 15 / 70)))


def test_linear_and_constant_shapes():
    linear = trained_lrs(LinearWithRestarts(optimizer(1.0), total_steps=10, warmup_steps=0, min_lr_ratio=0.0), 11)
    assert linear == pytest.approx([1.0 - i / 10 for i in range(11)])
    constant = Constant(optimizer(0.5), total_steps=10, warmup_steps=2)
    assert trained_lrs(constant, 6) == pytest.approx([0.25, 0.5, 0.5, 0.5, 0.5, 0.5])


@pytest.mark.parametrize("kwargs, message", [({"warmup_steps": -1}, "warmup_steps=-1 must be >= 0"),
                                             ({"min_lr_ratio": 2.0}, r"min_lr_ratio=2.0 must be in \[0, 1\]")])
def test_bad_settings_fail_naming_the_key(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        CosineWithRestarts(optimizer(1e-3), total_steps=10, **kwargs)


@pytest.mark.parametrize("lr, text", [(2e-4, "2.0e-4"), (1.99e-4, "1.99e-4"), (1e-3, "1.0e-3"), (3.5e-5, "3.5e-5")])
def test_lr_prints_like_the_seed(lr, text):
    assert format_lr(lr) == text
