"""The frequency path's causal conv as fused Triton kernels: `model.freq_impl=triton` (the `triton` extra).

Cut the sequence into blocks of L >= kernel_len steps. Output block n depends only on input blocks n-1 and n,
through one (2L, L) Toeplitz matrix per channel, W[j, i] = k[L + i - j] (zero where that lag is < 0 or >= K).
So for one channel the conv is a GEMM: rows are (sequence, block) pairs, the reduction runs over the 2L inputs
of a block's window. Each program builds its Toeplitz tiles on chip from the (C, K) kernel, reads the windows
straight from x, and never writes taps or windows to memory (the matmul path, `toeplitz`, writes both).

    forward   y[m, i]  = sum_j  x_window[m, j] * k[L + i - j]      (window = blocks n-1 and n)
    dx        dx[m, i] = sum_j dy_window[m, j] * k[j - i]           (window = blocks n and n+1): the same kernel
    dk        G[i, j]  = sum_m dy[m, i] * x_window[m, j]; dk[lag] = sum of G's diagonal L + i - j = lag

dk's diagonal sums are read through a strided view of G (C, L, 2L): no scatter-add. Everything runs on
channel-major rows (B, C, T), so a window is one contiguous stretch of memory. The cutoff only changes k's
values, never a kernel argument's shape or a constexpr, so a new cutoff never recompiles.
"""

import os
import sys

import torch

from bicameral.errors import ConfigError

if not torch.cuda.is_available() and "triton" not in sys.modules:
    # no GPU to build for: the kernels run in Triton's interpreter (numpy; slow: how the tests check them on a
    # CPU). Triton reads the switch when its own library is decorated, so only before its first import.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.runtime.interpreter import InterpretedFunction  # noqa: E402

INTERPRETED = isinstance(tl.zeros, InterpretedFunction)  # Triton's library itself runs in the interpreter

# Tile sizes, chosen by building for sm_90 (tests/unit/test_triton_conv.py): at 64 x 64 x 64 and 4 warps the conv
# spilled 176-608 bytes of registers to the stack; at 64 x 64 x 32 and 8 warps (bf16) the three kernels hold 80-121
# registers, none spills
ROWS_PER_PROGRAM = 64  # (sequence, block) pairs a program's GEMM tile covers
OUTPUT_TILE = 64  # output positions per tile (at most L)
WINDOW_TILE = 32  # window positions per step of the reduction (at most L)
NUM_WARPS = 8


def block_len(kernel_len: int) -> int:
    """L: the power of two >= kernel_len (and >= 16, tl.dot's smallest tile)."""
    return max(16, triton.next_power_of_2(kernel_len))


def launch_constants(kernel_len: int, dtype: torch.dtype) -> dict:
    """Every constexpr a launch passes: they depend on the kernel's length and the dtype, never on its values."""
    L = block_len(kernel_len)
    return {"L": L, "BM": ROWS_PER_PROGRAM, "BI": min(OUTPUT_TILE, L), "BJ": min(WINDOW_TILE, L),
            "PRECISION": "ieee" if dtype in (torch.float32, torch.float64) else "tf32",
            "ACC_FP64": dtype == torch.float64}


@triton.jit
def toeplitz_conv_kernel(x_ptr, k_ptr, y_ptr, T, K, n_blocks, M,
                         FLIP: tl.constexpr, L: tl.constexpr, BM: tl.constexpr, BI: tl.constexpr,
                         BJ: tl.constexpr, PRECISION: tl.constexpr, ACC_FP64: tl.constexpr):
    """y (B, C, T) = causal conv of x (B, C, T) with k (C, K); FLIP: the adjoint (dx from dy), which reads the
    window of blocks n and n+1 and the taps k[j - i]. Grid: (C, cdiv(M, BM), L // BI), M = B * n_blocks."""
    c = tl.program_id(0)
    m = tl.program_id(1) * BM + tl.arange(0, BM)  # (BM,) rows: (sequence, block)
    i0 = tl.program_id(2) * BI
    i = i0 + tl.arange(0, BI)  # (BI,) output positions within the block
    C = tl.num_programs(0)
    row = ((m // n_blocks) * C + c).to(tl.int64) * T  # (BM,) start of the row (b, c) in x and y
    block_start = (m % n_blocks) * L  # (BM,)
    if FLIP:
        window_start = block_start  # blocks n and n+1
        j_lo, j_hi = i0, tl.minimum(2 * L, i0 + BI + K - 1)  # lags j - i in [0, K)
    else:
        window_start = block_start - L  # blocks n-1 and n
        j_lo, j_hi = tl.maximum(0, L + i0 - K + 1), L + i0 + BI  # lags L + i - j in [0, K)
    acc = tl.zeros((BM, BI), dtype=tl.float64 if ACC_FP64 else tl.float32)
    for j0 in range(j_lo - j_lo % BJ, j_hi, BJ):
        j = j0 + tl.arange(0, BJ)  # (BJ,) window positions
        t = window_start[:, None] + j[None, :]  # (BM, BJ) time of each window entry
        inside = (m[:, None] < M) & (t >= 0) & (t < T)
        window = tl.load(x_ptr + row[:, None] + t, mask=inside, other=0.0)  # (BM, BJ)
        lag = (j[:, None] - i[None, :]) if FLIP else (L + i[None, :] - j[:, None])  # (BJ, BI)
        taps = tl.load(k_ptr + c * K + lag, mask=(lag >= 0) & (lag < K), other=0.0).to(window.dtype)  # (BJ, BI)
        acc += tl.dot(window, taps, input_precision=PRECISION, out_dtype=acc.dtype)
    t_out = block_start[:, None] + i[None, :]  # (BM, BI)
    tl.store(y_ptr + row[:, None] + t_out, acc.to(y_ptr.dtype.element_ty), mask=(m[:, None] < M) & (t_out < T))


@triton.jit
def window_gram_kernel(dy_ptr, x_ptr, g_ptr, T, K, n_blocks, M,
                       L: tl.constexpr, BM: tl.constexpr, BI: tl.constexpr, BJ: tl.constexpr,
                       PRECISION: tl.constexpr, ACC_FP64: tl.constexpr):
    """g (C, L, 2L) = sum over rows m of dy_block[m, i] * x_window[m, j]; only tiles that hold a lag
    L + i - j in [0, K) are computed (the rest are never read). Grid: (C, L // BI, 2L // BJ)."""
    c = tl.program_id(0)
    i0, j0 = tl.program_id(1) * BI, tl.program_id(2) * BJ
    i = i0 + tl.arange(0, BI)  # (BI,) positions in the output block
    j = j0 + tl.arange(0, BJ)  # (BJ,) positions in the input window
    C = tl.num_programs(0)
    in_band = (j0 <= L + i0 + BI - 1) & (j0 + BJ - 1 >= L + i0 - K + 1)
    acc = tl.zeros((BI, BJ), dtype=tl.float64 if ACC_FP64 else tl.float32)
    for m0 in range(0, tl.where(in_band, M, 0), BM):
        m = m0 + tl.arange(0, BM)  # (BM,)
        row = ((m // n_blocks) * C + c).to(tl.int64) * T
        block_start = (m % n_blocks) * L
        t_out = block_start[None, :] + i[:, None]  # (BI, BM)
        dy = tl.load(dy_ptr + row[None, :] + t_out, mask=(m[None, :] < M) & (t_out < T), other=0.0)  # (BI, BM)
        t_in = block_start[:, None] - L + j[None, :]  # (BM, BJ)
        x = tl.load(x_ptr + row[:, None] + t_in, mask=(m[:, None] < M) & (t_in >= 0) & (t_in < T), other=0.0)
        acc += tl.dot(dy, x, input_precision=PRECISION, out_dtype=acc.dtype)
    g = g_ptr + c.to(tl.int64) * (2 * L * L) + i[:, None] * (2 * L) + j[None, :]
    tl.store(g, acc.to(g_ptr.dtype.element_ty))


def _conv(x: torch.Tensor, kernel: torch.Tensor, flip: bool) -> torch.Tensor:
    """x (B, C, T) contiguous, kernel (C, K) -> (B, C, T) in x's dtype."""
    B, C, T = x.shape
    K = kernel.shape[-1]
    consts = launch_constants(K, x.dtype)
    n_blocks = triton.cdiv(T, consts["L"])
    M = B * n_blocks
    y = torch.empty_like(x)
    grid = (C, triton.cdiv(M, consts["BM"]), consts["L"] // consts["BI"])
    toeplitz_conv_kernel[grid](x, kernel, y, T, K, n_blocks, M, FLIP=flip, **consts, num_warps=NUM_WARPS)
    return y


# custom ops with their shapes registered (register_fake): torch.compile sees each as one opaque call and
# traces the model around it, on a card and in the interpreter alike
@torch.library.custom_op("bicameral::toeplitz_conv", mutates_args=())
def toeplitz_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """x (B, C, T) contiguous, kernel (C, K) contiguous -> y (B, C, T): y[b, c, t] = sum_j k[c, j] x[b, c, t - j]."""
    return _conv(x, kernel, flip=False)


@torch.library.custom_op("bicameral::toeplitz_conv_adjoint", mutates_args=())
def toeplitz_conv_adjoint(dy: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """dx (B, C, T) from dy (B, C, T): dx[b, c, t] = sum_j k[c, j] dy[b, c, t + j]."""
    return _conv(dy, kernel, flip=True)


@torch.library.custom_op("bicameral::toeplitz_conv_kernel_grad", mutates_args=())
def toeplitz_conv_kernel_grad(dy: torch.Tensor, x: torch.Tensor, kernel_len: int) -> torch.Tensor:
    """dk (C, K) in float32 (float64 for float64 inputs): dk[c, j] = sum_{b, t} dy[b, c, t] x[b, c, t - j]."""
    B, C, T = x.shape
    consts = launch_constants(kernel_len, x.dtype)
    L = consts["L"]
    n_blocks = triton.cdiv(T, L)
    acc_dtype = torch.float64 if consts["ACC_FP64"] else torch.float32
    gram = torch.empty(C, L, 2 * L, device=x.device, dtype=acc_dtype)  # out-of-band tiles are never read
    grid = (C, L // consts["BI"], 2 * L // consts["BJ"])
    window_gram_kernel[grid](dy, x, gram, T, kernel_len, n_blocks, B * n_blocks, **consts, num_warps=NUM_WARPS)
    # dk[lag] = sum_i G[i, L + i - lag]: at flat offset i (2L + 1) + L - lag, a strided view with lags reversed
    diagonals = gram.as_strided((C, kernel_len, L), (2 * L * L, 1, 2 * L + 1), L - kernel_len + 1)  # (C, K, L)
    return diagonals.sum(-1).flip(-1)


@toeplitz_conv.register_fake
def _(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


@toeplitz_conv_adjoint.register_fake
def _(dy: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(dy)


@toeplitz_conv_kernel_grad.register_fake
def _(dy: torch.Tensor, x: torch.Tensor, kernel_len: int) -> torch.Tensor:
    return x.new_empty((x.shape[1], kernel_len), dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)


def _setup_context(ctx, inputs, output):
    x, kernel = inputs
    ctx.save_for_backward(x, kernel)


def _backward(ctx, dy):
    x, kernel = ctx.saved_tensors
    dy = dy.contiguous()
    dx = toeplitz_conv_adjoint(dy, kernel) if ctx.needs_input_grad[0] else None
    dk = toeplitz_conv_kernel_grad(dy, x, kernel.shape[-1]).to(kernel.dtype) if ctx.needs_input_grad[1] else None
    return dx, dk


toeplitz_conv.register_autograd(_backward, setup_context=_setup_context)


def triton_causal_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """causal_conv by the fused kernels: x (B, T, C), kernel (C, K) -> (B, T, C) in x's dtype."""
    if not x.is_cuda and not INTERPRETED:
        raise ConfigError("model.freq_impl=triton on the CPU runs in Triton's interpreter, which must be on before "
                          "triton is first imported. Fix: set TRITON_INTERPRET=1 in the environment, or use "
                          "model.freq_impl=fft on the CPU.")
    y = toeplitz_conv(x.transpose(1, 2).contiguous(), kernel.contiguous())  # (B, C, T)
    return y.transpose(1, 2)
