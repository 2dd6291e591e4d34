"""The frequency path's math: a band-limited filter on the rfft grid, applied as a causal conv.

The filter lives on the sequence's rfft grid (seq_len // 2 + 1 bins). Its time kernel
`k = irfft(W * mask, n=seq_len)` is read as lags 0..seq_len-1 and cut to `kernel_len` lags.
The convolution is *linear*, not circular: both signals are zero-padded to an FFT size of at
least T + K - 1 and only the first T outputs are kept, so no output sees a future input.
FFTs run in fp32 (or fp64) even under bf16 autocast: bf16 FFTs lose too much precision.
"""

import torch


def band_mask(n_bins: int, cutoff: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(n_bins,) with ones at bins < cutoff: the pass band of a low-pass filter."""
    return (torch.arange(n_bins, device=device) < cutoff).to(dtype)


def fft_size(n: int) -> int:
    """Smallest power of two >= n: the fastest sizes for cuFFT and pocketfft alike."""
    return 1 << (n - 1).bit_length()


def _fft_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def kernel_from_spectrum(
    spectrum: torch.Tensor, mask: torch.Tensor, seq_len: int, kernel_len: int
) -> torch.Tensor:
    """Time kernel (C, kernel_len) of a per-channel filter (C, n_bins) complex, masked to its band."""
    with torch.autocast(device_type=spectrum.device.type, enabled=False):
        full = torch.fft.irfft(spectrum * mask, n=seq_len)  # (C, seq_len) lags 0..seq_len-1
    return full[:, :kernel_len]


def causal_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """y[b, t, c] = sum_{j < K, j <= t} kernel[c, j] * x[b, t - j, c]; x (B, T, C), kernel (C, K)."""
    B, T, C = x.shape
    K = kernel.shape[-1]
    n = fft_size(T + K - 1)  # long enough that the circular wrap never reaches the kept outputs
    dtype = _fft_dtype(x.dtype)
    with torch.autocast(device_type=x.device.type, enabled=False):
        xf = torch.fft.rfft(x.to(dtype).transpose(1, 2), n=n)  # (B, C, n//2+1)
        kf = torch.fft.rfft(kernel.to(dtype), n=n)  # (C, n//2+1)
        y = torch.fft.irfft(xf * kf, n=n)[..., :T]  # (B, C, T)
    return y.transpose(1, 2).to(x.dtype)
