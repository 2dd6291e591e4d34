"""Each run's numbers, and each variant's over its seeds: the descriptive half of a report.

No ± under 3 seeds: with one or two, a variant shows its values themselves (`values`), never a spread.
"""

import math
import re
import statistics
from pathlib import Path

from bicameral.report.names import PRESET_KEY, override_key, sweep_id
from bicameral.report.runs import BASELINE_CURRICULUM, Run

VARIANT_METRICS = ("final_val_loss", "best_val_loss", "final_val_bits_per_byte", "lr_area", "tokens", "steps_to_target",
                   "steps_to_full_resolution", "mean_spike", "mean_recovery_steps", "wall_time_s")
MIN_SEEDS_FOR_SPREAD = 3  # a sample std of two values says almost nothing; they are shown as they are
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}([_T ]\d{2}-\d{2}-\d{2}(-\d+)?)?$|^\d{2}-\d{2}-\d{2}(-\d+)?$")


def number(x) -> float | None:
    """x, or None where there is no number: a NaN loss (no validation ran) reads as missing, and stays valid JSON."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def mean_or_none(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def steps_to_target(train: list[dict], target: float) -> tuple[int, int] | None:
    """(step, tokens) of the first logged train loss <= target; None if the run never got there."""
    for row in train:
        if row["loss"] <= target:
            return row["step"], row["tokens"]
    return None


def unlock_summary(unlock: dict, spike: dict | None) -> dict:
    """One unlock, with its spike when it was measured (spike fields None when not)."""
    spike = spike or {}
    return {"step": unlock["step"], "tokens": unlock["tokens"], "from_cutoff": unlock["from_cutoff"],
            "to_cutoff": unlock["to_cutoff"], "score": number(unlock["score"]), "reason": unlock["reason"],
            "measured": bool(spike), "spike": number(spike.get("spike")),
            "recovery_steps": spike.get("recovery_steps"), "window_steps": spike.get("window_steps")}


def summarize_run(run: Run, target_loss: float) -> dict:
    """The run's numbers: from its finish row when it finished, else from what it logged before it stopped."""
    finish = run.finish if run.status == "finished" else {}
    val_losses = [r["val_loss"] for r in run.val]
    hit = steps_to_target(run.train, target_loss)
    spikes = {s["step"]: s for s in run.spikes}
    unlocks = [unlock_summary(u, spikes.get(u["step"])) for u in run.unlocks]
    measured = [u for u in unlocks if u["measured"]]
    recovered = [u["recovery_steps"] for u in measured if u["recovery_steps"] is not None]
    return {
        "label": run.label,
        "variant": run.variant,
        "overrides": run.overrides,
        "path": str(run.path),
        "status": run.status,
        "error": run.error,
        "curriculum": run.curriculum,
        "arch": run.arch,
        "threshold": run.threshold,
        "seed": run.seed,
        "d_model": run.d_model,
        "n_layers": run.n_layers,
        "yoked_to": run.yoked_to,
        "last_step": run.train[-1]["step"] if run.train else None,
        "total_steps": run.total_steps,
        "tokens": run.tokens,
        "final_val_loss": number(finish.get("final_val_loss", val_losses[-1] if val_losses else None)),
        "best_val_loss": number(finish.get("best_val_loss", min(val_losses) if val_losses else None)),
        # per byte of the val text: the one loss that compares across tokenizers
        "final_val_bits_per_byte": number(finish.get("final_val_bits_per_byte",
                                                     run.val[-1].get("bits_per_byte") if run.val else None)),
        "lr_area": number(run.lr_area),
        "restart_steps": run.restart_steps,
        "unlock_steps": [u["step"] for u in run.unlocks],
        "steps_to_target": hit[0] if hit else None,
        "tokens_to_target": hit[1] if hit else None,
        "steps_to_full_resolution": finish.get("steps_to_full_resolution"),
        "wall_time_s": number(finish.get("wall_time_s")),
        "mean_spike": mean_or_none([u["spike"] for u in measured if u["spike"] is not None]),
        "mean_recovery_steps": mean_or_none(recovered),  # over the unlocks that recovered within their window
        "unlocks_measured": len(measured),
        "unlocks_recovered": len(recovered),
        "unlocks": unlocks,
    }


def mean_spread(values: list[float]) -> dict | None:
    """Mean, and the sample std from 3 values on; fewer are kept as they are, to be shown one by one."""
    if not values:
        return None
    spread = statistics.stdev(values) if len(values) >= MIN_SEEDS_FOR_SPREAD else None
    return {"mean": statistics.fmean(values), "spread": spread, "n": len(values), "values": list(values)}


def summarize_variants(summaries: list[dict]) -> list[dict]:
    """Per variant: its run counts, and each metric's mean (and spread) over its finished runs that have it."""
    variants: dict[str, list[dict]] = {}
    for s in summaries:
        variants.setdefault(s["variant"], []).append(s)
    out = []
    for name, members in variants.items():
        # a crashed run's numbers stop wherever it crashed: averaging them in would mislead
        done = [s for s in members if s["status"] == "finished"]
        stats = {m: mean_spread([s[m] for s in done if s[m] is not None]) for m in VARIANT_METRICS}
        out.append({"variant": name, "runs": len(members), "finished": len(done), **stats,
                    "seeds": [s["seed"] for s in done],
                    "unlocks_measured": sum(s["unlocks_measured"] for s in done),
                    "unlocks_recovered": sum(s["unlocks_recovered"] for s in done)})
    return out


def summarize_unlocks(summaries: list[dict]) -> list[dict]:
    """Per variant and k: its finished runs' k-th unlocks, with the step, spike and recovery over the seeds
    (the question "is the 2nd unlock's spike larger?" needs them apart, not averaged per run)."""
    out = []
    for variant in dict.fromkeys(s["variant"] for s in summaries):
        done = [s for s in summaries if s["variant"] == variant and s["status"] == "finished"]
        for k in range(max((len(s["unlocks"]) for s in done), default=0)):
            unlocks = [s["unlocks"][k] for s in done if len(s["unlocks"]) > k]
            # an unlock at the run's last step has a spike record with an empty window, and no spike
            measured = [u for u in unlocks if u["measured"] and u["spike"] is not None]
            recovered = [u["recovery_steps"] for u in measured if u["recovery_steps"] is not None]
            out.append({"variant": variant, "unlock": k + 1, "runs": len(done),
                        "cutoffs": sorted({f"{u['from_cutoff']}->{u['to_cutoff']}" for u in unlocks}),
                        "step": mean_spread([u["step"] for u in unlocks]),
                        "spike": mean_spread([u["spike"] for u in measured]),
                        "recovery_steps": mean_spread(recovered),
                        "measured": len(measured), "recovered": len(recovered)})
    return out


def pick_baseline(runs: list[Run], requested: str | None = None) -> str | None:
    """The variant the others are measured against: `requested` when given (it must exist), else the one a
    `...=none` override names (curriculum=none, +study=none), else the first whose runs train with curriculum
    none, else the first variant. Yoked controls are never the baseline: they restart the LR."""
    variants = list(dict.fromkeys(r.variant for r in runs if r.train and r.yoked_to is None))
    if requested is not None:
        if requested not in variants:
            raise ValueError(f"--baseline {requested!r} is not a variant of this sweep; "
                             f"its variants: {', '.join(variants) or 'none with a logged loss'}.")
        return requested
    named = [v for v in variants
             if any(o.split("=", 1)[1:] == [BASELINE_CURRICULUM] for o in v.split(","))]
    plain = [v for v in variants if all(r.curriculum == BASELINE_CURRICULUM for r in runs if r.variant == v)]
    return (named or plain or variants or [None])[0]


def sweep_title(root: Path, runs: list[Run]) -> str:
    """The sweep's name without its timestamp: multirun/curriculum_comparison/2026-11-26_22-30-51 ->
    curriculum_comparison. The presets its runs share come first where the dir does not say them; a dir named
    only by date and time gives way to those presets, or to its variants."""
    presets = sorted({o.split("=", 1)[1] for r in runs for o in (r.overrides or ()) if override_key(o) == PRESET_KEY})
    parts = [p for p in sweep_id(root).split("/") if not TIMESTAMP.match(p) and p != "multirun"]
    if Path(root).resolve().name == "multirun":  # the multirun root itself: its parent says nothing
        parts = []
    name = "/".join(parts)
    missing = [p for p in presets if p not in name]
    title = " · ".join(x for x in (" + ".join(missing), name) if x)
    if title:
        return title
    variants = list(dict.fromkeys(r.variant for r in runs if r.yoked_to is None))
    return " vs ".join(variants) if len(variants) <= 3 else f"{len(variants)} variants"
