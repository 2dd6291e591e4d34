"""bicameral-compare SWEEP_DIR (python -m bicameral.report): the comparison report of a sweep (or of one run
dir), on demand.

Every sweep writes it at its end (bicameral/report/sweep_callback.py); this redoes it on any sweep dir,
with the options a paper draft wants: another baseline, a title, legend names.
"""

import argparse
import sys
from pathlib import Path

from bicameral.report.runs import load_runs
from bicameral.report.write import FIGURE_FORMATS, report_text, write_report
from bicameral.tools.cli import positive_float, program, run_tool


def parse_label(text: str) -> tuple[str, str]:
    # a variant label holds '=' itself (curriculum=none): the last '=' splits old from new
    old, sep, new = text.rpartition("=")
    if not sep or not old or not new:
        raise argparse.ArgumentTypeError(f"--label {text!r}: use --label VARIANT=NAME, e.g. --label "
                                         "'curriculum=none=baseline'.")
    return old, new


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=program("bicameral.report"),
                                description="Compare the runs of a Hydra sweep dir (or of one run dir).")
    p.add_argument("sweep_dir", type=Path, help="e.g. multirun/2026-11-26/12-00-00")
    p.add_argument("--out", type=Path, help="where to write the report (default: the sweep dir)")
    p.add_argument("--baseline", help="the variant the others are measured against (default: the none curriculum)")
    p.add_argument("--title", help="the figure's and the report's title (default: the sweep's name)")
    p.add_argument("--label", type=parse_label, action="append", default=[], metavar="VARIANT=NAME",
                   help="the figure's legend name for a variant; repeatable")
    p.add_argument("--decision-margin", type=positive_float, metavar="NATS",
                   help="add the verdict of a rule stated before the runs: helps / null / hurts at this margin, for "
                        "the unlocking (variant - its yoked control) and the restarts (yoked control - baseline)")
    p.add_argument("--target-loss", type=float, default=2.0,
                   help="report the first logged step whose train loss is at or below this (default 2.0)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir} is not a directory. Fix: pass a sweep dir such as multirun/<date>/<time>.",
              file=sys.stderr)
        return 2
    runs = load_runs(args.sweep_dir)
    if not runs:
        print(f"error: no runs under {args.sweep_dir} (no metrics.jsonl or .hydra/overrides.yaml at any depth).",
              file=sys.stderr)
        return 2
    out = args.out or args.sweep_dir
    try:
        report = write_report(runs, args.sweep_dir, out, args.target_loss, args.title, args.baseline,
                              dict(args.label), args.decision_margin)
    except ValueError as err:  # an unknown --baseline
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report_text(report))
    figures = ", ".join(f"comparison.{ext}" for ext in FIGURE_FORMATS)
    print(f"\nWrote comparison.md, comparison.json, runs.csv, {figures} to {out}")
    return 0


def cli() -> None:
    run_tool(main)


if __name__ == "__main__":
    cli()
