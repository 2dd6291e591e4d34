"""A BPE model beside a byte model on the same text, at equal training tokens, scored in bits per byte.

    python experiments/bpe_vs_bytes.py [--vocab-size 1024] [--seeds 0 1 2] [--out DIR] [overrides...]

Prepares the embedded corpus twice with bicameral-prepare (bytes; a BPE learnt on its train split), so both hold
out the same text, then trains the default tiny model on each, one run per seed (the same seeds on both sides),
with any Hydra overrides given. Both runs see the same number of tokens (steps x batch x seq_len); a BPE token
stands for ~2.4 bytes, so the BPE model reads ~2.4x the text and its context spans ~2.4x the bytes: that is what
a tokenizer buys, and it is a confound to name whenever this comparison is quoted. Nats per token do not compare
across tokenizers; bits per byte do. Prints one row per run, then the paired difference (BPE - bytes) in bits
per byte over seeds, with its 95% interval and n.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bicameral.report.paired import difference
from bicameral.report.tables import format_difference

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")


def finish(run_dir: Path) -> dict:
    return json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="outputs/bpe_vs_bytes")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    corpora = {"bytes": ["--tokenizer", "bytes"], f"bpe{args.vocab_size}": ["--tokenizer", "bpe", "--vocab-size",
                                                                            str(args.vocab_size)]}
    results: dict[str, dict[int, dict]] = {}
    for name, tokenizer in corpora.items():
        shards = out / "corpora" / name
        if not (shards / "meta.json").is_file():
            run([sys.executable, "-m", "bicameral.data.prepare", "shakespeare", "--out", str(shards), *tokenizer])
        train = json.loads((shards / "meta.json").read_text())["splits"]["train"]
        print(f"{name}: {train['tokens']:,} train tokens for {train['bytes']:,} bytes "
              f"({train['bytes'] / train['tokens']:.2f} bytes/token)", flush=True)
        results[name] = {}
        for seed in args.seeds:
            run_dir = out / "runs" / f"{name}-seed{seed}"
            if not (run_dir / "events.jsonl").is_file() or finish(run_dir).get("kind") != "finish":
                run([sys.executable, "train.py", "trackers=local", "data=tokens", f"data.path={shards}",
                     f"seed={seed}", *args.overrides, f"hydra.run.dir={run_dir}", "trainer.overwrite=true"])
            done = finish(run_dir)
            results[name][seed] = done
            print(f"  seed {seed}: val {done['final_val_loss']:.3f} nats/token, "
                  f"{done['final_val_bits_per_byte']:.3f} bits/byte, {done['wall_time_s']:.0f}s", flush=True)
    byte, bpe = (results[name] for name in corpora)
    cell = difference({s: r["final_val_bits_per_byte"] for s, r in bpe.items()},
                      {s: r["final_val_bits_per_byte"] for s, r in byte.items()})
    print(f"bits/byte, BPE - bytes, paired over seeds: {format_difference(cell)} (n={cell['n']}, {cell['verdict']})")


if __name__ == "__main__":
    main()
