"""bicameral-train (python train.py in a checkout): train the bicameral LM with Hydra overrides,
[group=option ...] [key=value ...]. The configs are the package's own (bicameral.conf), so an installed
bicameral-train runs from any directory."""

import atexit
import logging
import re
import shutil
import sys
import tempfile
import warnings

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bicameral.config import register_configs
from bicameral.engine.distributed import process_rank
from bicameral.engine.preemption import PREEMPTED_EXIT_CODE, Preempted
from bicameral.engine.run import train
from bicameral.errors import BicameralError, hydra_setup_errors_in_one_line
from bicameral.report.names import job_wandb_identity

register_configs()
log = logging.getLogger("bicameral")
RENAMED_PRESETS = {"seed": "reference", "seed_gpu": "reference_gpu"}  # "seed" means a random seed only
# the `logger` group became `trackers`, named for what it configures
RENAMED_TRACKER_OPTIONS = {"none": "local", "wandb": "wandb"}
# conf/hydra/launcher/submitit_*.yaml keep the plugin's names on purpose, so Hydra checks them
# against the plugin's schemas by name; that check is what this deprecation notice is about
warnings.filterwarnings("ignore", message=r"[\s\S]*is validated against ConfigStore schema with the same name")


@hydra.main(version_base="1.3", config_path="pkg://bicameral.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    preset = hydra_cfg.runtime.choices.get("experiment")
    if preset in RENAMED_PRESETS:
        log.warning(f"+experiment={preset} is now +experiment={RENAMED_PRESETS[preset]} (the same config); "
                    "the old name will go.")
    wandb = cfg.trackers.get("wandb")
    if multirun and wandb is not None:  # a W&B group per variant, so its seeds draw as a band; a tag per sweep
        identity = job_wandb_identity(hydra_cfg)
        wandb.group = wandb.group or identity["group"]
        wandb.name = wandb.name or identity["name"]
        wandb.tags.append(identity["tag"])
    try:
        summary = train(cfg, run_dir=hydra_cfg.runtime.output_dir, stop_at=cfg.trainer.stop_at)
    except Preempted:  # checkpointed; a scheduler may run the job again to resume it
        raise SystemExit(PREEMPTED_EXIT_CODE) from None
    except BicameralError as err:  # bad input: one clear line, no traceback
        log.error(f"error: {err}")
        if multirun:
            raise  # Hydra marks this job failed and still runs the others
        raise SystemExit(2) from None
    return summary["final_val_loss"]  # what a Hydra sweeper minimises


def renamed_overrides(args: list[str]) -> tuple[list[str], list[str]]:
    """The command line with the `logger` group's overrides in their `trackers` form, and a line per rename:
    logger=none -> trackers=local, logger.mode=online -> trackers.wandb.mode=online."""
    renamed, notes = [], []
    for arg in args:
        match = re.fullmatch(r"(\+{0,2}|~)logger(?:\.backend)?=(.*)", arg)
        key = re.fullmatch(r"(\+{0,2}|~)logger\.(\w[\w.]*)(=.*)?", arg)
        if match:
            choices = [RENAMED_TRACKER_OPTIONS.get(c.strip(), c.strip()) for c in match.group(2).split(",")]
            new = f"trackers={','.join(choices)}"
        elif key:
            new = f"{key.group(1)}trackers.wandb.{key.group(2)}{key.group(3) or ''}"
        else:
            renamed.append(arg)
            continue
        renamed.append(new)
        notes.append(f"{arg} is now {new} (the logger group is named trackers); the old form will go.")
    return renamed, notes


def away_from_the_run_dir(args: list[str]) -> list[str]:
    """A rank other than 0 (torchrun's, SLURM's) writes nothing in the run dir, which is rank 0's: without
    hydra.run.dir each rank's Hydra would make a timestamped dir of its own and leave it behind. Its Hydra
    output goes to a temporary dir, removed at exit; its console output is unchanged."""
    if process_rank() == 0 or any(a.startswith(("hydra.run.dir=", "-m", "--multirun")) for a in args):
        return args
    scratch = tempfile.mkdtemp(prefix="bicameral-rank-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return [*args, f"hydra.run.dir={scratch}", "hydra.output_subdir=null"]


def cli() -> None:
    """The console script's entry point."""
    sys.argv[1:], notes = renamed_overrides(sys.argv[1:])
    sys.argv[1:] = away_from_the_run_dir(sys.argv[1:])
    for note in notes:
        print(note, file=sys.stderr)
    with hydra_setup_errors_in_one_line(main):
        main()


if __name__ == "__main__":
    cli()
