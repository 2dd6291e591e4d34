import math

import pytest

from bicameral.schedule import CosineWithRestarts
from bicameral.tracking import format_lr


def test_warmup_then_cosine_to_the_floor():
    s = CosineWithRestarts(peak_lr=1e-3, total_steps=110, warmup_steps=10, min_lr_ratio=0.1)
    assert s.lr_at(0) == pytest.approx(1e-4) and s.lr_at(9) == pytest.approx(1e-3)
    assert s.lr_at(10) == pytest.approx(1e-3)
    assert s.lr_at(60) == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # halfway down the cosine
    assert s.lr_at(110) == pytest.approx(1e-4)
    lrs = [s.lr_at(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_restart_jumps_back_to_the_peak_and_decays_over_what_remains():
    s = CosineWithRestarts(peak_lr=2e-4, total_steps=1000, warmup_steps=0)
    before = s.lr_at(400)
    s.restart(400)
    assert before < 2e-4 and s.lr_at(400) == pytest.approx(2e-4)
    assert s.lr_at(700) == pytest.approx(2e-5 + 1.8e-4 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    restored = CosineWithRestarts(peak_lr=2e-4, total_steps=1000)
    restored.load_state_dict(s.state_dict())
    assert restored.lr_at(555) == s.lr_at(555)


@pytest.mark.parametrize("lr, text", [(2e-4, "2.0e-4"), (1.99e-4, "1.99e-4"), (1e-3, "1.0e-3"), (3.5e-5, "3.5e-5")])
def test_lr_prints_like_the_seed(lr, text):
    assert format_lr(lr) == text
