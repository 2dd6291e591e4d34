"""A sweep's report: everything comparison.json holds, and the files written beside it.

    runs = load_runs(sweep_dir)
    report = write_report(runs, sweep_dir, out_dir)  # comparison.{md,json,png,pdf,svg} and runs.csv in out_dir
    print(report_text(report))
"""

import csv
import json
from pathlib import Path

from bicameral.files import write_text_atomically, written_atomically
from bicameral.report import paired
from bicameral.report.names import yoked_label
from bicameral.report.runs import Run, shared_overrides
from bicameral.report.summary import pick_baseline, summarize_run, summarize_unlocks, summarize_variants, sweep_title
from bicameral.report.tables import report_text

FIGURE_FORMATS = ("png", "pdf", "svg")  # the PNG for a screen, the PDF and SVG for a paper draft
RUN_COLUMNS = ("variant", "seed", "status", "final_val_loss", "best_val_loss", "final_val_bits_per_byte",
               "lr_area", "unlock_steps",
               "restart_steps", "tokens", "wall_time_s", "label", "yoked_to", "path")


def yoke_command(root: str | Path) -> str:
    return f"python -m bicameral.report.yoked {root}"


def build_report(runs: list[Run], root: str | Path, target_loss: float = 2.0, title: str | None = None,
                 baseline: str | None = None, decision_margin: float | None = None) -> dict:
    """Everything comparison.json holds: each run's numbers, each variant's, the paired differences against
    the baseline and against each variant's yoked control, and the confounds in words. With a decision
    margin, the stated rule's verdict on the unlocking and the restarts (paired.decisions)."""
    summaries = [summarize_run(r, target_loss) for r in runs]
    variants = summarize_variants(summaries)
    names = [v["variant"] for v in variants]
    base = pick_baseline(runs, baseline)
    identical = paired.identical_variants(runs)
    hidden = {v for group in identical for v in group[1:]}  # each group is shown, and tested, once
    if base is not None:
        hidden |= {v for group in identical if base in group for v in group}
    against_baseline = [(v, base) for v in names if base is not None and v != base and v not in hidden]
    unlocking = [(v, yoked_label(v)) for v in names if yoked_label(v) in names and v not in hidden]
    report = {
        "sweep": str(root), "title": title or sweep_title(Path(root), runs), "target_loss": target_loss,
        "shared_overrides": shared_overrides([r.overrides for r in runs if r.yoked_to is None]), "baseline": base,
        "runs": summaries, "variants": variants, "unlocks": summarize_unlocks(summaries),
        "identical_variants": identical,
        "paired": paired.comparisons(summaries, against_baseline),
        "unlocking": paired.comparisons(summaries, unlocking),
        "along": paired.along_the_run(runs, against_baseline + unlocking),
        "excess": paired.excess_loss(runs),
        "lr_area_vs_final_val": paired.lr_area_correlation(summaries, base),
    }
    if decision_margin is not None:
        report["decision"] = {"margin": decision_margin,
                              "rows": paired.decisions(report["paired"], report["unlocking"], decision_margin,
                                                       model_of={r.variant: model_name(r) for r in runs})}
    report["confounds"] = confounds(report, runs, root)
    return report


def model_name(run: Run) -> str:
    """A run's model in a few words: its architecture, width and depth."""
    return f"{run.arch} d{run.d_model}x{run.n_layers}"


def confounds(report: dict, runs: list[Run], root: str | Path) -> list[str]:
    """The confounds in words: LR area, tokens, identical runs, and how far the LR area alone orders the runs."""
    names = {v["variant"] for v in report["variants"]}
    lines = paired.lr_area_warnings(report["paired"] + report["unlocking"], names, yoke_command(root))
    lines += paired.token_warnings(report["runs"])
    for group in report["identical_variants"]:
        lines.append(f"Identical: {' ≡ '.join(group)} are the same runs, step by step and seed by seed; they are "
                     "one result, not a replication, and are shown and tested once.")
    in_variant_groups = {v for group in report["identical_variants"] for v in group}
    variant_of = {r.label: r.variant for r in runs}
    for labels in paired.identical_groups(runs):
        if not {variant_of[label] for label in labels} <= in_variant_groups:
            lines.append(f"Identical runs: {', '.join(labels)} logged the same loss at every step.")
    fit = report["lr_area_vs_final_val"]
    if fit is not None:
        lines.append(f"Across {fit['variants']} variants (yoked controls aside), mean final val loss against mean LR "
                     f"area: r = {fit['r']:+.2f} (p = {fit['p']:.3g}). The closer r is to -1, the more a ranking by "
                     "loss is a ranking by the LR schedule.")
    return lines


def write_runs_csv(summaries: list[dict], path: Path) -> None:
    """One row per run, for a spreadsheet or pandas: lists as space-separated steps."""
    with written_atomically(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(RUN_COLUMNS)
        for s in summaries:
            writer.writerow([" ".join(map(str, s[c])) if isinstance(s[c], list) else ("" if s[c] is None else s[c])
                             for c in RUN_COLUMNS])


def write_report(runs: list[Run], root: str | Path, out_dir: str | Path, target_loss: float = 2.0,
                 title: str | None = None, baseline: str | None = None, labels: dict[str, str] | None = None,
                 decision_margin: float | None = None) -> dict:
    """Write comparison.{md,json}, runs.csv and the figure (PNG, PDF, SVG) to out_dir; returns the report.
    labels: legend names for variants (old -> new)."""
    from bicameral.report.plot import plot_comparison  # matplotlib only where a figure is drawn

    out_dir = Path(out_dir)
    report = build_report(runs, root, target_loss, title, baseline, decision_margin)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = report_text(report, markdown=True)
    page = f"# {report['title']}\n\n![curves](comparison.png)\n\n{markdown}\n"
    write_text_atomically(out_dir / "comparison.md", page)
    write_text_atomically(out_dir / "comparison.json", json.dumps(report, indent=2) + "\n")
    write_runs_csv(report["runs"], out_dir / "runs.csv")
    plot_comparison(runs, [out_dir / f"comparison.{ext}" for ext in FIGURE_FORMATS], report["title"],
                    report["baseline"], labels or {})
    return report
