"""Out-of-range flags of sample and evaluate fail at parse time, naming the flag, before any file is read; a
device that is not there fails in one line naming the setting."""

import pytest
import torch

from bicameral.engine.device import pick_device
from bicameral.errors import BicameralError
from bicameral.tools import evaluate, sample


@pytest.mark.parametrize("tool, flag, value, says", [
    (sample, "--tokens", "-5", "-5 must be 1 or more"),
    (sample, "--temperature", "-1", "-1.0 must be 0 or more"),
    (sample, "--temperature", "nan", "nan must be 0 or more"),
    (sample, "--top-k", "0", "0 must be 1 or more"),
    (sample, "--samples", "two", "'two' is not a whole number"),
    (evaluate, "--batches", "0", "0 must be 1 or more"),
    (evaluate, "--batch-size", "-2", "-2 must be 1 or more"),
])
def test_a_flag_out_of_range_is_one_line_and_exit_2(tool, flag, value, says, capsys):
    with pytest.raises(SystemExit) as stop:
        tool.main(["no-such-checkpoint.pt", flag, value])  # never opened: the flag fails first
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: argument {flag}: {says}")


@pytest.mark.parametrize("key", ["trainer.device", "--device"])
def test_cuda_asked_for_without_cuda_is_one_line_naming_the_setting(key, monkeypatch):
    """One rule for the trainer and the tools: auto falls back to the CPU, an explicit cuda is refused."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto", key=key) == torch.device("cpu")
    with pytest.raises(BicameralError, match=f"^{key}=cuda:1 but CUDA is not available. Fix: {key}=auto or cpu.$"):
        pick_device("cuda:1", key=key)
