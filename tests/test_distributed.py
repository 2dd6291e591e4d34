"""DDP under torchrun, two CPU processes with gloo: same unlocks at the same steps, same weights."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_two_ranks_unlock_together_and_end_identical(tmp_path, corpus_cache):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py",
           "+experiment=smoke", "logger=none", "trainer.device=cpu", "curriculum.unlock_threshold=5.2",
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
