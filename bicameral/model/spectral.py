"""The frequency path's math: a band-limited filter on the rfft grid, applied as a causal conv.

The filter lives on the sequence's rfft grid (seq_len // 2 + 1 bins). Its time kernel
`k = irfft(W * mask, n=seq_len)` is read as lags 0..seq_len-1 and cut to `kernel_len` lags.
The convolution is *linear*, not circular: both signals are zero-padded to an FFT size of at
least T + K - 1 and only the first T outputs are kept, so no output sees a future input.
FFTs run in fp32 (or fp64) even under bf16 autocast: bf16 FFTs lose too much precision.
"""

import torch
import torch.nn.functional as F


def band_mask(n_bins: int, cutoff: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(n_bins,) with ones at bins < cutoff: the pass band of a low-pass filter."""
    return (torch.arange(n_bins, device=device) < cutoff).to(dtype)


def fft_size(n: int) -> int:
    """Smallest 7-smooth m >= n (m = 2^a 3^b 5^c 7^d): pocketfft and cuFFT are fast at such sizes.

    Against the next power of two it is at most ~1.2x longer instead of up to 2x: at T=1024, K=128
    1152 points instead of 2048, about 1.9x faster for the conv's forward and backward on a CPU.
    """
    if n < 1:
        raise ValueError(f"fft_size needs n >= 1, got {n}")
    while True:
        m = n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _fft_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def kernel_from_spectrum(
    spectrum: torch.Tensor, mask: torch.Tensor, seq_len: int, kernel_len: int
) -> torch.Tensor:
    """Time kernel (C, kernel_len) of a per-channel filter (C, n_bins) complex, masked to its band."""
    with torch.autocast(device_type=spectrum.device.type, enabled=False):
        full = torch.fft.irfft(spectrum * mask, n=seq_len)  # (C, seq_len) lags 0..seq_len-1
    return full[:, :kernel_len]


def causal_conv(x: torch.Tensor, kernel: torch.Tensor, impl: str = "fft") -> torch.Tensor:
    """y[b, t, c] = sum_{j < K, j <= t} kernel[c, j] * x[b, t - j, c]; x (B, T, C), kernel (C, K).

    impl "fft": zero-padded FFTs of size >= T + K - 1 (the reference; any K).
    impl "toeplitz": blockwise matmuls, for a reach K much shorter than T (see toeplitz_causal_conv).
    impl "triton": the same blocks as fused Triton kernels (bicameral/model/triton_conv.py; the triton extra).
    """
    if impl == "toeplitz":
        return toeplitz_causal_conv(x, kernel)
    if impl == "triton":
        from bicameral.model.triton_conv import triton_causal_conv

        return triton_causal_conv(x, kernel)
    if impl != "fft":
        raise ValueError(f"unknown causal_conv impl {impl!r}: use fft, toeplitz or triton")
    return fft_causal_conv(x, kernel)


def fft_causal_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """causal_conv by FFT: x (B, T, C), kernel (C, K) -> (B, T, C)."""
    B, T, C = x.shape
    K = kernel.shape[-1]
    n = fft_size(T + K - 1)  # long enough that the circular wrap never reaches the kept outputs
    dtype = _fft_dtype(x.dtype)
    with torch.autocast(device_type=x.device.type, enabled=False):
        # channels last-but-one: an FFT along dim=1 of (B, T, C) measured ~1.4x slower on CPU (strided)
        xf = torch.fft.rfft(x.to(dtype).transpose(1, 2), n=n)  # (B, C, n//2+1)
        kf = torch.fft.rfft(kernel.to(dtype), n=n)  # (C, n//2+1)
        y = torch.fft.irfft(xf * kf, n=n)[..., :T]  # (B, C, T)
    return y.transpose(1, 2).to(x.dtype)


def toeplitz_causal_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """causal_conv as matmuls: x (B, T, C), kernel (C, K) -> (B, T, C).

    With blocks of K steps, output block n depends only on input blocks n-1 and n, through one
    (K, 2K) Toeplitz matrix per channel. So the whole conv is one batched matmul over channels:
    dense, tensor-core friendly under bf16 autocast (fp32 accumulation), 4*K*T multiply-adds per
    channel and sequence against the FFT's padded transforms of size >= T + K - 1.
    """
    B, T, C = x.shape
    K = kernel.shape[-1]
    n = -(-T // K)  # blocks
    lag = torch.arange(K, device=x.device)[:, None] + K - torch.arange(2 * K, device=x.device)  # (K, 2K)
    # column j < K reads the previous block, j >= K this one; lag = output pos - input pos
    taps = F.pad(kernel, (0, K))[:, lag.clamp(0, 2 * K - 1)]  # (C, K, 2K), zero where lag >= K
    taps = taps * (lag >= 0)  # zero where the input is in the future
    windows = F.pad(x, (0, 0, K, n * K - T)).unfold(1, 2 * K, K)  # (B, n, C, 2K): previous + own block
    windows = windows.permute(2, 3, 0, 1).reshape(C, 2 * K, B * n)  # channels lead: one matmul each
    y = torch.bmm(taps.to(x.dtype), windows)  # (C, K, B * n)
    return y.view(C, K, B, n).permute(2, 3, 1, 0).reshape(B, n * K, C)[:, :T]


def band_leak(kernel: torch.Tensor, cutoff: int, seq_len: int) -> torch.Tensor:
    """Fraction of each kernel's energy at bins >= cutoff of the seq_len rfft grid: (C, K) -> (C,).

    `kernel_from_spectrum` is band-limited before it is cut to K lags; the cut (a rectangular
    window) spreads some energy above the cutoff, which this measures. Parseval on the rfft grid:
    every bin but DC (and Nyquist, for even seq_len) stands for two bins of the full spectrum.
    """
    with torch.autocast(device_type=kernel.device.type, enabled=False):
        power = torch.fft.rfft(kernel.to(_fft_dtype(kernel.dtype)), n=seq_len).abs().square()  # (C, n_bins)
    weight = torch.full((power.shape[-1],), 2.0, dtype=power.dtype, device=power.device)
    weight[0] = 1.0
    if seq_len % 2 == 0:
        weight[-1] = 1.0
    energy = power * weight  # (C, n_bins)
    return energy[:, cutoff:].sum(-1) / energy.sum(-1).clamp_min(torch.finfo(energy.dtype).tiny)
