"""torchrun with the run's exit codes: python -m bicameral.tools.launch [torchrun options] train.py [overrides]

torchrun itself answers a stop signal, or a rank that failed, with a traceback and exit code 1, so a
scheduler cannot tell a preempted job (safe to run again) from a broken one. This takes the same
arguments and ends in one line instead: 75 when a stop signal ended the job (each rank finishes its
step and saves first), or the exit code of the first rank that failed (2 for the one-line errors).
"""

import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main as torchrun

from bicameral.engine.preemption import PREEMPTED_EXIT_CODE


def main(argv: list[str] | None = None) -> None:
    try:
        torchrun(argv)
    except SignalException as stop:  # torchrun has passed the signal on and waited for the ranks to save
        print(f"bicameral launch: stopped by {stop.sigval.name}; the ranks saved, run again to resume",
              file=sys.stderr)
        raise SystemExit(PREEMPTED_EXIT_CODE) from None
    except ChildFailedError as failed:
        rank, failure = failed.get_first_failure()
        print(f"bicameral launch: rank {rank} failed first (exit code {failure.exitcode}); its error is above",
              file=sys.stderr)
        raise SystemExit(failure.exitcode if failure.exitcode > 0 else 1) from None


if __name__ == "__main__":
    main()
