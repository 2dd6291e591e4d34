"""Config schemas, registered in Hydra's ConfigStore.

The model and trainer groups start from these schemas (`defaults: [base_<group>,
_self_]`), so a misspelt key or a wrong type fails at start with the key's name. `check_config`
then catches values that have the right type but cannot work (zero steps, negative lr...).

The component groups (data, curriculum, optimizer, schedule) have no schema here: each node names its
class with `_target_`, and `bicameral.engine.build` checks the node against that class's signature.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from bicameral.errors import ConfigError
from bicameral.model.config import ModelConfig
from bicameral.model.frequency import triton_available
from bicameral.model.mixers import LEAN_OPTIONS, MIXERS

COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainerConfig:
    # Sized so that `python train.py` reaches nanoGPT's CPU recipe's val loss in less wall-clock on 2 cores
    # (experiments/time_to_loss.py): many small steps, 900 x 8 x 128 = 0.92M tokens.
    epochs: int = 1
    steps_per_epoch: int = 900  # optimizer steps
    batch_size: int = 8  # sequences per micro-batch
    accum_steps: int = 1  # micro-batches per optimizer step
    grad_clip: float | None = 1.0
    max_nonfinite_steps: int = 10  # non-finite gradients in a row before the run stops
    log_every: int = 10
    val_every: int = 100
    val_batches: int = 8
    restart_lr: bool = True  # the LR schedule restarts its cycle at the peak at each unlock
    spike_window: int | None = None  # steps after an unlock in which its loss spike is measured; null = 5 judgements
    ckpt: str | None = "checkpoint.pt"  # relative to the run dir; None = no checkpoints
    ckpt_every: int = 300
    resume: str | None = "auto"  # a checkpoint file; auto = the newest valid one in the run dir, if any; null = fresh
    overwrite: bool = False  # start over in a run dir that holds an earlier run, removing its checkpoints and records
    stop_at: int | None = None  # stop (checkpointed) after this step; the LR schedule still spans all epochs
    dist_timeout_s: float = 300.0  # under torchrun, how long a rank waits for the others before the run fails
    device: str = "auto"  # auto (cuda when present) | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | bf16 | fp32
    compile: bool | None = None  # torch.compile the model; null = on CUDA only (inductor on the CPU costs minutes)
    # torch.compile's mode: null (its default) | reduce-overhead (CUDA graphs) | max-autotune...
    compile_mode: str | None = None


@dataclass
class Config:
    data: Any = MISSING  # a bicameral.data.Dataset node (_target_)
    model: ModelConfig = MISSING
    curriculum: Any = MISSING  # a bicameral.curriculum.Curriculum node (_target_)
    optimizer: Any = MISSING  # a torch.optim.Optimizer node (_target_)
    schedule: Any = MISSING  # a torch.optim.lr_scheduler.LRScheduler node (_target_)
    trainer: TrainerConfig = MISSING
    # name -> a bicameral.tracking.Tracker node (_target_): what reports the run (console, JSONL, W&B)
    trackers: dict[str, Any] = field(default_factory=dict)
    # name -> a bicameral.callbacks.Callback node (_target_): user code the engine calls at named points
    callbacks: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    # set on a yoked control (python -m bicameral.report.yoked): the run, as its dir relative to the sweep,
    # whose LR restarts it trains with, its band open from step 0
    yoked_to: str | None = None


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="trainer", name="base_trainer", node=TrainerConfig)
    from bicameral.schemas import register_schemas  # it reads the classes, which import this module

    register_schemas(cs)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_config(cfg) -> None:
    """Values of the right type that still cannot work, caught before any work starts."""
    m, t, o = cfg.model, cfg.trainer, cfg.optimizer
    for key in ("epochs", "steps_per_epoch", "batch_size", "accum_steps", "log_every", "val_every",
                "val_batches", "ckpt_every", "max_nonfinite_steps"):
        _require(t[key] >= 1, f"trainer.{key}={t[key]} must be >= 1.")
    for key in ("seq_len", "d_model", "n_layers", "n_heads", "mlp_ratio"):
        _require(m[key] >= 1, f"model.{key}={m[key]} must be >= 1.")
    _require(m.vocab_size is None or m.vocab_size >= 1,
             f"model.vocab_size={m.vocab_size} must be >= 1, or null to follow the data.")
    _require(m.d_model % m.n_heads == 0, f"model.d_model={m.d_model} must be divisible by model.n_heads={m.n_heads}.")
    _require(((m.d_model // m.n_heads) % 2) == 0, "model.d_model // model.n_heads must be even (rotary embeddings).")
    _require(1 <= m.kernel_len <= m.seq_len, f"model.kernel_len={m.kernel_len} must be in 1..seq_len={m.seq_len}.")
    _require(
        m.time_window is None or 1 <= m.time_window <= m.seq_len,
        f"model.time_window={m.time_window} must be in 1..seq_len={m.seq_len}, or null for full causal attention.",
    )
    _require(m.arch in MIXERS, f"model.arch={m.arch!r}: use one of {', '.join(MIXERS)}.")
    _require(m.freq_impl in ("auto", "fft", "toeplitz", "triton"),
             f"model.freq_impl={m.freq_impl!r}: use auto, fft, toeplitz or triton.")
    _require(m.freq_impl != "triton" or triton_available(),
             "model.freq_impl=triton needs the triton package. Fix: pip install 'bicameral[triton]', "
             "or model.freq_impl=auto.")
    unknown = sorted(set(m.lean) - set(LEAN_OPTIONS))
    _require(not unknown, f"model.lean={list(m.lean)} names {unknown}: use any of {', '.join(LEAN_OPTIONS)}, "
             "e.g. model.lean=[conv_input,head_gate].")
    _require(m.time_impl in ("auto", "blocked", "flex"), f"model.time_impl={m.time_impl!r}: use auto, blocked or flex.")
    lr = o.get("lr")
    _require(lr is None or (isinstance(lr, int | float) and lr > 0), f"optimizer.lr={lr} must be > 0.")
    _require(t.grad_clip is None or t.grad_clip > 0, f"trainer.grad_clip={t.grad_clip} must be > 0 or null.")
    _require(t.stop_at is None or t.stop_at >= 1,
             f"trainer.stop_at={t.stop_at} must be >= 1, or null to train to the end.")
    _require(t.dist_timeout_s > 0, f"trainer.dist_timeout_s={t.dist_timeout_s} must be > 0 (seconds).")
    _require(t.compile_mode in COMPILE_MODES, f"trainer.compile_mode={t.compile_mode!r}: use null, "
             f"{', '.join(m for m in COMPILE_MODES if m)}.")
    _require(t.precision in ("auto", "bf16", "fp32"), f"trainer.precision={t.precision!r}: use auto, bf16 or fp32.")
