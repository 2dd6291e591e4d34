"""Out-of-range flags of sample and evaluate fail at parse time, naming the flag, before any file is read."""

import pytest

from bicameral import evaluate, sample


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
