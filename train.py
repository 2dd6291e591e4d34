"""Train the bicameral LM: python train.py [group=option ...] [key=value ...]"""

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bicameral.config import register_configs
from bicameral.errors import BicameralError
from bicameral.run import train

register_configs()
log = logging.getLogger("bicameral")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    try:
        summary = train(cfg, run_dir=HydraConfig.get().runtime.output_dir, stop_at=cfg.trainer.stop_at)
    except BicameralError as err:  # bad input: one clear line, no traceback
        log.error(f"error: {err}")
        raise SystemExit(2) from None
    return summary["final_val_loss"]  # what a Hydra sweeper minimises


if __name__ == "__main__":
    main()
