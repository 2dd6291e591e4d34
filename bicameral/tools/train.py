"""bicameral-train (python train.py in a checkout): train the bicameral LM with Hydra overrides,
[group=option ...] [key=value ...]. The configs are the package's own (bicameral.conf), so an installed
bicameral-train runs from any directory."""

import logging
import warnings

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bicameral.config import register_configs
from bicameral.errors import BicameralError, hydra_setup_errors_in_one_line
from bicameral.preemption import PREEMPTED_EXIT_CODE, Preempted
from bicameral.report.names import job_wandb_identity
from bicameral.run import train

register_configs()
log = logging.getLogger("bicameral")
RENAMED_PRESETS = {"seed": "reference", "seed_gpu": "reference_gpu"}  # "seed" means a random seed only
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
    if multirun:  # W&B: a group per variant, so its seeds draw as a band; a tag per sweep; runs named by overrides
        identity = job_wandb_identity(hydra_cfg)
        cfg.logger.group = cfg.logger.group or identity["group"]
        cfg.logger.name = cfg.logger.name or identity["name"]
        cfg.logger.tags.append(identity["tag"])
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


def cli() -> None:
    """The console script's entry point."""
    with hydra_setup_errors_in_one_line(main):
        main()


if __name__ == "__main__":
    cli()
