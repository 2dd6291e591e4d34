"""Held-out evaluation and samples for every run of a study (or any sweep dir):

    python experiments/study_report.py multirun/study/<date_time> [--out experiments/results]

For each run with a checkpoint: loss in nats/byte and bits/byte on the held-out Shakespeare split
and on the unseen Python docs (bicameral/evaluate.py), aggregated per variant as mean ± sample std
over seeds; then a sample from each variant's first seed (same prompt, temperature, top-k and seed).
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from any cwd without an install

import torch  # noqa: E402

from bicameral.checkpoint import load_checkpoint  # noqa: E402
from bicameral.compare import format_stat, format_table, load_runs, mean_spread  # noqa: E402
from bicameral.errors import exit_on_bad_input  # noqa: E402
from bicameral.evaluate import evaluate  # noqa: E402
from bicameral.sample import generate, load_model  # noqa: E402
from bicameral.tokenizer import ByteTokenizer  # noqa: E402

CORPORA = ("shakespeare-val", "python-docs")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--out", default=None, help="write study_eval.md and study_eval.json here")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--tokens", type=int, default=240)
    args = parser.parse_args(argv)

    groups: dict[str, list[dict]] = {}
    samples: dict[str, str] = {}
    tokenizer = ByteTokenizer()
    for run in load_runs(args.root):
        checkpoint = run.path / "checkpoint.pt"
        if run.status != "finished" or not checkpoint.exists():
            continue
        groups.setdefault(run.variant, []).append(evaluate(str(checkpoint)))
        if run.variant not in samples:
            model = load_model(load_checkpoint(checkpoint), torch.device("cpu"))
            prompt = torch.from_numpy(tokenizer.encode(args.prompt)).long()[None]  # (1, T0)
            out = generate(model, prompt, args.tokens, 0.8, 40, torch.Generator().manual_seed(0))
            samples[run.variant] = tokenizer.decode(out[0].tolist())

    headers = ["variant", "n", *[f"{c} {unit}" for c in CORPORA for unit in ("nats/byte", "bits/byte")]]
    rows, summary = [], {}
    for group, results in groups.items():
        stats = {f"{c}/{u}": mean_spread([r[c][u] for r in results]) for c in CORPORA
                 for u in ("nats_per_byte", "bits_per_byte")}
        summary[group] = stats
        rows.append([group, str(len(results)), *[format_stat(s, len(results), 3) for s in stats.values()]])
    table = format_table(headers, rows, markdown=True)
    text = [table, "", "Samples (prompt " + repr(args.prompt) + ", temperature 0.8, top-k 40, seed 0):", ""]
    for group, sample in samples.items():
        text += [f"**{group}**", "", "```", sample, "```", ""]
    report = "\n".join(text)
    print(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "study_eval.md").write_text(report + "\n", encoding="utf-8")
        (out / "study_eval.json").write_text(json.dumps({"groups": summary, "samples": samples}, indent=2) + "\n")


if __name__ == "__main__":
    with exit_on_bad_input():  # an unreadable or unsafe checkpoint: one line, no traceback
        main()
