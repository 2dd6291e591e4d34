"""The first two studies re-read with paired statistics, from their checked-in comparison.json files:

    python experiments/reread_studies.py [--out experiments/results/reread]

Their run dirs are gone, but each comparison.json kept every run's final val loss and unlock steps. The
LR area of each run follows from the studies' pinned schedule (conf/budget/first_study.yaml: cosine,
400 steps, 20 warmup steps, floor 0.1 x peak), restarted at its unlocks unless the variant turned
restarts off, and at schedule.restart_steps for the restarts-only control. Each variant is then paired
seed by seed against `none` of the same sweep, as bicameral/report does for a new sweep.
"""

import argparse
import json
from pathlib import Path

import torch

from bicameral.report import stats
from bicameral.report.paired import comparisons
from bicameral.report.tables import format_difference, format_p, format_table
from bicameral.schedule import CosineWithRestarts

RESULTS = Path(__file__).resolve().parent / "results"
STUDIES = {  # the sweep's report, and its baseline variant
    "first study (curriculum_comparison + study)": (RESULTS / "study" / "comparison.json", "curriculum=none"),
    "second study (study_controls)": (RESULTS / "study_controls" / "comparison.json", "+study=none"),
}
TOTAL_STEPS, WARMUP, FLOOR = 400, 20, 0.1
NO_RESTART = ("no_lr_restart", "unlock_only")  # trainer.restart_lr=false
EXTRA_RESTARTS = {"restarts_only": [50, 100, 150]}  # conf/study/restarts_only.yaml


def lr_area(restarts: list[int]) -> float:
    """Sum over the 400 steps of lr / peak, restarting the cycle at each of `restarts`."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = CosineWithRestarts(optimizer, TOTAL_STEPS, WARMUP, FLOOR, restart_steps=restarts)
    area = 0.0
    for _ in range(TOTAL_STEPS):
        area += optimizer.param_groups[0]["lr"]
        optimizer.step()  # no gradient: a no-op, in the order torch expects
        schedule.step()
    return area


def variant_of(run: dict) -> str:
    """The variant without the preset, the same in the old reports (group) and the new (variant)."""
    return ",".join(sorted(o for o in run["overrides"] if not o.startswith(("+experiment=", "seed="))))


def runs_of(path: Path) -> list[dict]:
    out = []
    for run in json.loads(path.read_text())["runs"]:
        if run["status"] != "finished":
            continue
        variant = variant_of(run)
        restarts = [] if any(n in variant for n in NO_RESTART) else [u["step"] for u in run["unlocks"]]
        restarts += next((steps for n, steps in EXTRA_RESTARTS.items() if n in variant), [])
        out.append({"variant": variant, "seed": run["seed"], "final_val_loss": run["final_val_loss"],
                    "best_val_loss": run["best_val_loss"],
                    "arch": run["arch"],
                    "lr_area": lr_area(sorted(set(restarts))), "unlock_steps": [u["step"] for u in run["unlocks"]]})
    return out


def reread(name: str, path: Path, baseline: str) -> tuple[str, dict]:
    runs = runs_of(path)
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    by_seed = {v: {r["seed"]: r for r in runs if r["variant"] == v} for v in variants}
    summaries = [{**r, "status": "finished", "yoked_to": None} for r in runs]
    rows, saved = [], {}
    for row in comparisons(summaries, [(v, baseline) for v in variants if v != baseline]):
        cell, (area, base_area) = row["final_val_loss"], row["lr_area"]
        rows.append([row["variant"], str(cell["n"]), format_difference(cell), format_p(cell["p_holm"]),
                     cell["verdict"], f"{area:.1f}", f"{area / base_area:.3f}"])
        saved[row["variant"]] = {**cell, "lr_area": area}
    # the curricula of the bicameral model that reach full resolution with restarts, and the baseline
    curricula = [v for v in variants if all(r["arch"] == "bicameral" and (r["unlock_steps"] or v == baseline)
                                            and not any(n in v for n in NO_RESTART) for r in by_seed[v].values())]
    means = {v: [sum(r[k] for r in by_seed[v].values()) / len(by_seed[v]) for k in ("lr_area", "final_val_loss")]
             for v in curricula}
    fit = stats.pearson([m[0] for m in means.values()], [m[1] for m in means.values()])
    headers = ["variant", "n", f"Δ final val vs {baseline} [95% CI]", "p (Holm)", "verdict", "LR area", "ratio"]
    text = [f"## {name}", "", format_table(headers, rows, markdown=True), ""]
    if fit is not None:
        text.append(f"Mean final val loss against mean LR area over the {len(curricula)} variants of the bicameral "
                    f"model with restarts at their unlocks, and {baseline}: r = {fit[0]:+.2f} (p = {fit[1]:.2g}); "
                    f"{', '.join(curricula)}.")
    return "\n".join(text), {"baseline": baseline, "variants": saved,
                             "lr_area_vs_final_val": None if fit is None else {"r": fit[0], "p": fit[1]}}


# the second study's 2x2 at steps 50/100/150: (LR restarts, unlocking) -> its variant
FACTORIAL = {(False, False): "+study=none", (True, False): "+study=restarts_only",
             (False, True): "+study=unlock_only", (True, True): "+study=achievement"}


def factorial(path: Path) -> tuple[str, dict]:
    """The restarts and the unlocking as two factors, each effect averaged over the other's levels, and their
    interaction, seed by seed: (restarts_only - none + achievement - unlock_only) / 2, and so on."""
    runs = runs_of(path)
    cell = {key: {r["seed"]: r["final_val_loss"] for r in runs if r["variant"] == variant}
            for key, variant in FACTORIAL.items()}
    seeds = sorted(set.intersection(*(set(c) for c in cell.values())))
    v = {key: [cell[key][s] for s in seeds] for key in cell}
    effects = {
        "LR restarts": [(a - b + c - d) / 2 for a, b, c, d in zip(v[True, False], v[False, False],
                                                                   v[True, True], v[False, True])],
        "unlocking": [(a - b + c - d) / 2 for a, b, c, d in zip(v[False, True], v[False, False],
                                                                 v[True, True], v[True, False])],
        "interaction": [(a - b) - (c - d) for a, b, c, d in zip(v[True, True], v[False, True],
                                                                 v[True, False], v[False, False])],
    }
    rows, saved = [], {}
    for name, values in effects.items():
        diff = stats.paired_difference(values, [0.0] * len(values))
        cell = {"n": diff.n, "mean": diff.mean, "low": diff.low, "high": diff.high, "p": diff.p, "test": diff.test}
        rows.append([name, str(diff.n), format_difference(cell), format_p(diff.p), stats.verdict(diff)])
        saved[name] = cell
    text = ["## second study as a 2x2: LR restarts x unlocking, both at steps 50/100/150", "",
            "Cells: " + "; ".join(f"{variant}: {'with' if r else 'no'} restarts, {'with' if u else 'no'} unlocking"
                                  for (r, u), variant in FACTORIAL.items()) + ". "
            "Each effect is averaged over the other factor's two levels, seed by seed; the interaction is the "
            "restarts' effect with unlocking minus without.", "",
            format_table(["effect on final val loss", "n", "Δ [95% CI]", "p", "verdict"], rows, markdown=True)]
    return "\n".join(text), saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write reread.md and reread.json here")
    args = parser.parse_args(argv)
    parts, saved = [], {}
    for name, (path, baseline) in STUDIES.items():
        text, saved[name] = reread(name, path, baseline)
        parts.append(text)
    text, saved["second study as a 2x2"] = factorial(STUDIES["second study (study_controls)"][0])
    parts.append(text)
    report = "\n\n".join(parts) + "\n"
    print(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "reread.md").write_text(report, encoding="utf-8")
        (args.out / "reread.json").write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
