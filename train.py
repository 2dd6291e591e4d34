"""Train the bicameral LM: python train.py [group=option ...] [key=value ...]"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bicameral.config import register_configs
from bicameral.run import train

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    summary = train(cfg, run_dir=HydraConfig.get().runtime.output_dir, stop_at=cfg.trainer.stop_at)
    return summary["final_val_loss"]  # what a Hydra sweeper minimises


if __name__ == "__main__":
    main()
