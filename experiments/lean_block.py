"""Does a leaner bicameral block lose quality? Each lean option against today's block, paired over seeds.

    python experiments/lean_block.py [--seeds 0 1 2] [--out DIR] [overrides...]

Trains the default tiny model at the first study's budget (conf/budget/first_study.yaml: 400 steps x 16 x 256
tokens, AdamW at 1e-3) under curriculum=none, so the band is open from step 0 and no unlock or LR restart
differs between the blocks: the block is the only thing that changes. One run per option and seed, the same
seeds for every option (same data order; the initialisation differs where the parameters differ). Prints one
markdown row per option: parameters, multiply-adds per token at the small size, the FLOP ceiling against the
transformer at seq_len 1024 and 4096 (bicameral/model/flops.py), the mean final val loss, and the paired
difference against today's block with its 95% interval and n. Results go to DIR/lean_block.json.
"""

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from bicameral.model.config import ModelConfig
from bicameral.model.flops import flop_ceiling, total
from bicameral.model.lm import LanguageModel
from bicameral.report.paired import difference
from bicameral.report.runs import read_jsonl
from bicameral.report.tables import format_difference
from bicameral.tools.bench import model_config

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {"today": [], "conv_input": ["conv_input"], "head_gate": ["head_gate"], "shared_out": ["shared_out"],
           "all three": ["conv_input", "head_gate", "shared_out"]}
SMALL = model_config("small")  # conf/model/small.yaml, the size the FLOP columns count


def finish(run_dir: Path) -> dict | None:
    """The run's finish event, or None where it has not finished."""
    events = read_jsonl(run_dir / "events.jsonl")
    return events[-1] if events and events[-1].get("kind") == "finish" else None


def train(run_dir: Path, lean: list[str], seed: int, overrides: list[str]) -> dict:
    done = finish(run_dir)
    if done is None:
        cmd = [sys.executable, "train.py", "+budget=first_study", "curriculum=none", "trackers=local",
               f"model.lean=[{','.join(lean)}]", f"seed={seed}", *overrides, f"hydra.run.dir={run_dir}",
               "trainer.overwrite=true"]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        done = finish(run_dir)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="outputs/lean_block")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    losses: dict[str, dict[int, float]] = {}
    params: dict[str, int] = {}
    for name, lean in OPTIONS.items():
        losses[name] = {}
        for seed in args.seeds:
            done = train(out / "runs" / f"{name.replace(' ', '_')}-seed{seed}", lean, seed, args.overrides)
            losses[name][seed] = done["final_val_loss"]
            print(f"{name} seed {seed}: val {done['final_val_loss']:.4f} in {done['wall_time_s']:.0f}s", flush=True)
        # counted on the tiny model the runs trained
        params[name] = LanguageModel(replace(ModelConfig(), lean=lean)).num_params()
    rows = []
    print("\n| block | params (tiny) | multiply-adds/token (small, 1024) | FLOP ceiling vs transformer, 1024 | "
          "4096 | final val loss, mean | minus today's, paired [95% CI] | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for name, lean in OPTIONS.items():
        at = {T: replace(SMALL, seq_len=T, lean=lean) for T in (1024, 4096)}
        cell = None if name == "today" else difference(losses[name], losses["today"])
        row = {"block": name, "lean": lean, "params": params[name], "multiply_adds": total(at[1024]),
               "ceiling_1024": flop_ceiling(at[1024]), "ceiling_4096": flop_ceiling(at[4096]),
               "losses": losses[name], "mean": statistics.mean(losses[name].values()), "vs_today": cell}
        rows.append(row)
        print(f"| {name} | {row['params']:,} | {row['multiply_adds'] / 1e6:.2f}M | {row['ceiling_1024']:.2f}x | "
              f"{row['ceiling_4096']:.2f}x | {row['mean']:.4f} | {format_difference(cell, 4) if cell else '-'} "
              f"(n={cell['n'] if cell else len(losses[name])}) | {cell['verdict'] if cell else '-'} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "lean_block.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
