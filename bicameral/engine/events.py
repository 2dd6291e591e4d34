"""What the engine tells its trackers, as typed events (unlocks are `curriculum.UnlockEvent`)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainStats:
    """One log window of training, ending at `step`."""

    step: int
    epoch: int
    epoch_step: int  # 1-based step within the epoch, as the reference's log prints it
    loss: float  # mean over the window's finite steps
    lr: float  # the LR the window's last step trained at
    cutoff: int
    level: int
    freq_share: float  # mean gate: the frequency hemisphere's share
    tokens: int  # seen so far, over all ranks
    tokens_per_s: float


@dataclass(frozen=True)
class ValResult:
    step: int
    tokens: int
    val_loss: float  # nats per token
    freq_share: float
    bits_per_byte: float | None = None  # of the val text, so tokenizers compare; None: the data has no tokenizer


@dataclass(frozen=True)
class SkippedStep:
    """An update skipped for a non-finite gradient."""

    step: int
    skipped_steps: int  # in all, so far
