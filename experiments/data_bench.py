"""Does training on shards stay flat in memory, and does window sampling keep up with the model?

    python experiments/data_bench.py [--big-gb 2] [--small-mb 20] [--steps 200] [--out DIR]

1. Memory: the same training run (the default tiny model, `--steps` steps, checkpoints and validation on) on a
   shard set of `--small-mb` and on one of `--big-gb`, each in its own process; peak RSS of each, from the
   kernel's accounting of that process alone (os.wait4). Goal: the big set within 300 MB of the small one.
2. Sampling: random training windows drawn from the big set's memory maps (batch 8, seq_len 128, as the tiny
   model trains), windows per second against the tiny model's training steps per second measured in run 1.
   Goal: at least 20x.

The shard sets are random byte tokens in bicameral's own format (uint16, so the big one holds 1G tokens), written
once under --out and reused.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bicameral.data import shard_format as fmt
from bicameral.data.batches import TrainBatches
from bicameral.data.shards import open_shards

ROOT = Path(__file__).resolve().parents[1]
SHARD_TOKENS = 100_000_000  # 200 MB uint16 shards, as a prepare of a large corpus writes them
CHUNK = 10_000_000


def write_random_shards(folder: Path, n_bytes: int, seed: int = 0) -> Path:
    """A shard set of n_bytes of uint16 random byte tokens (val 1%), unless it is already there."""
    if (folder / fmt.META_FILE).is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    total = n_bytes // 2
    counts = {"val": max(total // 100, 100_000)}
    counts["train"] = total - counts["val"]
    splits, digests = {}, []
    for split, n in counts.items():
        shards = []
        for index, first in enumerate(range(0, n, SHARD_TOKENS)):
            size, digest = min(SHARD_TOKENS, n - first), hashlib.sha1()
            with open(folder / fmt.shard_name(split, index), "wb") as f:
                for start in range(0, size, CHUNK):
                    chunk = rng.integers(0, 256, min(CHUNK, size - start), dtype=np.uint16).tobytes()
                    f.write(chunk)
                    digest.update(chunk)
            shards.append({"file": fmt.shard_name(split, index), "tokens": size, "sha1": digest.hexdigest()})
            digests.append(digest.hexdigest())
        splits[split] = {"shards": shards, "tokens": n, "bytes": n, "documents": 1}
    meta = {"format": fmt.FORMAT_NAME, "version": fmt.FORMAT_VERSION, "tokenizer": {"kind": "bytes"},
            "vocab_size": 256, "dtype": "uint16", "splits": splits,
            "content_sha1": hashlib.sha1("".join(digests).encode()).hexdigest(), "val_fraction": 0.01,
            "sources": ["random"], "created_by": "experiments/data_bench.py"}
    (folder / fmt.META_FILE).write_text(json.dumps(meta))
    return folder


def train_peak_rss(shards: Path, steps: int, run_dir: Path) -> tuple[float, float]:
    """(peak RSS in MB, training steps per second) of one training run in its own process."""
    cmd = [sys.executable, "train.py", "trackers=local", "trainer.device=cpu", "data=tokens", f"data.path={shards}",
           f"trainer.steps_per_epoch={steps}", "trainer.val_every=100", f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"training on {shards} failed:\n{proc.stderr.read()[-2000:]}")
    done = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])
    return usage.ru_maxrss / 1024, steps / done.get("wall_time_s", wall)


def windows_per_second(shards: Path, batch_size: int = 8, seq_len: int = 128, seconds: float = 5.0) -> float:
    batches = TrainBatches(open_shards(shards).train, batch_size, seq_len, seed=0)
    drawn, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batches.next()
        drawn += batch_size
    return drawn / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-gb", type=float, default=2.0)
    parser.add_argument("--small-mb", type=float, default=20.0)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bicameral-data-bench"))
    args = parser.parse_args()
    out = Path(args.out)
    small = write_random_shards(out / "small", int(args.small_mb * 2**20))
    big = write_random_shards(out / "big", int(args.big_gb * 2**30))
    sizes = {name: sum(p.stat().st_size for p in folder.glob("*.bin")) / 2**20 for name, folder in
             (("small", small), ("big", big))}
    print(f"torch {torch.__version__}, {os.cpu_count()} cores; shard sets: small {sizes['small']:.0f} MB, "
          f"big {sizes['big']:.0f} MB")

    with tempfile.TemporaryDirectory() as runs:
        rss = {}
        for name, folder in (("small", small), ("big", big)):
            rss[name], steps_per_s = train_peak_rss(folder, args.steps, Path(runs) / name)
            print(f"train on {name:5s} ({sizes[name]:7.0f} MB): peak RSS {rss[name]:6.0f} MB, "
                  f"{steps_per_s:5.1f} steps/s")
    extra = rss["big"] - rss["small"]
    print(f"memory: the {sizes['big'] / 1024:.1f} GB set costs {extra:+.0f} MB of peak RSS over the "
          f"{sizes['small']:.0f} MB set (goal: within 300 MB) -> {'met' if extra <= 300 else 'NOT met'}")

    rate = windows_per_second(big)
    ratio = rate / steps_per_s
    print(f"sampling: {rate:,.0f} windows/s (seq_len 128) from the big set's maps, {ratio:,.0f}x the tiny model's "
          f"{steps_per_s:.1f} training steps/s (goal: >= 20x) -> {'met' if ratio >= 20 else 'NOT met'}; "
          f"{rate / 8 / steps_per_s:,.0f}x in batches of 8")


if __name__ == "__main__":
    main()
