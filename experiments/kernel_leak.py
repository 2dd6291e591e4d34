"""How band-limited is the kernel the frequency path actually applies?

`irfft(W * mask)` passes only bins below the cutoff, but the kernel applied is that one cut to
`kernel_len` lags, and the cut spreads some energy above the cutoff. This trains a run through the
real engine with a callback (`KernelLeak`) that, just before each unlock widens the band, measures
the fraction of every channel's kernel energy at bins >= the cutoff it trained at
(bicameral.model.spectral.band_leak), averaged over channels and layers; likewise at initialisation. Per
level: mean ± sample std over seeds.

    python experiments/kernel_leak.py                                   # the study's achievement runs, 3 seeds
    python experiments/kernel_leak.py --seeds 0 --stop-at 60 -- +experiment=smoke   # any overrides after --
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from any cwd without an install

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import bicameral.engine.run  # noqa: E402
from bicameral.callbacks import Callback  # noqa: E402
from bicameral.config import register_configs  # noqa: E402
from bicameral.model.spectral import band_leak  # noqa: E402

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
STUDY = ["+experiment=study_controls", "+study=achievement"]  # the second study's budget and curriculum


@torch.no_grad()
def model_leak(model) -> float:
    """Mean over layers and channels of the applied kernels' energy fraction above the current cutoff."""
    cutoff, seq_len = model.cutoff, model.cfg.seq_len
    leaks = [band_leak(block.mixer.freq.kernel(), cutoff, seq_len) for block in model.blocks]  # (C,) each
    return torch.cat(leaks).mean().item()


class KernelLeak(Callback):
    """Records the kernels' leak at the start of training and just before every unlock widens the band."""

    def __init__(self):
        self.levels: list[dict] = []

    def on_fit_start(self, trainer) -> None:
        self.levels.append({"step": trainer.step, "cutoff": trainer.curriculum.cutoff, "trained": False,
                            "leak": model_leak(trainer.model)})

    def on_unlock_start(self, trainer, event) -> None:
        self.levels.append({"step": event.step, "cutoff": event.from_cutoff, "trained": True,
                            "leak": model_leak(trainer.model)})


def measure(overrides: list[str], seed: int, stop_at: int) -> list[dict]:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*overrides, f"seed={seed}", "trackers=local",
                                                       "trainer.ckpt=null", "trainer.resume=null"])
    if cfg.model.arch not in ("bicameral", "freq_only"):
        raise SystemExit(f"error: model.arch={cfg.model.arch} has no frequency path to measure.")
    leak = KernelLeak()
    with tempfile.TemporaryDirectory() as run_dir:
        bicameral.engine.run.train(cfg, run_dir, stop_at=stop_at, callbacks=[leak])
    return leak.levels


def summarise(runs: dict[int, list[dict]]) -> list[dict]:
    """One row per (cutoff, trained) over seeds: mean and sample std of the leak, and the steps measured."""
    rows: dict[tuple, dict] = {}
    for seed_levels in runs.values():
        for level in seed_levels:
            row = rows.setdefault((level["trained"], level["cutoff"]), {"cutoff": level["cutoff"],
                                                                         "trained": level["trained"],
                                                                         "steps": [], "leaks": []})
            row["steps"].append(level["step"])
            row["leaks"].append(level["leak"])
    for row in rows.values():
        row["mean"] = statistics.mean(row["leaks"])
        row["std"] = statistics.stdev(row["leaks"]) if len(row["leaks"]) > 1 else None
    return sorted(rows.values(), key=lambda r: (r["trained"], r["cutoff"]))


def table(rows: list[dict], n_bins: int) -> str:
    lines = [f"| kernels | cutoff (of {n_bins} bins) | steps | energy above the cutoff |", "| --- | --- | --- | --- |"]
    for row in rows:
        spread = f" ± {100 * row['std']:.2f}" if row["std"] is not None else ""
        steps = ", ".join(map(str, sorted(set(row["steps"]))))
        lines.append(f"| {'trained' if row['trained'] else 'at initialisation'} | {row['cutoff']} | {steps} | "
                     f"{100 * row['mean']:.2f}{spread} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="comma list (default 0,1,2)")
    parser.add_argument("--stop-at", type=int, default=160,
                        help="train this many steps: past the last unlock is enough (default 160)")
    parser.add_argument("--out", type=Path, default=None, help="write kernel_leak.json and .md here")
    parser.add_argument("overrides", nargs="*", help=f"Hydra overrides (default: {' '.join(STUDY)})")
    args = parser.parse_args(argv)
    overrides = args.overrides or STUDY
    runs = {int(s): measure(overrides, int(s), args.stop_at) for s in args.seeds.split(",")}
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        n_bins = compose(config_name="config", overrides=overrides).model.seq_len // 2 + 1
    rows = summarise(runs)
    text = table(rows, n_bins)
    print(f"kernel leak, {' '.join(overrides)}, seeds {args.seeds}, first {args.stop_at} steps:\n{text}")
    report = {"overrides": overrides, "stop_at": args.stop_at, "runs": runs, "levels": rows}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "kernel_leak.json").write_text(json.dumps(report, indent=1) + "\n")
        (args.out / "kernel_leak.md").write_text(f"`python experiments/kernel_leak.py {' '.join(argv or sys.argv[1:])}`"
                                                 f"\n\n{text}\n")
    return report


if __name__ == "__main__":
    main()
