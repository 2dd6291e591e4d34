"""bicameral-prepare's throughput (MB/s of input text) and peak memory, by tokenizer and worker count.

    python experiments/prepare_bench.py [--mb 50] [--workers 1 2] [--out DIR]

The input is --mb of text made from the embedded corpus's lines, shuffled with a fixed seed, in 10 files; a
tenth of it is prepared too, so flat memory shows as the same peak RSS at 10x the input. Each prepare runs in
its own process (its peak RSS from the kernel, os.wait4, workers included). The BPE (1024 ids) is learnt once on
the small input and then passed as a tokenizer file, so the timings are of encoding and writing alone.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bicameral.data.corpus import shakespeare_text

ROOT = Path(__file__).resolve().parents[1]


def make_corpus(folder: Path, megabytes: float, files: int = 10, seed: int = 0) -> Path:
    if folder.is_dir():
        return folder
    folder.mkdir(parents=True)
    lines = shakespeare_text().splitlines(keepends=True)
    rng = random.Random(seed)
    per_file = int(megabytes * 2**20 / files)
    for i in range(files):
        with open(folder / f"part{i:02d}.txt", "w", encoding="utf-8") as f:
            written = 0
            while written < per_file:
                line = rng.choice(lines)
                f.write(line)
                written += len(line.encode("utf-8"))
    return folder


def prepare(inputs: Path, out: Path, workers: int, tokenizer: str) -> tuple[float, float]:
    """(seconds, peak RSS MB of the prepare or its largest worker: wait4 reports the child with the children it
    reaped)."""
    cmd = [sys.executable, "-m", "bicameral.data.prepare", str(inputs), "--out", str(out), "--overwrite",
           "--workers", str(workers), "--tokenizer", tokenizer]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bicameral-prepare-bench"))
    args = parser.parse_args()
    out = Path(args.out)
    big = make_corpus(out / f"text{args.mb:g}", args.mb)
    small = make_corpus(out / f"text{args.mb / 10:g}", args.mb / 10)
    bpe = out / "bpe"
    subprocess.run([sys.executable, "-m", "bicameral.data.prepare", str(small), "--out", str(bpe), "--overwrite",
                    "--tokenizer", "bpe", "--vocab-size", "1024"], cwd=ROOT, check=True, capture_output=True)
    print(f"{os.cpu_count()} cores; inputs {args.mb:g} MB and {args.mb / 10:g} MB of text")
    print(f"{'tokenizer':10s} {'workers':>7s} {'input MB':>8s} {'seconds':>8s} {'MB/s':>6s} {'peak RSS MB':>11s}")
    for name, tokenizer in (("bytes", "bytes"), ("bpe1024", str(bpe / "tokenizer.json"))):
        for workers in args.workers:
            for inputs, mb in ((small, args.mb / 10), (big, args.mb)):
                seconds, rss = prepare(inputs, out / "shards", workers, tokenizer)
                print(f"{name:10s} {workers:7d} {mb:8.1f} {seconds:8.1f} {mb / seconds:6.1f} {rss:11.0f}", flush=True)


if __name__ == "__main__":
    main()
