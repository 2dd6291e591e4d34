"""The frequency hemisphere: a causal long convolution whose filter lives on the rfft grid
and passes only bins below the current `cutoff`.
"""

import importlib.util

import torch
import torch.nn as nn

from bicameral.model.config import ModelConfig
from bicameral.model.spectral import band_mask, causal_conv, kernel_from_spectrum


def triton_available() -> bool:
    """Whether the triton package (the `triton` extra) can be imported here."""
    return importlib.util.find_spec("triton") is not None


def effective_freq_impl(cfg: ModelConfig, device_type: str = "cpu") -> str:
    """The conv actually run on `device_type`: auto picks toeplitz on CUDA (its fwd+bwd measured 0.99x
    causal flash attention's time on an H200, the FFT's 1.68x) and fft on the CPU. The fused `triton` kernels
    run only where asked for until a card has measured them; on a machine without CUDA they run in Triton's
    interpreter (slow: for tests). toeplitz and triton run only while K <= seq_len / 4.

    Beyond that toeplitz's taps grow as K^2 per channel (6.4 GB per layer at K=1024, C=768), and both do
    work growing as K per token while the FFT's barely moves, so a long reach runs on the FFT whatever
    freq_impl says.
    """
    impl = cfg.freq_impl
    if impl == "auto":
        impl = "toeplitz" if device_type == "cuda" else "fft"
    if impl in ("toeplitz", "triton") and 4 * cfg.kernel_len > cfg.seq_len:
        return "fft"
    return impl


class FrequencyPath(nn.Module):
    """in_proj -> causal conv -> out_proj. A lean block (BicameralMixer) may build it without either
    projection: the conv then reads the time path's values, or its output shares the time path's."""

    def __init__(self, cfg: ModelConfig, in_proj: bool = True, out_proj: bool = True):
        super().__init__()
        self.seq_len, self.kernel_len = cfg.seq_len, cfg.kernel_len
        self.impl, self.cuda_impl = effective_freq_impl(cfg), effective_freq_impl(cfg, "cuda")  # CPU, CUDA
        self.in_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False) if in_proj else None
        self.out_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False) if out_proj else None
        self.spectrum = nn.Parameter(self._init_spectrum(cfg))  # (C, n_bins, 2) real view of complex W
        # a buffer updated in place: a new cutoff never recompiles a compiled model
        self.register_buffer("band_mask", band_mask(cfg.n_bins, cfg.n_bins))

    @staticmethod
    def _init_spectrum(cfg: ModelConfig) -> torch.Tensor:
        # start from random exponentially decaying kernels of unit norm within the reach
        lags = torch.arange(cfg.kernel_len)
        decay = torch.exp(-lags / (cfg.kernel_len / 4))
        k = torch.randn(cfg.d_model, cfg.kernel_len) * decay  # (C, K)
        k = k / k.norm(dim=-1, keepdim=True)
        return torch.view_as_real(torch.fft.rfft(k, n=cfg.seq_len)).contiguous()

    def set_cutoff(self, cutoff: int) -> None:
        self.band_mask.copy_(band_mask(len(self.band_mask), cutoff))

    def full_kernel(self) -> torch.Tensor:
        """(C, seq_len): the band-limited kernel before the reach limit."""
        return kernel_from_spectrum(torch.view_as_complex(self.spectrum), self.band_mask, self.seq_len, self.seq_len)

    def kernel(self) -> torch.Tensor:
        """(C, kernel_len): the kernel actually applied."""
        return self.full_kernel()[:, : self.kernel_len]

    def conv(self, u: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        """The band-limited causal conv alone, on the device's implementation."""
        return causal_conv(u, self.kernel(), self.cuda_impl if u.is_cuda else self.impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        return self.out_proj(self.conv(self.in_proj(x)))
