"""Time to loss: the default bicameral run against nanoGPT's CPU "baby GPT" recipe, side by side.

Both trainings go through the real engine (`bicameral.engine.run.train`) in this process, on the same
machine and corpus, with a callback (`TimeToLoss`) that scores every model at each validation on the
same held-out tokens (the head of the val split), cut into windows of its own context; the seconds
spent validating are left off the clock of both. The result is val loss against training wall-clock
seconds, and the ratio of (b)'s seconds to first reach (a)'s final val loss over (a)'s seconds.

    python experiments/time_to_loss.py                      # ~7 min on 2 cores
    python experiments/time_to_loss.py --quick              # < 1 min: the fields, not the numbers
    python experiments/time_to_loss.py --variant "trainer.batch_size=8" --variant "model.seq_len=128"
    python experiments/time_to_loss.py --until-target ...   # each bicameral run stops at the peer's loss
"""

import argparse
import json
import shlex
import tempfile
import textwrap
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module

import bicameral.engine.run
from bicameral.callbacks import Callback
from bicameral.config import register_configs
from bicameral.engine.build import build_data
from bicameral.engine.events import ValResult

# The optimizer and LR schedule of the peer recipe, in the engine's config keys. Kept in one place:
# these keys are the ones that move when the optimizer/schedule config changes shape.
PEER_OPTIMIZER = {
    "optimizer": "adamw",
    "optimizer.lr": 1e-3,
    "optimizer.betas": "[0.9,0.99]",
    "optimizer.weight_decay": 0.1,
    "schedule": "cosine_restarts",
    "schedule.min_lr_ratio": 0.1,  # cosine to 1e-4
    "schedule.warmup_steps": 100,
}
# nanoGPT's CPU "baby GPT" (config/train_shakespeare_char.py, CPU line of its README) on our transformer
PEER = {
    "model": "transformer",
    "model.seq_len": 64,
    "model.d_model": 128,
    "model.n_layers": 4,
    "model.n_heads": 4,
    "model.dropout": 0.0,
    "curriculum": "none",
    "trainer.batch_size": 12,
    "trainer.accum_steps": 1,
    "trainer.epochs": 1,
    "trainer.steps_per_epoch": 2000,
    "trainer.grad_clip": 1.0,
    **PEER_OPTIMIZER,
}
# Both runs: CPU, no W&B, no checkpoints (disk time is not what is compared); the engine's own validation
# is off the clock too, and one batch of it is enough, since the shared held-out tokens are what is compared
COMMON = {"trackers": "local", "trainer.device": "cpu", "trainer.ckpt": "null", "trainer.resume": "null",
          "trainer.val_batches": 1}
QUICK_STEPS = {"peer": 20, "ours": 10}


def overrides(values: dict) -> list[str]:
    return [f"{key}={value}" for key, value in values.items()]


def compose_config(extra: list[str]):
    register_configs()
    with initialize_config_module(config_module="bicameral.conf", version_base="1.3"):
        return compose(config_name="config", overrides=extra)


def held_out_tokens(cfg, n_tokens: int) -> torch.Tensor:
    """The first n_tokens + 1 tokens of the val split: the same for every model, whatever its seq_len."""
    data = build_data(cfg.data, cfg.model.seq_len)
    if len(data.val) < n_tokens + 1:
        raise ValueError(f"--val-tokens {n_tokens} exceeds the {len(data.val) - 1} held-out tokens. Fix: fewer.")
    return data.val.head(n_tokens + 1)


@torch.no_grad()
def windowed_loss(model, tokens: torch.Tensor, seq_len: int, batch_size: int = 64) -> tuple[float, float]:
    """Mean next-token loss (and gate share) over all of `tokens`, cut into non-overlapping windows of seq_len."""
    n = (len(tokens) - 1) // seq_len
    x = tokens[: n * seq_len].view(n, seq_len)  # (n, T)
    y = tokens[1 : n * seq_len + 1].view(n, seq_len)
    loss, share = 0.0, 0.0
    # the tokens stay on the host; a batch at a time goes to the model's device
    device = next((p.device for p in model.parameters()), tokens.device)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        out = model(xb.to(device), yb.to(device))
        loss, share = loss + out.loss.item() * len(xb), share + out.freq_share.item() * len(xb)
    return loss / n, share / n


class TimeToLoss(Callback):
    """Scores the shared held-out tokens at every validation, off the training clock, into `curve`; with
    `stop_below`, it ends the run at the first validation at or below that loss (the time to it is all
    that is compared, so the rest of the run would only cost minutes)."""

    def __init__(self, tokens: torch.Tensor, stop_below: float | None = None):
        self.tokens, self.stop_below = tokens, stop_below
        self.curve: list[dict] = []

    def on_fit_start(self, trainer) -> None:
        self.clock_start, self.paused, self.paused_at = time.perf_counter(), 0.0, None

    def on_validation_start(self, trainer) -> None:
        self.paused_at = time.perf_counter()

    def on_validation_end(self, trainer, result: ValResult) -> None:
        seconds = self.paused_at - self.clock_start - self.paused
        val_loss, _ = windowed_loss(trainer.model, self.tokens, trainer.model.cfg.seq_len)
        self.curve.append({"step": trainer.step, "seconds": seconds, "tokens": trainer.tokens_at(trainer.step),
                           "val_loss": val_loss, "cutoff": trainer.curriculum.cutoff})
        if self.stop_below is not None and val_loss <= self.stop_below:
            trainer.request_stop(f"val loss {val_loss:.3f} reached the target {self.stop_below:.3f}")
        self.paused += time.perf_counter() - self.paused_at


def run_one(name: str, extra: list[str], tokens: torch.Tensor, stop_below: float | None = None) -> dict:
    """Train one configuration through the engine; its val-loss curve against training seconds."""
    cfg = compose_config(extra)
    timer = TimeToLoss(tokens, stop_below)
    with tempfile.TemporaryDirectory() as run_dir:
        summary = bicameral.engine.run.train(cfg, run_dir, callbacks=[timer])
    curve = timer.curve
    return {"name": name, "overrides": extra, "seq_len": cfg.model.seq_len, "steps": summary["step"],
            "tokens_per_step": cfg.trainer.batch_size * cfg.trainer.accum_steps * cfg.model.seq_len,
            "unlock_steps": summary["unlock_steps"], "final_val_loss": curve[-1]["val_loss"],
            "seconds": curve[-1]["seconds"], "curve": curve}


def first_reach(curve: list[dict], target: float) -> float | None:
    """Training seconds at the first validation at or below target; None if never."""
    return next((p["seconds"] for p in curve if p["val_loss"] <= target), None)


def compare(peer: dict, ours: dict) -> dict:
    reached = first_reach(ours["curve"], peer["final_val_loss"])
    return {"target_val_loss": peer["final_val_loss"], "seconds_to_target": reached,
            "wall_clock_ratio": reached / peer["seconds"] if reached is not None else None}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    target = report["peer"]["final_val_loss"]
    for run in (report["peer"], *report["ours"]):
        # a variant's name is its overrides: wrapped, so a long one never squeezes the axes
        label = textwrap.fill(f"{run['name']} (final {run['final_val_loss']:.3f})", width=60)
        ax.plot([p["seconds"] for p in run["curve"]], [p["val_loss"] for p in run["curve"]], marker=".", label=label)
    ax.axhline(target, color="gray", linestyle=":", label=f"peer final {target:.3f}")
    ax.set_xlabel("training wall-clock seconds (validation excluded)")
    ax.set_ylabel("val loss, nats/token (same held-out tokens)")
    ax.set_ylim(top=min(4.0, ax.get_ylim()[1]))
    threads = report["threads"]
    ax.set_title(f"time to loss on {threads} CPU thread{'' if threads == 1 else 's'}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps of each: checks the script, not the claim")
    parser.add_argument("--variant", action="append", default=None,
                        help="Hydra overrides for an extra bicameral run, space separated (repeatable)")
    parser.add_argument("--no-default", action="store_true", help="skip the unmodified default run (variants only)")
    parser.add_argument("--val-tokens", type=int, default=None, help="held-out tokens scored (default 16384)")
    parser.add_argument("--peer-val-every", type=int, default=100)
    parser.add_argument("--ours-val-every", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for both runs (default: torch's). On a shared machine 1 thread "
                             "avoids OpenMP spinning against other jobs")
    parser.add_argument("--until-target", action="store_true",
                        help="stop each bicameral run once it reaches the peer's final val loss (the ratio is the "
                             "same; the runs' final losses are then their losses at the target)")
    parser.add_argument("--out", default="time_to_loss", help="folder for time_to_loss.json and .png")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    peer_extra, ours_extra = overrides({**PEER, **COMMON}), overrides(COMMON)
    val_every = {"peer": args.peer_val_every, "ours": args.ours_val_every}
    val_tokens = args.val_tokens or (1024 if args.quick else 16384)
    if args.quick:
        peer_extra.append(f"trainer.steps_per_epoch={QUICK_STEPS['peer']}")
        ours_extra.append(f"trainer.steps_per_epoch={QUICK_STEPS['ours']}")
        val_every = {"peer": 10, "ours": 5}
    peer_extra.append(f"trainer.val_every={val_every['peer']}")
    ours_extra.append(f"trainer.val_every={val_every['ours']}")
    variants = ([] if args.no_default else [("bicameral default", [])]) + [
        (f"bicameral {v}", shlex.split(v)) for v in (args.variant or [])]
    if not variants:
        parser.error("--no-default leaves nothing to compare. Fix: add --variant '...'.")

    tokens = held_out_tokens(compose_config(ours_extra), val_tokens)
    report = {"threads": torch.get_num_threads(), "torch": torch.__version__, "val_tokens": val_tokens,
              "quick": args.quick, "until_target": args.until_target}
    report["peer"] = run_one("peer: nanoGPT baby GPT recipe", peer_extra, tokens)
    report["ours"] = []
    target = report["peer"]["final_val_loss"] if args.until_target else None
    for name, extra in variants:
        run = run_one(name, ours_extra + extra, tokens, stop_below=target)
        run.update(compare(report["peer"], run))
        report["ours"].append(run)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "time_to_loss.json").write_text(json.dumps(report, indent=1))
    plot(report, out / "time_to_loss.png")
    peer = report["peer"]
    print(f"\npeer {peer['name']}: val {peer['final_val_loss']:.3f} after {peer['seconds']:.0f}s "
          f"({peer['steps']} steps)")
    for run in report["ours"]:
        ratio = run["wall_clock_ratio"]
        reached = f"reaches {peer['final_val_loss']:.3f} at {ratio:.2f}x the peer's wall-clock" if ratio else \
            f"does not reach {peer['final_val_loss']:.3f}"
        print(f"{run['name']}: val {run['final_val_loss']:.3f} after {run['seconds']:.0f}s "
              f"({run['steps']} steps, unlocks at {run['unlock_steps']}); {reached}")
    print(f"wrote {out / 'time_to_loss.json'} and {out / 'time_to_loss.png'}")
    return report


if __name__ == "__main__":
    main()
