"""Scale-out that works: two SLURM tasks (their environment alone, as the submitit launcher starts them) form one
gloo group in one run dir; torchrun without hydra.run.dir leaves one run dir; a 2-rank checkpoint resumes on 1."""

import json
import os
import socket
import subprocess
import sys

from tests.conftest import ROOT, read_jsonl

SMOKE = ["+experiment=smoke", "trackers=local", "trainer.device=cpu"]
TORCH_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE",
              "TORCHELASTIC_RUN_ID")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(corpus_cache) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in TORCH_VARS and not k.startswith("SLURM_")}
    return {**env, "XDG_CACHE_HOME": str(corpus_cache), "OMP_NUM_THREADS": "1"}


def test_two_slurm_tasks_form_one_group_in_one_run_dir(tmp_path, corpus_cache):
    port = free_port()
    tasks = []
    for rank in range(2):
        env = {**clean_env(corpus_cache), "SLURM_JOB_ID": "4242", "SLURM_NTASKS": "2", "SLURM_PROCID": str(rank),
               "SLURM_LOCALID": str(rank), "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "localhost",
               "SLURM_JOB_NUM_NODES": "1", "SLURM_NTASKS_PER_NODE": "2", "MASTER_PORT": str(port)}
        tasks.append(subprocess.Popen([sys.executable, "train.py", *SMOKE, "curriculum.unlock_threshold=5.2",
                                       f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [task.communicate(timeout=300)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert outputs[0].count("x 2 processes") == 1 and "Done: step 20" not in outputs[1]  # rank 0 alone reports
    finish = read_jsonl(tmp_path / "events.jsonl")[-1]
    rank0, rank1 = finish["ranks"]
    assert rank0["weights"] == rank1["weights"] and rank0["unlock_steps"] == rank1["unlock_steps"] != []


def torchrun(cwd, corpus_cache, nproc: int, *overrides) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(ROOT / "train.py"), *SMOKE, *overrides]
    return subprocess.run(cmd, cwd=cwd, env=clean_env(corpus_cache), capture_output=True, text=True, timeout=300)


def test_torchrun_without_a_run_dir_leaves_one(tmp_path, corpus_cache):
    proc = torchrun(tmp_path, corpus_cache, 2, "trainer.steps_per_epoch=5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dirs = [p.parent for p in (tmp_path / "outputs").rglob("train.log")]
    assert len(run_dirs) == 1 and (run_dirs[0] / "checkpoint.pt").is_file()
    assert len([p for p in (tmp_path / "outputs").rglob("*") if p.is_dir() and p.parent.parent.name == "outputs"]) == 1


def test_a_checkpoint_of_two_ranks_resumes_on_one(tmp_path, corpus_cache):
    run_dir = tmp_path / "run"
    stopped = torchrun(tmp_path, corpus_cache, 2, "trainer.stop_at=10", "trainer.ckpt_every=10",
                       f"hydra.run.dir={run_dir}")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    resumed = subprocess.run([sys.executable, "train.py", *SMOKE, f"hydra.run.dir={run_dir}"], cwd=ROOT,
                             env=clean_env(corpus_cache), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    lines = [line for line in resumed.stdout.splitlines() if "derived anew" in line]
    assert len(lines) == 1 and "of 2 processes and this run has 1" in lines[0] and "step 10" in lines[0]
    steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [5, 10, 15, 20]  # each step once, across the two world sizes
    finish = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])
    # tokens count each stretch at its own world size: 10 steps of 2 ranks, then 10 of 1
    assert finish["kind"] == "finish" and finish["step"] == 20
    last = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "train"][-1]
    assert last["tokens"] == 10 * 2 * 4 * 64 + 10 * 1 * 4 * 64
