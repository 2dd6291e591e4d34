"""Held-out evaluation and samples for every run of a study (or any sweep dir):

    python experiments/study_report.py multirun/study/<date_time> [--out experiments/results] [--batches N]

For each finished run with a checkpoint: loss in nats/byte and bits/byte on the held-out Shakespeare split
and on the unseen Python docs, each scored whole by default (bicameral/tools/evaluate.py), beside the order-0
yardsticks of each text. Kept per run, so each
variant's paired difference to the baseline (same seed) comes with its 95% interval, as in the sweep's own
report; then a sample from each variant's first seed (same prompt, temperature, top-k and seed).
"""

import argparse
import json
from pathlib import Path

import torch

from bicameral.checkpoint.format import load_checkpoint
from bicameral.data.tokenizer import ByteTokenizer
from bicameral.errors import exit_on_bad_input
from bicameral.report.paired import difference
from bicameral.report.runs import load_runs
from bicameral.report.summary import mean_spread, pick_baseline
from bicameral.report.tables import format_difference, format_stat, format_table
from bicameral.tools.evaluate import evaluate
from bicameral.tools.sample import generate, load_model

CORPORA = ("shakespeare-val", "python-docs")
UNIT = "nats_per_byte"


def yardsticks(result: dict, corpus: str) -> str:
    """e.g. 'python-docs: its own bytes 3.26, the training split's 3.71 nats/byte'"""
    train = f", the training split's {result[corpus]['order0_train']:.3f}" if "order0_train" in result[corpus] else ""
    return f"{corpus}: its own bytes {result[corpus]['order0_self']:.3f}{train} nats/byte"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--out", default=None, help="write study_eval.md and study_eval.json here")
    parser.add_argument("--baseline", default=None, help="the variant the others are measured against")
    parser.add_argument("--batches", type=int, default=None,
                        help="score this many batches of evenly spaced windows (default: each text whole)")
    parser.add_argument("--no-unseen", action="store_true",
                        help="score only the held-out Shakespeare split, not the unseen Python docs (half the time)")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--tokens", type=int, default=240)
    args = parser.parse_args(argv)

    runs = [r for r in load_runs(args.root) if r.status == "finished" and (r.path / "checkpoint.pt").exists()]
    per_run, samples = [], {}
    tokenizer = ByteTokenizer()
    for i, run in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {run.label}", flush=True)
        checkpoint = run.path / "checkpoint.pt"
        per_run.append({"label": run.label, "variant": run.variant, "seed": run.seed,
                        **evaluate(str(checkpoint), n_batches=args.batches, unseen=not args.no_unseen)})
        if run.variant not in samples:
            model = load_model(load_checkpoint(checkpoint), torch.device("cpu"))
            prompt = torch.from_numpy(tokenizer.encode(args.prompt)).long()[None]  # (1, T0)
            out = generate(model, prompt, args.tokens, 0.8, 40, torch.Generator().manual_seed(0))
            samples[run.variant] = tokenizer.decode(out[0].tolist())

    variants = list(dict.fromkeys(r["variant"] for r in per_run))
    # a run on another corpus has no shakespeare-val: compare what every run was scored on
    corpora = [c for c in CORPORA if all(c in r for r in per_run)]
    baseline = pick_baseline(runs, args.baseline)
    by_seed = {v: {r["seed"]: r for r in per_run if r["variant"] == v} for v in variants}
    headers = ["variant", "n", *[f"{c} nats/byte" for c in corpora],
               *[f"{c} minus {baseline} [95% CI]" for c in corpora]]
    rows, summary = [], {}
    for v in variants:
        seeds = by_seed[v]
        stats = {c: mean_spread([r[c][UNIT] for r in seeds.values()]) for c in corpora}
        diffs = {c: difference({k: r[c][UNIT] for k, r in seeds.items()},
                               {k: r[c][UNIT] for k, r in by_seed.get(baseline, {}).items()})
                 if v != baseline else None for c in corpora}
        summary[v] = {"stats": stats, "minus_baseline": diffs}
        rows.append([v, str(len(seeds)), *[format_stat(stats[c], len(seeds), 3) for c in corpora],
                     *[format_difference(diffs[c]) for c in corpora]])
    table = format_table(headers, rows, markdown=True)
    notes = ["Each text scored whole. ±: sample std over 3 or more seeds; under 3, each seed's value. "
             "minus: paired over seeds (seed k against seed k), its 95% t-interval; under 3 pairs, each pair's.",
             "Order-0 yardsticks, the score of a model that knows only how common each byte is: "
             + "; ".join(yardsticks(per_run[0], c) for c in corpora) + ". A model above its text's own order-0 "
             "entropy is miscalibrated on that text: it measures how far its bytes differ, not generalisation."]
    text = [table, "", *notes, "", "Samples (prompt " + repr(args.prompt) + ", temperature 0.8, top-k 40, seed 0):", ""]
    for variant, sample in samples.items():
        text += [f"**{variant}**", "", "```", sample, "```", ""]
    report = "\n".join(text)
    print(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "study_eval.md").write_text(report + "\n", encoding="utf-8")
        (out / "study_eval.json").write_text(json.dumps(
            {"baseline": baseline, "runs": per_run, "variants": summary, "samples": samples}, indent=2) + "\n")


if __name__ == "__main__":
    with exit_on_bad_input():  # an unreadable or unsafe checkpoint: one line, no traceback
        main()
