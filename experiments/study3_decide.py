"""The third study's verdicts, by the rule stated in the README before its runs:

    python experiments/study3_decide.py multirun/study3/<dir> [--out experiments/results/study3]

- the full comparison report of the sweep and its yoked controls (bicameral/report), with the decision table:
  for each curriculum, the unlocking alone (v - yoked(v)) and the restarts alone (yoked(v) - none), judged at
  a margin of 0.005 nats;
- the reference's spike claim: the bicameral model's excess loss after its unlocks (run - yoked control, over
  the spike window) minus the frequency path alone's, both unlocking at 100/200/300, paired over seeds. It
  holds only if that difference is below 0 with its 95% interval.
"""

import argparse
from pathlib import Path

from bicameral.files import write_text_atomically
from bicameral.report.paired import excess_contrast
from bicameral.report.runs import load_runs
from bicameral.report.tables import format_difference
from bicameral.report.write import report_text, write_report

MARGIN = 0.005  # nats: the rule's margin, stated before the runs
BICAMERAL, FREQ_ONLY = "+study=step_schedule", "+study=freq_only_step_schedule"


def spike_claim(runs) -> tuple[dict | None, str]:
    contrast = excess_contrast(runs, BICAMERAL, FREQ_ONLY)
    if contrast is None or contrast["high"] is None:
        return contrast, "we could not tell (too few paired seeds)"
    if contrast["high"] < 0:
        return contrast, "supported: the bicameral model's unlocks cost less than the frequency path's alone"
    if contrast["low"] > 0:
        return contrast, "contradicted: the bicameral model's unlocks cost more than the frequency path's alone"
    return contrast, "we could not tell: the interval holds 0"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: the sweep dir)")
    args = parser.parse_args(argv)
    runs = load_runs(args.sweep_dir)
    report = write_report(runs, args.sweep_dir, args.out or args.sweep_dir, title="Third study",
                          decision_margin=MARGIN)
    contrast, verdict = spike_claim(runs)
    lines = [report_text(report, brief=True), "",
             f"Spike claim: excess loss after unlocks, {BICAMERAL} minus {FREQ_ONLY} (each against its yoked "
             f"control, paired over seeds): {format_difference(contrast)}: {verdict}."]
    text = "\n".join(lines)
    print(text)
    out = args.out or args.sweep_dir
    write_text_atomically(out / "decision.md", text + "\n")


if __name__ == "__main__":
    main()
