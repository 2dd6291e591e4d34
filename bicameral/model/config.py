"""The model's settings: size, mixer and the kernels it runs."""

from dataclasses import dataclass, field

from bicameral.data.tokenizer import ByteTokenizer


@dataclass
class ModelConfig:
    arch: str = "bicameral"  # bicameral | transformer (the baseline) | freq_only | time_only (ablations)
    vocab_size: int | None = None  # null: the data's (a run sets it from its dataset; bytes, 256, for the default)
    seq_len: int = 128  # 65 bins, levels [16, 32, 64, 65]; a longer context costs CPU time the loss does not repay
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    kernel_len: int = 64  # reach of the frequency path, in lags (bicameral only)
    time_window: int | None = 16  # the reference's --chunk; None = full causal attention (bicameral only)
    # auto = the faster on the device, as measured on an H200 (README, "Speed"): toeplitz and flex on
    # CUDA, the references fft and blocked on the CPU
    # auto | fft (reference) | toeplitz (blockwise matmuls) | triton (the same blocks fused; the triton extra)
    freq_impl: str = "auto"
    time_impl: str = "auto"  # auto | blocked (reference, SDPA on window blocks) | flex (flex_attention)
    # a leaner bicameral block, fewer matmul FLOPs (BicameralMixer): any of conv_input, head_gate, shared_out
    lean: list[str] = field(default_factory=list)
    mlp_ratio: int = 4
    dropout: float = 0.0

    def __post_init__(self):
        if self.vocab_size is None:  # a model built outside a run, with no data to follow, reads bytes
            self.vocab_size = ByteTokenizer.vocab_size

    @property
    def n_bins(self) -> int:
        """Bins of the sequence's rfft grid: 513 at seq_len 1024."""
        return self.seq_len // 2 + 1
