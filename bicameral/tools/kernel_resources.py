"""What the fused conv's kernels need on a card, built on any machine (no GPU needed):

    TRITON_INTERPRET=0 python -m bicameral.tools.kernel_resources [--arch 90] [--kernel-len 128]

Builds each kernel of bicameral/model/triton_conv.py for the target (sm_90: H100/H200) at the launch constants
a run would use, and prints one JSON line per kernel and dtype: registers per thread, stack bytes (spilled
registers), shared memory. Triton's interpreter cannot build, so TRITON_INTERPRET must be 0 (or unset with a
GPU present).
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import torch

ELEMENT = {"bf16": torch.bfloat16, "fp32": torch.float32}


def resource_usage(cubin: bytes) -> dict[str, int]:
    """REG, STACK, SHARED, LOCAL... as cuobjdump reads them off a cubin."""
    import triton

    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        out = subprocess.run([str(cuobjdump), "--dump-resource-usage", file.name], capture_output=True, text=True,
                             check=True).stdout
    line = next(line for line in out.splitlines() if "REG:" in line)
    fields = (field.split(":") for field in line.split() if field.count(":") == 1)
    return {key: int(value) for key, value in fields if value.isdigit()}


def build(kernel: str, element: str, kernel_len: int, arch: int) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from bicameral.model import triton_conv

    if triton_conv.INTERPRETED:
        raise SystemExit("Triton's interpreter is on, and it cannot build kernels. Fix: run with TRITON_INTERPRET=0.")
    constants = triton_conv.launch_constants(kernel_len, ELEMENT[element])
    if kernel == "gram":
        fn, pointers = triton_conv.window_gram_kernel, {"dy_ptr": f"*{element}", "x_ptr": f"*{element}",
                                                        "g_ptr": "*fp32"}
    else:
        fn, pointers = triton_conv.toeplitz_conv_kernel, {"x_ptr": f"*{element}", "k_ptr": "*fp32",
                                                          "y_ptr": f"*{element}"}
        constants = {"FLIP": kernel == "adjoint", **constants}
    signature = {**pointers, "T": "i32", "K": "i32", "n_blocks": "i32", "M": "i32"}
    signature.update({name: "constexpr" for name in constants})
    compiled = triton.compile(ASTSource(fn, signature, constants), target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": triton_conv.NUM_WARPS})
    usage = resource_usage(compiled.asm["cubin"])
    return {"kernel": kernel, "dtype": element, "kernel_len": kernel_len, "arch": f"sm_{arch}",
            "registers": usage["REG"], "stack_bytes": usage["STACK"], "shared_bytes": compiled.metadata.shared,
            "num_warps": triton_conv.NUM_WARPS}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m bicameral.tools.kernel_resources", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", type=int, default=90, help="compute capability, e.g. 90 (H100/H200), 80 (A100)")
    parser.add_argument("--kernel-len", type=int, default=128, help="model.kernel_len (the reference's 128)")
    parser.add_argument("--dtypes", default="bf16,fp32")
    parser.add_argument("--out", default=None, help="also write the rows as a JSON list here")
    args = parser.parse_args(argv)
    rows = []
    for element in args.dtypes.split(","):
        for kernel in ("forward", "adjoint", "gram"):
            rows.append(build(kernel, element, args.kernel_len, args.arch))
            print(json.dumps(rows[-1]), flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
