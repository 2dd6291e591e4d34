"""DDP under torchrun, two CPU processes with gloo: same unlocks at the same steps, same weights; a stopped rank
ends the run within trainer.dist_timeout_s."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bicameral.checkpoint.format import load_checkpoint
from bicameral.engine.preemption import PREEMPTED_EXIT_CODE
from tests.conftest import ROOT


def test_two_ranks_unlock_together_and_end_identical(tmp_path, corpus_cache):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py",
           "+experiment=smoke", "trackers=local", "trainer.device=cpu", "curriculum.unlock_threshold=5.2",
           "trainer.accum_steps=2", f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "XDG_CACHE_HOME": str(corpus_cache), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("Done: step 20") == 1 and "x 2 processes" in proc.stdout  # rank 0 alone reports

    finish = json.loads((tmp_path / "events.jsonl").read_text().splitlines()[-1])
    rank0, rank1 = finish["ranks"]
    assert rank0["unlock_steps"] == rank1["unlock_steps"] == finish["unlock_steps"] != []
    assert rank0["weights"] == rank1["weights"]
    assert (tmp_path / "checkpoint.pt").is_file()


def rank_pid(marker: str, rank: int) -> int | None:
    """The pid of the worker with RANK=rank among the processes whose environment holds `marker`."""
    for proc in Path("/proc").iterdir():
        try:
            env = dict(item.split("=", 1) for item in (proc / "environ").read_text().split("\0") if "=" in item)
        except (OSError, ValueError):
            continue
        if env.get("BICAMERAL_TEST_MARKER") == marker and env.get("RANK") == str(rank) and "LOCAL_RANK" in env:
            return int(proc.name)
    return None


def launch(tmp_path, corpus_cache, *overrides) -> subprocess.Popen:
    """A long gloo run of two ranks under bicameral.tools.launch, in its own process group."""
    cmd = [sys.executable, "-m", "bicameral.tools.launch", "--standalone", "--nproc_per_node=2", "train.py",
           "+experiment=smoke", "trackers=local", "trainer.device=cpu", "trainer.epochs=200", *overrides,
           f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "XDG_CACHE_HOME": str(corpus_cache), "OMP_NUM_THREADS": "1",
           "BICAMERAL_TEST_MARKER": str(tmp_path)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for_a_checkpoint(proc: subprocess.Popen, run_dir: Path) -> None:
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoint.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before the test could stop it"


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_stopped_rank_ends_every_rank_within_the_timeout(tmp_path, corpus_cache):
    """SIGSTOP rank 1 mid-run: rank 0 gives up after trainer.dist_timeout_s with one line and a failed record,
    and the checkpoint it leaves resumes."""
    proc = launch(tmp_path, corpus_cache, "trainer.dist_timeout_s=3", "trainer.ckpt_every=5")
    stopped = None
    try:
        wait_for_a_checkpoint(proc, tmp_path)
        rank0, stopped = rank_pid(str(tmp_path), rank=0), rank_pid(str(tmp_path), rank=1)
        os.kill(stopped, signal.SIGSTOP)
        since = time.monotonic()
        while alive(rank0) and time.monotonic() - since < 60:
            time.sleep(0.2)
        waited = time.monotonic() - since
    finally:  # torchrun would wait 30 s more for the stopped rank before it kills it
        if stopped is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped, signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    output, _ = proc.communicate(timeout=60)
    assert waited < 30, output[-3000:]
    line = next(line for line in output.splitlines() if line.startswith("error: Rank 0 lost the other ranks"))
    assert "Timed out" in line and "trainer.dist_timeout_s=3" in line and "the last good checkpoint is" in line
    last = json.loads((tmp_path / "events.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "failed" and "lost the other ranks" in last["error"]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] >= 5


# slow: tests/unit/test_launch.py checks the launcher's exit codes in the default suite
@pytest.mark.slow
def test_a_stop_signal_to_the_launcher_saves_and_exits_75(tmp_path, corpus_cache):
    proc = launch(tmp_path, corpus_cache)
    try:
        wait_for_a_checkpoint(proc, tmp_path)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == PREEMPTED_EXIT_CODE, output[-3000:]
    assert "Traceback" not in output and output.rstrip().endswith(
        "bicameral.tools.launch: stopped by SIGTERM; the ranks saved, run again to resume")
    last = json.loads((tmp_path / "events.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "preempted" and load_checkpoint(tmp_path / "checkpoint.pt")["step"] == last["step"]
