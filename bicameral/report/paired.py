"""What a reviewer needs to trust a comparison: paired differences over seeds, and the confounds named.

Seed k has the same initialisation and data order in every variant, so variant - reference is taken seed by
seed (a paired t-interval), Welch's test only where the seeds do not match, and Holm's correction across
the rows of one table. Beside each difference stand the confounds the report can see: unequal LR area (a
restart adds learning rate), unequal tokens, and runs that are the very same run.
A yoked control (bicameral/report/yoked.py) holds the LR equal, so `variant - yoked(variant)` is the
unlocking alone and `yoked(variant) - baseline` the restarts alone.
"""

import statistics
from dataclasses import asdict

from bicameral.report import stats
from bicameral.report.names import yoked_label
from bicameral.report.runs import Run
from bicameral.report.summary import MIN_SEEDS_FOR_SPREAD

PAIRED_METRICS = ("final_val_loss", "best_val_loss")
PROGRESS = (0.25, 0.5, 0.75, 1.0)  # fractions of the run's tokens at which the curves are compared
LR_AREA_TOLERANCE = 0.05  # a larger relative difference in LR area is named as a confound
DETECTABLE = 0.005  # nats: the effect a study should be able to see; the table says how many seeds that takes


def finished(summaries: list[dict], variant: str) -> dict[int, dict]:
    """The variant's finished runs by seed."""
    return {s["seed"]: s for s in summaries if s["variant"] == variant and s["status"] == "finished"}


def difference(a: dict[int, float], b: dict[int, float]) -> dict | None:
    """a - b: paired over the seeds both have when there are 2 or more, else Welch's test on all of each,
    else the values alone. None when either side has nothing."""
    a = {k: v for k, v in a.items() if v is not None}
    b = {k: v for k, v in b.items() if v is not None}
    if not a or not b:
        return None
    shared = sorted(set(a) & set(b))
    if len(shared) >= 2 or (shared and (len(a) < 2 or len(b) < 2)):
        diff = stats.paired_difference([a[k] for k in shared], [b[k] for k in shared])
        seeds = shared
    elif len(a) >= 2 and len(b) >= 2:
        diff = stats.welch_difference(list(a.values()), list(b.values()))
        seeds = []
    else:
        return None
    out = asdict(diff)
    out["values"] = list(diff.values)
    out["seeds"] = seeds
    out["verdict"] = stats.verdict(diff)
    paired = diff.test == "paired t"
    out["mde"] = stats.minimum_detectable_effect(diff.sd, diff.n) if paired else None
    out["seeds_needed"] = stats.seeds_needed(diff.sd, DETECTABLE) if paired and diff.sd is not None else None
    return out


def metric_by_seed(runs: dict[int, dict], metric: str) -> dict[int, float]:
    return {k: s[metric] for k, s in runs.items() if s[metric] is not None}


def comparisons(summaries: list[dict], pairs: list[tuple[str, str]]) -> list[dict]:
    """One row per (variant, reference): the paired difference of each metric, Holm-corrected down the rows."""
    rows = []
    for variant, reference in pairs:
        a, b = finished(summaries, variant), finished(summaries, reference)
        row = {"variant": variant, "reference": reference, "n_variant": len(a), "n_reference": len(b),
               "yoked_control": any(s["yoked_to"] is not None for s in a.values())}
        for metric in PAIRED_METRICS:
            row[metric] = difference(metric_by_seed(a, metric), metric_by_seed(b, metric))
        row["lr_area"] = (mean_of(a, "lr_area"), mean_of(b, "lr_area"))
        rows.append(row)
    for metric in PAIRED_METRICS:
        cells = [row[metric] for row in rows]
        adjusted = stats.holm([c["p"] if c else None for c in cells])
        for cell, p in zip(cells, adjusted):
            if cell:
                cell["p_holm"] = p
                cell["verdict"] = verdict_after_holm(cell)
    return rows


def decisions(against_baseline: list[dict], unlocking: list[dict], margin: float,
              model_of: dict[str, str] | None = None) -> list[dict]:
    """The stated rule (stats.decide) on final val loss, for each variant with a yoked control: the unlocking
    alone (variant - yoked(variant)) and the restarts alone (yoked(variant) - baseline), side by side.

    `model_of` names each variant's model: a yoked control of another model than the baseline's differs from it
    in more than its restarts, so that row is shown but not judged."""
    restarts = {row["variant"]: row for row in against_baseline}
    rows = []
    for row in unlocking:
        for question, pair in (("unlocking", row), ("restarts", restarts.get(row["reference"]))):
            cell = pair["final_val_loss"] if pair else None
            if cell is None:
                continue
            # under 3 pairs no interval is shown, so none decides: the rule needs one
            low, high = (cell["low"], cell["high"]) if cell["n"] >= MIN_SEEDS_FOR_SPREAD else (None, None)
            verdict = stats.decide(cell["mean"], low, high, margin)
            models = {(model_of or {}).get(pair[k]) for k in ("variant", "reference")}
            if question == "restarts" and len(models) > 1:
                verdict = f"not judged: {' vs '.join(sorted(map(str, models)))}, not the restarts alone"
            rows.append({"question": question, "variant": pair["variant"], "minus": pair["reference"], "n": cell["n"],
                         "mean": cell["mean"], "low": low, "high": high, "difference": cell, "verdict": verdict})
    return rows


def verdict_after_holm(cell: dict) -> str:
    """The CI decides the direction; a Holm-adjusted p above 0.05 says the family does not back it."""
    text = cell["verdict"]
    if "CI excludes 0" in text and cell.get("p_holm") is not None and cell["p_holm"] > 0.05:
        text += ", not after Holm"
    return text


def mean_of(runs: dict[int, dict], metric: str) -> float | None:
    values = [s[metric] for s in runs.values() if s[metric] is not None]
    return statistics.fmean(values) if values else None


def identical_groups(runs: list[Run]) -> list[list[str]]:
    """Runs whose every logged loss is the same, step by step: the labels of each group of 2 or more."""
    groups: dict[tuple, list[str]] = {}
    for run in runs:
        if run.train and run.status == "finished":
            groups.setdefault(run.losses, []).append(run.label)
    return [labels for labels in groups.values() if len(labels) > 1]


def identical_variants(runs: list[Run]) -> list[list[str]]:
    """Variants that are the same runs seed for seed: one row in the tables, naming them all. Each group
    leads with the variant that stands for it: one with yoked controls, else the shortest name."""
    by_variant: dict[str, dict] = {}
    for run in runs:
        if run.train and run.status == "finished":
            by_variant.setdefault(run.variant, {})[run.seed] = run.losses
    groups: dict[tuple, list[str]] = {}
    for variant, seeds in by_variant.items():
        groups.setdefault(tuple(sorted(seeds.items(), key=lambda kv: str(kv[0]))), []).append(variant)
    yoked = {yoked_label(v) for v in by_variant} & set(by_variant)
    return [sorted(group, key=lambda v: (yoked_label(v) not in yoked, len(v), v))
            for group in groups.values() if len(group) > 1]


def lr_area_warnings(rows: list[dict], variants: set[str], command: str) -> list[str]:
    """A line for each compared pair whose mean LR areas differ by more than LR_AREA_TOLERANCE."""
    lines = []
    for row in rows:
        a, b = row["lr_area"]
        if a is None or not b or abs(a - b) / b <= LR_AREA_TOLERANCE:
            continue
        if row["yoked_control"]:
            continue  # a yoked control differs from the baseline by its restarts alone: that is what it measures
        yoked = yoked_label(row["variant"])
        where = (f"{yoked} holds it equal: see the unlocking alone" if yoked in variants
                 else f"a yoked control holds it equal: {command}")
        lines.append(f"LR area: {row['variant']} trained at {a / b - 1:+.0%} the LR area of {row['reference']} "
                     f"({a:.1f} vs {b:.1f} steps at peak LR), so its difference is partly the LR's; {where}.")
    return lines


def token_warnings(summaries: list[dict]) -> list[str]:
    """One line when the finished runs' variants trained on different numbers of tokens."""
    tokens: dict[str, set[int]] = {}
    for s in summaries:
        if s["status"] == "finished" and s["tokens"] is not None:
            tokens.setdefault(s["variant"], set()).add(s["tokens"])
    if len({t for ts in tokens.values() for t in ts}) <= 1:
        return []
    listed = "; ".join(f"{v}: {', '.join(f'{t:,}' for t in sorted(ts))}" for v, ts in tokens.items())
    return [f"Tokens differ between runs, so their losses are not at the same budget: {listed}."]


def lr_area_correlation(summaries: list[dict], baseline: str | None) -> dict | None:
    """Mean final val loss against mean LR area over the variants (yoked controls aside) of the baseline's
    model: how far the LR schedule alone could explain their ranking. None under 3 such variants."""
    done = [s for s in summaries if s["status"] == "finished" and s["yoked_to"] is None
            and s["lr_area"] is not None and s["final_val_loss"] is not None]
    arch = next((s["arch"] for s in done if s["variant"] == baseline), None)
    means = {}
    for variant in dict.fromkeys(s["variant"] for s in done if arch is None or s["arch"] == arch):
        members = [s for s in done if s["variant"] == variant]
        means[variant] = (statistics.fmean(s["lr_area"] for s in members),
                          statistics.fmean(s["final_val_loss"] for s in members))
    fit = stats.pearson([m[0] for m in means.values()], [m[1] for m in means.values()])
    return None if fit is None else {"r": fit[0], "p": fit[1], "variants": len(means)}


def loss_at(run: Run, step: int) -> float | None:
    """The logged train loss at the log point nearest `step`."""
    if not run.train:
        return None
    return min(run.train, key=lambda r: abs(r["step"] - step))["loss"]


def along_the_run(runs: list[Run], pairs: list[tuple[str, str]]) -> list[dict]:
    """Per pair, the paired difference in logged train loss at 25/50/75/100% of the tokens."""
    out = []
    for variant, reference in pairs:
        a = {r.seed: r for r in runs if r.variant == variant and r.status == "finished" and r.total_steps}
        b = {r.seed: r for r in runs if r.variant == reference and r.status == "finished" and r.total_steps}
        points = []
        for fraction in PROGRESS:
            at = {k: round(fraction * r.total_steps) for k, r in a.items()}
            diff = difference({k: loss_at(r, at[k]) for k, r in a.items()},
                              {k: loss_at(r, at.get(k, round(fraction * r.total_steps))) for k, r in b.items()})
            points.append({"fraction": fraction, "difference": diff})
        out.append({"variant": variant, "reference": reference, "points": points})
    return out


def window_mean(run: Run, start: int, steps: int) -> float | None:
    """Mean logged train loss over the log points in (start, start + steps]."""
    values = [r["loss"] for r in run.train if start < r["step"] <= start + steps]
    return statistics.fmean(values) if values else None


def yoked_pairs(runs: list[Run]) -> list[tuple[Run, Run]]:
    """Each finished run with its finished yoked control (same seed)."""
    controls = {(r.yoked_to, r.seed): r for r in runs if r.yoked_to is not None and r.status == "finished"}
    return [(run, controls[(run.relative_path, run.seed)]) for run in runs
            if run.status == "finished" and (run.relative_path, run.seed) in controls]


def unlock_gap(run: Run, control: Run, unlock: dict, default_window: int | None) -> tuple[float, float] | None:
    """(run, control) mean logged train loss over the spike window after `unlock`; None where either logged none."""
    spike = next((s for s in run.spikes if s["step"] == unlock["step"]), None)
    window = (spike or {}).get("window_steps") or default_window or 5 * (run.log_every or 10)
    ours, yoked = (window_mean(r, unlock["step"], window) for r in (run, control))
    return None if ours is None or yoked is None else (ours, yoked)


def excess_loss(runs: list[Run], default_window: int | None = None) -> list[dict]:
    """Per variant with yoked controls and per unlock k: run minus its yoked control (same seed, same LR) in
    logged train loss over the spike window after the k-th unlock, paired over seeds. The spike (the peak after
    the unlock minus the score it unlocked at) grows with how steeply the loss was falling; the control falls
    alongside, so here that trend cancels."""
    by_variant: dict[str, list[tuple[Run, Run]]] = {}
    for run, control in yoked_pairs(runs):
        by_variant.setdefault(run.variant, []).append((run, control))
    out = []
    for variant, pairs in by_variant.items():
        for k in range(max(len(run.unlocks) for run, _ in pairs)):
            mine, theirs, cutoffs = {}, {}, set()
            for run, control in pairs:
                if len(run.unlocks) <= k:
                    continue
                unlock = run.unlocks[k]
                gap = unlock_gap(run, control, unlock, default_window)
                if gap is not None:
                    mine[run.seed], theirs[run.seed] = gap
                cutoffs.add(f"{unlock['from_cutoff']}->{unlock['to_cutoff']}")
            out.append({"variant": variant, "unlock": k + 1, "cutoffs": sorted(cutoffs),
                        "excess": difference(mine, theirs)})
    return out


def excess_by_seed(runs: list[Run], variant: str, default_window: int | None = None) -> dict[int, float]:
    """Per seed, the variant's run minus its yoked control over the spike window after each unlock, averaged
    over the run's unlocks: what unlocking cost that run, with the LR held equal."""
    out = {}
    for run, control in yoked_pairs(runs):
        if run.variant != variant:
            continue
        gaps = [gap for unlock in run.unlocks if (gap := unlock_gap(run, control, unlock, default_window))]
        if gaps:
            out[run.seed] = statistics.fmean(ours - yoked for ours, yoked in gaps)
    return out


def excess_contrast(runs: list[Run], variant: str, other: str) -> dict | None:
    """variant's excess loss after its unlocks minus other's, paired over seeds: is one model's unlock cheaper
    than another's, each against its own yoked control? (e.g. bicameral vs the frequency path alone)."""
    return difference(excess_by_seed(runs, variant), excess_by_seed(runs, other))
