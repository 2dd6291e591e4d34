"""Config schemas, registered in Hydra's ConfigStore.

Each group's YAML files start from one of these schemas (`defaults: [base_<group>, _self_]`),
so a misspelt key or a wrong type fails at start with the key's name. `check_config` then
catches values that have the right type but cannot work (zero steps, negative lr...).
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from bicameral.errors import BicameralError
from bicameral.model import HAS_FREQUENCY_PATH, MIXERS, ModelConfig


@dataclass
class DataConfig:
    source: str = "shakespeare"  # "shakespeare" (embedded) or "text_file"
    path: str | None = None  # file or folder, for source=text_file
    cache_dir: str | None = None  # token cache; None = $XDG_CACHE_HOME/bicameral
    val_fraction: float = 0.05  # tail of the corpus held out for validation


@dataclass
class CurriculumConfig:
    name: str = MISSING  # achievement | fixed_threshold | none | step_schedule
    levels: list[int] | None = None  # cutoffs in bins; None = [n/8, n/4, n/2, full] for seq_len n
    min_steps_per_level: int = 0
    max_steps_per_level: int | None = None  # unlock anyway after this many steps at a level
    score_window: int | None = None  # steps averaged into the score; None = trainer.log_every


@dataclass
class AchievementConfig(CurriculumConfig):
    name: str = "achievement"
    unlock_threshold: float = 3.2
    margin: float = 0.0


@dataclass
class FixedThresholdConfig(CurriculumConfig):
    name: str = "fixed_threshold"
    unlock_threshold: float = 3.0  # the first threshold; each later one is threshold_step lower
    threshold_step: float = 0.5  # 3.0, 2.5, 2.0: the old system
    thresholds: list[float] | None = None  # an explicit list wins over threshold + step


@dataclass
class StepScheduleConfig(CurriculumConfig):
    name: str = "step_schedule"
    unlock_steps: list[int] = field(default_factory=list)


@dataclass
class NoCurriculumConfig(CurriculumConfig):
    name: str = "none"


@dataclass
class OptimizerConfig:
    name: str = "adamw"  # adamw | sgd
    lr: float = 1e-3  # peak of each LR cycle
    weight_decay: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    momentum: float = 0.9  # sgd only
    nesterov: bool = True  # sgd only
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # each cosine cycle decays to lr * min_lr_ratio


@dataclass
class TrainerConfig:
    epochs: int = 1
    steps_per_epoch: int = 1000  # optimizer steps
    batch_size: int = 16  # sequences per micro-batch
    accum_steps: int = 1  # micro-batches per optimizer step
    grad_clip: float | None = 1.0
    max_nonfinite_steps: int = 10  # non-finite gradients in a row before the run stops
    log_every: int = 10
    val_every: int = 100
    val_batches: int = 8
    restart_lr: bool = True  # the LR cycle restarts at its peak at each unlock
    ckpt: str | None = "checkpoint.pt"  # relative to the run dir; None = no checkpoints
    ckpt_every: int = 200
    resume: str | None = "auto"  # a checkpoint file; auto = the newest valid one in the run dir, if any; null = fresh
    stop_at: int | None = None  # stop (checkpointed) after this step; the LR schedule still spans all epochs
    device: str = "auto"  # auto (cuda when present) | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | bf16 | fp32
    compile: bool = False  # torch.compile the model (CUDA)


@dataclass
class LoggerConfig:
    backend: str = "wandb"  # wandb | none
    project: str = "bicameral"
    entity: str | None = None
    mode: str = "offline"  # offline | online | disabled
    group: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class Config:
    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    curriculum: Any = MISSING  # one of the CurriculumConfig subclasses, chosen by the group
    optimizer: OptimizerConfig = MISSING
    trainer: TrainerConfig = MISSING
    logger: LoggerConfig = MISSING
    seed: int = 0


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="data", name="base_data", node=DataConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="curriculum", name="base_achievement", node=AchievementConfig)
    cs.store(group="curriculum", name="base_fixed_threshold", node=FixedThresholdConfig)
    cs.store(group="curriculum", name="base_step_schedule", node=StepScheduleConfig)
    cs.store(group="curriculum", name="base_none", node=NoCurriculumConfig)
    cs.store(group="optimizer", name="base_optimizer", node=OptimizerConfig)
    cs.store(group="trainer", name="base_trainer", node=TrainerConfig)
    cs.store(group="logger", name="base_logger", node=LoggerConfig)



class ConfigError(BicameralError, ValueError):
    """A config value that cannot work; the message names the key and the fix."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_config(cfg) -> None:
    """Values of the right type that still cannot work, caught before any work starts."""
    m, t, o = cfg.model, cfg.trainer, cfg.optimizer
    for key in ("epochs", "steps_per_epoch", "batch_size", "accum_steps", "log_every", "val_every",
                "val_batches", "ckpt_every", "max_nonfinite_steps"):
        _require(t[key] >= 1, f"trainer.{key}={t[key]} must be >= 1.")
    for key in ("seq_len", "d_model", "n_layers", "n_heads", "vocab_size", "mlp_ratio"):
        _require(m[key] >= 1, f"model.{key}={m[key]} must be >= 1.")
    _require(m.d_model % m.n_heads == 0, f"model.d_model={m.d_model} must be divisible by model.n_heads={m.n_heads}.")
    _require(((m.d_model // m.n_heads) % 2) == 0, "model.d_model // model.n_heads must be even (rotary embeddings).")
    _require(1 <= m.kernel_len <= m.seq_len, f"model.kernel_len={m.kernel_len} must be in 1..seq_len={m.seq_len}.")
    _require(
        m.time_window is None or 1 <= m.time_window <= m.seq_len,
        f"model.time_window={m.time_window} must be in 1..seq_len={m.seq_len}, or null for full causal attention.",
    )
    _require(m.arch in MIXERS, f"model.arch={m.arch!r}: use one of {', '.join(MIXERS)}.")
    _require(m.freq_impl in ("fft", "toeplitz"), f"model.freq_impl={m.freq_impl!r}: use fft or toeplitz.")
    _require(m.time_impl in ("blocked", "flex"), f"model.time_impl={m.time_impl!r}: use blocked or flex.")
    _require(
        m.arch in HAS_FREQUENCY_PATH or cfg.curriculum.name == "none",
        f"curriculum={cfg.curriculum.name} unlocks frequency bands, but model.arch={m.arch} has no frequency path. "
        "Fix: add curriculum=none for this model.",
    )
    _require(o.lr > 0, f"optimizer.lr={o.lr} must be > 0.")
    _require(o.name in ("adamw", "sgd"), f"optimizer.name={o.name!r} is unknown. Fix: optimizer=adamw or sgd.")
    _require(0 <= o.min_lr_ratio <= 1, f"optimizer.min_lr_ratio={o.min_lr_ratio} must be in [0, 1].")
    _require(o.warmup_steps >= 0, f"optimizer.warmup_steps={o.warmup_steps} must be >= 0.")
    _require(t.grad_clip is None or t.grad_clip > 0, f"trainer.grad_clip={t.grad_clip} must be > 0 or null.")
    _require(t.precision in ("auto", "bf16", "fp32"), f"trainer.precision={t.precision!r}: use auto, bf16 or fp32.")
    backend = cfg.logger.backend
    _require(backend in ("wandb", "none"), f"logger.backend={backend!r}: use logger=wandb or logger=none.")
    _require(cfg.logger.mode in ("offline", "online", "disabled"),
             f"logger.mode={cfg.logger.mode!r}: use offline, online or disabled.")
    window = cfg.curriculum.score_window
    _require(window is None or window >= 1, f"curriculum.score_window={window} must be >= 1 or null.")
