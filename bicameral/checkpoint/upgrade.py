"""Converting a checkpoint written before the safe format, once, by its owner:

    python -m bicameral.checkpoint upgrade OLD.pt NEW.pt --trust
"""

import argparse
import os
import sys
from pathlib import Path

import torch

from bicameral.checkpoint.format import REQUIRED_KEYS, CheckpointError, load_checkpoint, plain, save_checkpoint


def upgrade(old: str | os.PathLike, new: str | os.PathLike) -> None:
    """Rewrite an older checkpoint (numpy and tuple RNG states) as tensors and plain types.

    This unpickles `old` in full, which runs any code the file holds: for your own files only."""
    from bicameral.engine import rng

    state = torch.load(Path(old).expanduser(), map_location="cpu", weights_only=False)
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"Checkpoint {old} is not a bicameral checkpoint (missing {', '.join(missing)}).")
    if not isinstance(state["rng"]["python"], dict):  # still the pickled objects of the old format
        state["rng"] = rng.from_pickled(state["rng"])
    if "loop" not in state:  # the layout before every component saved its own state
        state = component_layout(state)
    save_checkpoint({k: plain(v, k) for k, v in state.items()}, new)  # e.g. a plug-in's numpy scalars
    load_checkpoint(new)  # the proof: it now loads with weights_only=True


def component_layout(old: dict) -> dict:
    """An old flat checkpoint in the layout of one entry per stateful component."""
    state = {k: v for k, v in old.items() if k not in ("skips", "windows", "extra")}
    state["loop"] = {"skips": old["skips"], "windows": old["windows"]}
    run_id = old.get("extra", {}).get("wandb_run_id")
    state["trackers"] = {"WandbTracker": {"wandb_run_id": run_id}} if run_id else {}
    state["spikes"] = {"open": None}  # not measured then
    # the LR schedule became a torch LRScheduler: its position is the step, its last LR the optimizer's
    lrs = [group["lr"] for group in old["optimizer"]["param_groups"]]
    state["schedule"] = {"cycle_start": old["schedule"]["cycle_start"], "last_epoch": old["step"],
                         "_step_count": old["step"] + 1, "_last_lr": lrs}
    for group in state["optimizer"]["param_groups"]:
        group.setdefault("initial_lr", group["lr"])
    return state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bicameral.checkpoint", description=upgrade.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade", help="convert an older checkpoint you wrote yourself to the safe format")
    up.add_argument("old")
    up.add_argument("new")
    up.add_argument("--trust", action="store_true", help="yes, unpickle OLD in full: I wrote it myself")
    args = parser.parse_args(argv)
    if not args.trust:
        raise CheckpointError(
            f"upgrade unpickles {args.old} in full, which runs any code the file holds. Fix: only for a checkpoint "
            f"you wrote yourself, rerun with --trust: python -m bicameral.checkpoint upgrade {args.old} {args.new} "
            "--trust"
        )
    upgrade(args.old, args.new)
    print(f"{args.new}: loads with weights_only=True", file=sys.stderr)
