"""One writer per run dir: an exclusive OS lock, held from the start of a run to its end.

Two processes writing one run dir interleave their records and race on the checkpoint (a requeued
job whose old copy still runs, the same command started twice). A run takes `fcntl.flock` on
`run.lock` in its run dir before it touches anything else there, and a second run on the same dir
stops at once, naming the holder. The kernel drops the lock when the holder's process dies, even by
SIGKILL, so a crashed run never blocks the rerun that resumes it. Under torchrun only rank 0 locks:
it is the only rank that writes.
"""

import fcntl
import functools
import json
import os
import socket
import time
from pathlib import Path

from bicameral.engine.distributed import process_rank
from bicameral.errors import BicameralError

LOCK_NAME = "run.lock"


class RunDirLocked(BicameralError, RuntimeError):
    """Another live process holds the run dir; the message names it and the fix."""


class RunDirUnwritable(BicameralError, OSError):
    """The run dir cannot take files; the message names it and the fix."""


def ensure_writable(run_dir: str | os.PathLike) -> None:
    """Fail before any work when the run dir cannot take files: made if missing, and a probe file written
    (a full disk creates a file, then fails to fill it) and removed."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write_test_{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
        finally:
            probe.unlink(missing_ok=True)
    except OSError as err:
        raise RunDirUnwritable(f"Output dir {run_dir} is not writable ({err.strerror or err}). "
                               "Fix: hydra.run.dir=<a writable folder>.") from None


class RunDirLock:
    """`with RunDirLock(run_dir):` holds the run dir's lock; leaving the block (or dying) releases it."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "RunDirLock":
        ensure_writable(self.run_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # close-on-exec: no child inherits it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunDirLocked(
                f"Run dir {self.run_dir} is in use by another run (pid {holder.get('pid', '?')} on host "
                f"{holder.get('host', '?')}, since {holder.get('since', '?')}). Fix: wait for that run to end or "
                "stop it, then rerun to resume; or give this run its own hydra.run.dir."
            ) from None
        self.fd = fd
        _write_holder(fd)
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the lock file stays: deleting it would let two runs lock two different files
            self.fd = None

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _write_holder(fd: int) -> None:
    """Who holds the lock, for the message a second run prints."""
    line = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n"
    os.pwrite(fd, line.encode(), 0)
    os.ftruncate(fd, len(line.encode()))  # written first, then trimmed: a reader never sees it empty


def _read_holder(fd: int) -> dict:
    try:
        first_line = os.pread(fd, 4096, 0).decode().splitlines()[0]
        return json.loads(first_line)
    except (OSError, IndexError, ValueError):  # the holder is between taking the lock and writing its name
        return {}


def holds_run_dir_lock(train):
    """Decorates `train(cfg, run_dir, ...)`: the run dir is locked for the whole call (rank 0 under torchrun)."""

    @functools.wraps(train)
    def locked(cfg, run_dir, *args, **kwargs):
        if process_rank() != 0:  # the other ranks (torchrun's or SLURM's) never write the run dir
            return train(cfg, run_dir, *args, **kwargs)
        with RunDirLock(run_dir):
            return train(cfg, run_dir, *args, **kwargs)

    return locked
