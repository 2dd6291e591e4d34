"""The time-to-loss race: the transformer and the bicameral model trained through the real trainer for the same
wall-clock on the same corpus, and scored on the same held-out tokens.

    python -m bicameral.tools.race --data DIR [--seconds 45] [--size small] [--out race] [overrides...]

Three runs, one after another, on this machine: the transformer (curriculum=none), the bicameral model with
its band open from step 0 (curriculum=none) and under achievement mode (seq_len 1024: levels 128/256/512/513,
first bar 3.2). Each trains for --seconds of training wall-clock. The first step, which compiles the model, is
timed apart and left off that clock, as is every validation. About every --seconds/12 of training the run is
scored on the first --val-tokens tokens of the corpus's val split (the same tokens for every run), cut into
windows of the model's context. All three keep a constant LR after a short warmup: none of them knows how many
steps it will get, so no schedule could decay alike for both, and an unlock restarts nothing.

Reported per run: the curve (training seconds, val loss), the final val loss, steps and tokens, unlocks, the
compile seconds, and the trainer loop's own tokens/s (the median of its logged windows, the first one, which
holds the compilation, left out). The headline is the bicameral runs' training seconds to the transformer's
final val loss, over the transformer's seconds: below 1.0, the bicameral model got there sooner. One run each,
one seed: a single race, not a comparison over seeds.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from bicameral.engine.run import build_run, fit
from bicameral.report.runs import read_jsonl
from bicameral.tools.cli import program, run_tool
from bicameral.tools.time_to_loss import TimeToLoss, compose_config, first_reach, held_out_tokens

RUNS = {  # name -> overrides; {size} is --size, {transformer} the transformer of that size
    "transformer": ["model={transformer}", "curriculum=none"],
    "bicameral none": ["model={size}", "curriculum=none"],
    "bicameral achievement": ["model={size}", "curriculum=achievement"],
}
COMMON = ["trackers=local", "trainer.ckpt=null", "trainer.resume=null", "trainer.overwrite=true", "data=tokens",
          "schedule=constant", "schedule.warmup_steps=20", "optimizer.lr=1e-3", "optimizer.betas=[0.9,0.95]",
          "trainer.epochs=1", "trainer.steps_per_epoch=1000000", "trainer.val_every=1000000", "trainer.val_batches=1",
          "trainer.log_every=10"]
SCORES_PER_RUN = 12  # validations spread over the budget


class RaceClock(TimeToLoss):
    """TimeToLoss on a wall-clock budget: the first (compiling) step is timed apart, a validation is run every
    `budget / SCORES_PER_RUN` seconds of training, and the run stops once its training seconds reach `budget`."""

    def __init__(self, tokens: torch.Tensor, budget_s: float):
        super().__init__(tokens)
        self.budget_s = budget_s
        self.compile_s: float | None = None
        self.next_score = budget_s / SCORES_PER_RUN

    def _synchronize(self, trainer) -> None:
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)  # the clock reads the device's time, not the host's run-ahead

    def on_step_end(self, trainer) -> None:
        if trainer.step == 1:
            self._synchronize(trainer)
            now = time.perf_counter()
            self.compile_s = now - self.clock_start
            self.clock_start = now  # training seconds count from here
            return
        seconds = time.perf_counter() - self.clock_start - self.paused
        if seconds >= self.budget_s:
            trainer.request_stop(f"the race's wall-clock budget of {self.budget_s:g}s")  # it validates on stopping
        elif seconds >= self.next_score:
            self.next_score += self.budget_s / SCORES_PER_RUN
            trainer.validate()

    def on_validation_start(self, trainer) -> None:
        self._synchronize(trainer)
        super().on_validation_start(trainer)


def trainer_tokens_per_s(run_dir: Path) -> float | None:
    """The median of the trainer's logged tokens/s, the first window (with the compilation) left out."""
    rates = [r["tokens_per_s"] for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("kind") == "train"][1:]
    return statistics.median(rates) if rates else None


def race_one(name: str, overrides: list[str], tokens: torch.Tensor, budget_s: float, run_dir: Path) -> dict:
    cfg = compose_config(overrides)
    clock = RaceClock(tokens, budget_s)
    run = build_run(cfg, run_dir, callbacks=[clock])
    if run.trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(run.trainer.device)
    summary = fit(run)
    curve = clock.curve
    return {
        "name": name, "overrides": overrides, "seq_len": cfg.model.seq_len, "params": run.model.num_params(),
        "compile_seconds": clock.compile_s, "train_seconds": curve[-1]["seconds"], "steps": summary["step"],
        "tokens": curve[-1]["tokens"], "unlock_steps": summary["unlock_steps"], "final_cutoff": summary["final_cutoff"],
        "final_val_loss": curve[-1]["val_loss"], "trainer_tokens_per_s": trainer_tokens_per_s(run_dir),
        "peak_memory_gb": (torch.cuda.max_memory_allocated(run.trainer.device) / 2**30
                           if run.trainer.device.type == "cuda" else None),
        "curve": curve,
    }


def headline(report: dict) -> list[dict]:
    """Each bicameral run against the transformer: seconds to its final val loss, and the losses at the end."""
    transformer = report["runs"]["transformer"]
    target, seconds = transformer["final_val_loss"], transformer["train_seconds"]
    rows = []
    for name, run in report["runs"].items():
        if name == "transformer":
            continue
        reached = first_reach(run["curve"], target)
        rows.append({"run": name, "target_val_loss": target, "seconds_to_target": reached,
                     "wall_clock_ratio": reached / seconds if reached is not None else None,
                     "final_val_loss_minus_transformer": run["final_val_loss"] - target,
                     "trainer_tokens_per_s_ratio": (run["trainer_tokens_per_s"] / transformer["trainer_tokens_per_s"]
                                                    if run["trainer_tokens_per_s"] and
                                                    transformer["trainer_tokens_per_s"] else None)})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog=program("bicameral.tools.race"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a token shard folder (bicameral-prepare ... --out DIR)")
    parser.add_argument("--seconds", type=float, default=45.0, help="training wall-clock of each run")
    parser.add_argument("--size", default="small", help="conf/model size: tiny, small or base")
    parser.add_argument("--val-tokens", type=int, default=262144, help="held-out tokens every run is scored on")
    parser.add_argument("--out", default="race", help="folder for race.json and the runs")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, e.g. trainer.batch_size=32")
    args = parser.parse_args(argv)
    data = Path(args.data).resolve()
    if not (data / "meta.json").is_file():
        raise SystemExit(f"--data {data} holds no meta.json. Fix: prepare it first, e.g. "
                         f"python experiments/race_corpus.py --out {args.data}")
    out = Path(args.out).resolve()
    common = [*COMMON, f"data.path={data}", *args.overrides]
    tokens = held_out_tokens(compose_config([*common, f"model={args.size}"]), args.val_tokens)
    report = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
              "torch": torch.__version__, "budget_seconds": args.seconds, "val_tokens": args.val_tokens,
              "data": str(data), "common_overrides": common, "runs": {}}
    for name, extra in RUNS.items():
        transformer = "transformer" if args.size == "tiny" else f"transformer_{args.size}"  # conf/model/
        overrides = [*common, *(o.format(size=args.size, transformer=transformer) for o in extra)]
        run = race_one(name, overrides, tokens, args.seconds, out / name.replace(" ", "_"))
        report["runs"][name] = run
        print(f"{name}: val {run['final_val_loss']:.4f} after {run['train_seconds']:.1f}s of training "
              f"({run['steps']} steps, compile {run['compile_seconds']:.1f}s apart, trainer "
              f"{run['trainer_tokens_per_s'] or 0:,.0f} tok/s, unlocks at {run['unlock_steps']})", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / "race.json").write_text(json.dumps(report, indent=1))  # a run cut off by a budget keeps the others
    report["headline"] = headline(report)
    for row in report["headline"]:
        ratio = row["wall_clock_ratio"]
        reached = (f"reached the transformer's {row['target_val_loss']:.4f} at {ratio:.2f}x its wall-clock"
                   if ratio is not None else f"did not reach the transformer's {row['target_val_loss']:.4f}")
        print(f"{row['run']}: {reached}; final val loss {row['final_val_loss_minus_transformer']:+.4f} against it "
              f"(one run each)")
    (out / "race.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out / 'race.json'}")
    return report


def cli() -> None:
    run_tool(main)


if __name__ == "__main__":
    cli()
