"""bicameral.tools.launch ends a torchrun job with the run's exit codes, in one line (the real launcher under SIGTERM is
tests/e2e/test_distributed.py)."""

import signal

import pytest
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from bicameral.engine.preemption import PREEMPTED_EXIT_CODE
from bicameral.tools import launch


def exit_code_of(monkeypatch, raised: BaseException) -> int:
    def torchrun(argv):
        raise raised

    monkeypatch.setattr(launch, "torchrun", torchrun)
    with pytest.raises(SystemExit) as stopped:
        launch.main(["--nproc_per_node=2", "train.py"])
    return stopped.value.code


@pytest.mark.parametrize("exitcode, expected", [(2, 2), (75, 75), (-9, 1)])  # -9: killed by SIGKILL
def test_the_first_failed_rank_gives_its_exit_code(monkeypatch, capsys, exitcode, expected):
    failures = {1: ProcessFailure(local_rank=1, pid=11, exitcode=exitcode, error_file="")}
    assert exit_code_of(monkeypatch, ChildFailedError("train.py", failures)) == expected
    expected_line = f"bicameral launch: rank 1 failed first (exit code {exitcode}); its error is above\n"
    assert capsys.readouterr().err == expected_line


def test_a_stop_signal_exits_75_in_one_line(monkeypatch, capsys):
    assert exit_code_of(monkeypatch, SignalException("got 15", sigval=signal.SIGTERM)) == PREEMPTED_EXIT_CODE
    assert capsys.readouterr().err == "bicameral launch: stopped by SIGTERM; the ranks saved, run again to resume\n"
