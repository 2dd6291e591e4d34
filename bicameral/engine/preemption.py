"""Preemption: SIGTERM, SIGINT or SIGUSR2 asks training to stop after the current optimizer step.

The trainer then saves a checkpoint, logs `preempted at step N` and stops. A handler that was
installed before ours is called after the save: under the submitit launcher that is submitit's
SIGUSR2 handler (SLURM's warning before a timeout or preemption), which requeues the job; the
requeued job finds the checkpoint in its run dir and resumes (trainer.resume=auto).
"""

import signal
from types import FrameType

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: stopped on purpose, safe to run again
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class Preempted(Exception):
    def __init__(self, step: int):
        super().__init__(f"preempted at step {step}")
        self.step = step


class StopRequest:
    """Catches the stop signals while active; `signal` holds the first one received."""

    def __init__(self):
        self.signal: int | None = None
        self.previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.signal = signum

    def __enter__(self) -> "StopRequest":
        for sig in SIGNALS:
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay with whoever owns them
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def pass_on(self) -> None:
        """Hand the signal to the handler that was there before ours (e.g. submitit's requeue)."""
        handler = self.previous.get(self.signal)
        if callable(handler) and handler is not signal.default_int_handler:  # Python's own would just raise
            handler(self.signal, None)
