"""Compare the runs of a sweep (or of one run dir): per-run and per-variant tables, and the curves.

    python train.py -m curriculum=achievement,fixed_threshold,none seed=0,1,2
    python experiments/compare_curricula.py multirun/2026-11-26/12-00-00 [--target-loss 2.0] [--out DIR]

Prints the tables and writes comparison.md, comparison.json and comparison.png (to the sweep dir by default).
Every sweep already writes them at its end (bicameral/sweep_report.py); this redoes it by hand, on any sweep dir.
"""

import argparse
import sys
from pathlib import Path

try:
    from bicameral.compare import load_runs, report_text, write_report
except ImportError:  # a checkout that is not pip-installed: the package sits next to experiments/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bicameral.compare import load_runs, report_text, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare the runs of a Hydra sweep dir (or of one run dir).")
    parser.add_argument("sweep_dir", type=Path, help="e.g. multirun/2026-11-26/12-00-00")
    parser.add_argument("--target-loss", type=float, default=2.0,
                        help="report the first logged step whose train loss is at or below this (default 2.0)")
    parser.add_argument("--out", type=Path, help="where to write comparison.{md,json,png} (default: the sweep dir)")
    parser.add_argument("--title", help="the figure's and the report's title (default: the sweep's name)")
    args = parser.parse_args(argv)

    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir} is not a directory", file=sys.stderr)
        return 2
    runs = load_runs(args.sweep_dir)
    if not runs:
        print(f"error: no runs under {args.sweep_dir} (no metrics.jsonl or .hydra/overrides.yaml at any depth)",
              file=sys.stderr)
        return 2
    out = args.out or args.sweep_dir
    print(report_text(write_report(runs, args.sweep_dir, out, args.target_loss, args.title)))
    print(f"\nWrote comparison.md, comparison.json and comparison.png to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
