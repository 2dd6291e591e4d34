"""Benchmarks: training steps of the bicameral model against the transformer baseline, and the mixers alone.

Both models are timed in the same process on the same device, same width, depth, batch and seq_len:
warm-up steps first, then the median of timed repeats (CUDA events on a GPU, a wall clock on CPU).
    python -m bicameral.tools.bench --sizes small,base --seq-lens 1024,4096 --compile --out bench.json
    python -m bicameral.tools.bench --mixers --sizes small --batch-size 32
    python -m bicameral.tools.bench --profile 5 --sizes tiny --seq-lens 128 --batch-size 8   # where a step's time goes
"""

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch
import torch._dynamo
from omegaconf import OmegaConf

from bicameral.engine.device import pick_device
from bicameral.files import write_text_atomically
from bicameral.model.attention import TimePath
from bicameral.model.config import ModelConfig
from bicameral.model.flops import flop_ceiling, multiply_adds_per_token
from bicameral.model.frequency import FrequencyPath, effective_freq_impl
from bicameral.model.lm import LanguageModel
from bicameral.model.mixers import LEAN_OPTIONS
from bicameral.tools.cli import device_argument, program, run_tool


def model_config(size: str, **overrides) -> ModelConfig:
    """The model of conf/model/<size>.yaml (tiny, small, base...), read through Hydra like train.py does."""
    from hydra import compose, initialize_config_module

    from bicameral.config import register_configs

    register_configs()
    with initialize_config_module(config_module="bicameral.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"model={size}"])
    return ModelConfig(**{**OmegaConf.to_container(cfg.model), **overrides})


def timer(device: torch.device, fn: Callable[[], None], warmup: int, repeats: int, back_to_back: int = 1) -> float:
    """Median seconds of one call of fn, after warm-up calls (which also absorb compilation). Each repeat times
    `back_to_back` calls queued one after another, with no sync between them, as a training loop runs them."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(back_to_back):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / back_to_back)
        else:
            t0 = time.perf_counter()
            for _ in range(back_to_back):
                fn()
            times.append((time.perf_counter() - t0) / back_to_back)
    return statistics.median(times)


def matmul_rate(device: torch.device, dtype: torch.dtype) -> float:
    """The card's measured dense matmul FLOP/s in `dtype`: the denominator of model FLOPs utilisation."""
    n = 8192 if device.type == "cuda" else 1024
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    seconds = timer(device, lambda: a @ b, warmup=2, repeats=5)
    return 2 * n**3 / seconds


def model_flops_per_token(cfg: ModelConfig) -> float:
    """Training FLOPs per token: 6 per multiply-add of the matmuls, attention's scores and mixing, and the head
    (bicameral/model/flops.py, which counts them once for every tool).

    The frequency path's conv (FFTs or Toeplitz matmuls) is left out: MFU counts the matmul work a model
    needs, as it is usually quoted, and the FLOP ceilings count the conv too.
    """
    parts = multiply_adds_per_token(cfg)
    return 6 * (parts["matmul"] + parts["attention"] + parts["head"])


def compiled(module: torch.nn.Module) -> torch.nn.Module:
    """torch.compile with a fresh dynamo: one process compiles many models, and past dynamo's
    recompile limit (8 per code object) the later ones would silently run eager."""
    torch._dynamo.reset()
    return torch.compile(module, dynamic=False)


def peak_memory_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def training_step(cfg: ModelConfig, batch_size: int, device: torch.device, compile: bool):
    """The model and one full training step (forward, backward, AdamW) on a fixed random batch."""
    torch.manual_seed(0)
    model = LanguageModel(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    forward = compiled(model) if compile else model
    idx = torch.randint(0, cfg.vocab_size, (batch_size, cfg.seq_len + 1), device=device)
    x, y = idx[:, :-1], idx[:, 1:]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        with autocast:
            loss = forward(x, y).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return model, step


def bench_training(cfg: ModelConfig, batch_size: int, device: torch.device, compile: bool, warmup: int,
                   repeats: int, peak_flops: float, back_to_back: int = 1) -> dict:
    """tokens/s, step time, MFU and peak memory of full training steps (forward, backward, AdamW)."""
    model, step = training_step(cfg, batch_size, device, compile)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = timer(device, step, warmup, repeats, back_to_back)
    tokens = batch_size * cfg.seq_len
    return {
        "arch": cfg.arch, "freq_impl": cfg.freq_impl, "freq_impl_run": effective_freq_impl(cfg, device.type),
        "time_impl": cfg.time_impl, "lean": list(cfg.lean), "params": model.num_params(),
        "flop_ceiling": flop_ceiling(cfg),
        "step_ms": 1e3 * seconds, "tokens_per_s": tokens / seconds,
        "mfu_of_measured_matmul": model_flops_per_token(cfg) * tokens / seconds / peak_flops,
        "peak_memory_gb": peak_memory_gb(device),
    }


def profile_training(cfg: ModelConfig, batch_size: int, device: torch.device, compile: bool, warmup: int,
                     steps: int, top: int = 15) -> list[dict]:
    """torch.profiler over `steps` training steps after warm-up: the ops taking the most self time."""
    from torch.profiler import ProfilerActivity, profile

    _, step = training_step(cfg, batch_size, device, compile)
    for _ in range(warmup):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(getattr(e, attr) for e in events)
    events.sort(key=lambda e: getattr(e, attr), reverse=True)
    return [{"op": e.key, "share": getattr(e, attr) / total, "ms_per_step": getattr(e, attr) / 1e3 / steps,
             "calls_per_step": e.count / steps} for e in events[:top]]


KERNEL_FAMILIES = (  # (family, name fragments), first match wins; names as the CUDA profiler reports kernels
    ("Triton, ours", ("toeplitz_conv_kernel", "window_gram_kernel")),
    # inductor's template kernels (triton_tem_*) are flex_attention's under the default compile mode
    ("attention", ("flash", "fmha", "attention", "flex", "sdpa", "_attn", "triton_tem")),
    ("GEMM", ("gemm", "matmul", "xmma", "cutlass", "nvjet", "wgmma", "cublas", "aten::mm", "aten::bmm",
              "aten::addmm", "aten::linear")),
    ("FFT", ("fft", "radix", "vector_fft", "regular_fft")),
    ("communication", ("nccl", "gloo")),
    ("copy/elementwise", ("memcpy", "memset", "copy", "elementwise", "vectorized", "reduce", "triton_", "cat",
                          "fill", "aten::")),
)


def kernel_family(name: str) -> str:
    """GEMM, attention, Triton (ours), FFT, communication, copy/elementwise (inductor's generated triton_*
    kernels among them) or other."""
    lowered = name.lower()
    return next((family for family, parts in KERNEL_FAMILIES if any(p in lowered for p in parts)), "other")


def profile_families(cfg: ModelConfig, batch_size: int, device: torch.device, compile: bool, warmup: int,
                     steps: int) -> dict:
    """torch.profiler over `steps` back-to-back training steps: device time by kernel family, and the fraction
    of the steps' span in which the device ran no kernel (time spent waiting for the host). On the CPU the
    families are of the aten ops' self time and there is no idle fraction."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    _, step = training_step(cfg, batch_size, device, compile)
    for _ in range(warmup):
        step()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize(device)
    if cuda:
        kernels = [(e.name, e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == DeviceType.CUDA]
    else:
        kernels = [(e.name, 0, e.self_cpu_time_total) for e in prof.events() if e.name.startswith("aten::")]
    by_family: dict[str, float] = {}
    for name, start, end in kernels:
        family = kernel_family(name)
        by_family[family] = by_family.get(family, 0.0) + (end - start)
    busy_total = sum(by_family.values())
    idle = None
    if cuda and kernels:
        spans = sorted((start, end) for _, start, end in kernels)
        covered, reach = 0.0, spans[0][0]
        for start, end in spans:  # the union of kernel intervals: overlapping kernels count once
            if end > reach:
                covered += end - max(start, reach)
                reach = end
        idle = 1 - covered / (spans[-1][1] - spans[0][0])
    return {"steps": steps, "busy_ms_per_step": busy_total / 1e3 / steps, "gpu_idle_fraction": idle,
            "families": {family: {"ms_per_step": us / 1e3 / steps, "share": us / busy_total}
                         for family, us in sorted(by_family.items(), key=lambda kv: -kv[1])}}


def bench_mixers(cfg: ModelConfig, batch_size: int, device: torch.device, compile: bool, warmup: int,
                 repeats: int) -> list[dict]:
    """Forward + backward of each mixer alone on (B, T, D) activations: frequency path (each impl),
    time path (windowed attention) and full causal attention (the transformer's mixer)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    x = torch.randn(batch_size, cfg.seq_len, cfg.d_model, device=device, requires_grad=True)
    candidates = {"freq/fft": FrequencyPath(replace(cfg, freq_impl="fft"))}
    if effective_freq_impl(replace(cfg, freq_impl="toeplitz")) == "toeplitz":  # else it would time the fft again
        candidates["freq/toeplitz"] = FrequencyPath(replace(cfg, freq_impl="toeplitz"))
    if device.type == "cuda" and effective_freq_impl(replace(cfg, freq_impl="triton"), "cuda") == "triton":
        candidates["freq/triton"] = FrequencyPath(replace(cfg, freq_impl="triton"))
    candidates["time/blocked"] = TimePath(replace(cfg, time_impl="blocked"))
    candidates["attention/causal"] = TimePath(replace(cfg, time_window=None))  # SDPA is_causal: flash on a GPU
    if device.type == "cuda":
        candidates["time/flex"] = TimePath(replace(cfg, time_impl="flex"))
    rows = []
    for name, module in candidates.items():
        module = module.to(device)
        run = compiled(module) if compile else module
        autocast = torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda")

        def fwd_bwd(run=run, autocast=autocast):
            with autocast:
                out = run(x)
            out.float().pow(2).mean().backward()

        rows.append({"mixer": name, "fwd_bwd_ms": 1e3 * timer(device, fwd_bwd, warmup, repeats)})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog=program("bicameral.tools.bench"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small", help="comma list of conf/model sizes: tiny, small, base")
    parser.add_argument("--seq-lens", default="1024", help="comma list, e.g. 1024,4096")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 on a GPU, 4 on CPU")
    parser.add_argument("--freq-impls", default="fft,toeplitz", help="frequency path implementations to time")
    parser.add_argument("--time-impl", default=None, help="blocked | flex (default: flex on a GPU, else blocked)")
    parser.add_argument("--mixers", action="store_true", help="time the mixers alone instead of training steps")
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS",
                        help="instead of timing, profile this many training steps of the bicameral model "
                             "(the first of --freq-impls) and print the ops with the most self time")
    parser.add_argument("--families", type=int, default=0, metavar="STEPS",
                        help="instead of timing, profile this many back-to-back training steps of the transformer and "
                             "the bicameral model (each of --freq-impls) and group device time by kernel family")
    parser.add_argument("--lean", default=None, metavar="OPTIONS",
                        help="also time each --freq-impls with these model.lean options, '+'-joined, e.g. "
                             "conv_input+head_gate+shared_out")
    parser.add_argument("--back-to-back", type=int, default=None,
                        help="steps queued per timed repeat, no sync between them (default: 10 on a GPU, 1 on CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models (GPU)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    device_argument(parser)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.lean.split("+")) - set(LEAN_OPTIONS)) if args.lean else []
    if unknown:
        parser.error(f"--lean {args.lean} names {unknown}: use any of {', '.join(LEAN_OPTIONS)}, '+'-joined")

    device = pick_device(args.device, key="--device")
    batch_size = args.batch_size or (32 if device.type == "cuda" else 4)
    back_to_back = args.back_to_back or (10 if device.type == "cuda" else 1)
    lean_variants = [[]] + ([args.lean.split("+")] if args.lean else [])
    time_impl = args.time_impl or ("flex" if device.type == "cuda" else "blocked")
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    peak = matmul_rate(device, torch.bfloat16 if device.type == "cuda" else torch.float32)
    report = {"device": card, "torch": torch.__version__, "batch_size": batch_size, "compile": args.compile,
              "back_to_back": back_to_back, "matmul_tflops": peak / 1e12, "results": []}
    print(f"{card}: measured matmul {peak / 1e12:.1f} TFLOP/s (MFU below is against this measured rate, "
          f"not the datasheet peak), batch {batch_size}, compile={args.compile}")

    def add(row: dict) -> None:  # written as it comes: a run cut short by a time budget keeps its rows
        report["results"].append(row)
        if args.out:
            write_text_atomically(args.out, json.dumps(report, indent=2))

    for size in args.sizes.split(","):
        for seq_len in (int(s) for s in args.seq_lens.split(",")):
            cfg = model_config(size, seq_len=seq_len, time_impl=time_impl)
            shape = {"size": size, "seq_len": seq_len}
            if args.profile:
                impl = args.freq_impls.split(",")[0]
                for row in profile_training(replace(cfg, freq_impl=impl), batch_size, device, args.compile,
                                            args.warmup, args.profile):
                    add({**shape, "freq_impl": impl, **row})
                    print(f"  {size} L={seq_len} {row['op']:<40} {row['share']:6.1%} {row['ms_per_step']:8.2f} ms/step "
                          f"{row['calls_per_step']:6.0f} calls/step")
                continue
            if args.families:
                variants = [("transformer", replace(cfg, arch="transformer"))] + [
                    (f"bicameral/{impl}", replace(cfg, freq_impl=impl)) for impl in args.freq_impls.split(",")]
                for name, variant in variants:
                    row = profile_families(variant, batch_size, device, args.compile, args.warmup, args.families)
                    add({**shape, "model": name, **row})
                    idle = "-" if row["gpu_idle_fraction"] is None else f"{row['gpu_idle_fraction']:.1%}"
                    groups = ", ".join(f"{family} {g['ms_per_step']:.2f} ms ({g['share']:.0%})"
                                       for family, g in row["families"].items())
                    print(f"  {size} L={seq_len} {name:<18} device idle {idle}: {groups}")
                continue
            if args.mixers:
                rows = bench_mixers(cfg, batch_size, device, args.compile, args.warmup, args.repeats)
                attention_ms = next(r["fwd_bwd_ms"] for r in rows if r["mixer"] == "attention/causal")
                for row in rows:
                    row["vs_causal_attention"] = row["fwd_bwd_ms"] / attention_ms  # < 1: faster than attention
                    add({**shape, **row})
                    print(f"  {size} L={seq_len} {row['mixer']:<18} fwd+bwd {row['fwd_bwd_ms']:8.2f} ms "
                          f"x{row['vs_causal_attention']:.2f} of causal attention's time")
                continue
            baseline = bench_training(replace(cfg, arch="transformer"), batch_size, device, args.compile,
                                      args.warmup, args.repeats, peak, back_to_back)
            add({**shape, **baseline})
            print(f"  {size} L={seq_len} transformer        {baseline['tokens_per_s']:>10,.0f} tok/s "
                  f"{baseline['step_ms']:8.1f} ms  MFU {baseline['mfu_of_measured_matmul']:.1%}")
            for impl in args.freq_impls.split(","):
                for lean in lean_variants:
                    row = bench_training(replace(cfg, freq_impl=impl, lean=lean), batch_size, device, args.compile,
                                         args.warmup, args.repeats, peak, back_to_back)
                    row["vs_transformer"] = row["tokens_per_s"] / baseline["tokens_per_s"]
                    add({**shape, **row})
                    name = f"bicameral/{impl}" + (f" lean {'+'.join(lean)}" if lean else "")
                    print(f"  {size} L={seq_len} {name:<18} {row['tokens_per_s']:>10,.0f} tok/s "
                          f"{row['step_ms']:8.1f} ms  MFU {row['mfu_of_measured_matmul']:.1%}  "
                          f"x{row['vs_transformer']:.2f} of transformer (FLOP ceiling x{row['flop_ceiling']:.2f})")
    if args.out:
        write_text_atomically(args.out, json.dumps(report, indent=2))
        print(f"wrote {args.out}")
    return report


def cli() -> None:
    run_tool(main)


if __name__ == "__main__":
    cli()
