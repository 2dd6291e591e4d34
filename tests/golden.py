"""Golden numerics: per-step losses, unlock steps and final val loss of the smoke run per curriculum.

A refactor must reproduce these bit for bit on a machine that recorded them (the file holds one
recording per processor). Another processor may round float32 reductions differently, so there the
test compares with the first recording at a relative tolerance of 1e-6.

Record this processor's (only from code whose numerics are already trusted, e.g. the commit before a
refactor, or when a change is *meant* to move numerics: say so in the commit):
    python -m tests.golden
"""

import json
import platform
import tempfile
from pathlib import Path

import torch

from bicameral.engine.run import train
from tests.conftest import micro_config, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_FILE = ROOT / "tests" / "golden_losses.json"
CURRICULA = ("achievement", "fixed_threshold", "none", "step_schedule")
# log_every=1 logs every step's loss; the score window stays the smoke run's 5 steps
PER_STEP = ("trainer.log_every=1", "curriculum.score_window=5", "trainer.steps_per_epoch=40")
# bars the smoke model clears within 40 steps, so unlocks and LR restarts are covered too
UNLOCKING = {
    "achievement": ("curriculum.unlock_threshold=5.2",),
    "fixed_threshold": ("curriculum.thresholds=[5.0,4.5,4.0]",),
    "none": (),
    "step_schedule": ("curriculum.unlock_steps=[10,20,30]",),
}


def processor() -> str:
    """The CPU as float32 rounding sees it: model name, family, model and stepping, and the vector unit torch
    dispatches to. A name alone ("AMD EPYC") covers machines that round differently."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    detail = [f"{key} {fields[key]}" for key in ("cpu family", "model", "stepping") if key in fields]
    return f"{name} ({', '.join([*detail, torch.backends.cpu.get_cpu_capability()])})"


def smoke_run(curriculum: str, *extra: str) -> dict:
    """Train the smoke preset in a temporary run dir; its losses, unlock steps and final val loss."""
    cfg = micro_config(f"curriculum={curriculum}", "trainer.device=cpu", *extra)
    with tempfile.TemporaryDirectory() as run_dir:
        summary = train(cfg, run_dir)
        rows = read_jsonl(Path(run_dir) / "metrics.jsonl")
    return {
        "losses": [r["loss"] for r in rows if r["kind"] == "train"],
        "unlock_steps": summary["unlock_steps"],
        "final_val_loss": summary["final_val_loss"],
    }


def record_all() -> dict:
    runs = {}
    for curriculum in CURRICULA:
        runs[curriculum] = {
            "smoke": smoke_run(curriculum),
            "per_step": smoke_run(curriculum, *PER_STEP, *UNLOCKING[curriculum]),
        }
    return {"processor": processor(), "torch": torch.__version__, "runs": runs}


def recording_for(recordings: list[dict], cpu: str) -> tuple[dict, bool]:
    """This processor's recording and True, or the first one and False."""
    same = [r for r in recordings if r["processor"] == cpu]
    return (same[0], True) if same else (recordings[0], False)


if __name__ == "__main__":
    golden = record_all()
    others = [r for r in json.loads(GOLDEN_FILE.read_text())["recordings"] if r["processor"] != golden["processor"]]
    GOLDEN_FILE.write_text(json.dumps({"recordings": [*others, golden]}, indent=1) + "\n")
    print(f"wrote {GOLDEN_FILE} on {golden['processor']}")
