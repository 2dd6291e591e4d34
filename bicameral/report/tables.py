"""The report as text: its tables and notes, aligned plain text for the console or markdown for the file."""

from bicameral.report.paired import DETECTABLE, LR_AREA_TOLERANCE, PAIRED_METRICS, PROGRESS
from bicameral.report.summary import MIN_SEEDS_FOR_SPREAD

DASH = "—"  # never reached, or never logged
METRIC_NAMES = {"final_val_loss": "final val", "best_val_loss": "best val"}


def format_tokens(n: int) -> str:
    """Three significant digits: 40960 -> 41K, 204800 -> 0.205M, 1638400 -> 1.64M."""
    if n >= 1e9:
        return f"{n / 1e9:.3g}B"
    if n >= 1e5:
        return f"{n / 1e6:.3g}M"
    if n >= 1e3:
        return f"{n / 1e3:.3g}K"
    return str(n)


def format_value(x: float | None, decimals: int | None, sign: bool = False) -> str:
    """x to `decimals` places; decimals=None is for step counts: whole ones bare, a mean like 32.5 to one place."""
    if x is None:
        return DASH
    if decimals is None:
        decimals = 0 if x == round(x) else 1
    return f"{x:{'+' if sign else ''}.{decimals}f}"


def format_stat(stat: dict | None, finished: int, decimals: int | None, sign: bool = False) -> str:
    """mean ± sample std from 3 values on; fewer are listed one by one. Then (k/n) when only k of the n
    finished runs have the value."""
    if stat is None:
        return DASH
    if stat["n"] < MIN_SEEDS_FOR_SPREAD and stat.get("values") is not None:
        text = ", ".join(format_value(v, decimals, sign) for v in stat["values"])
    else:
        text = format_value(stat["mean"], decimals, sign)
        if stat["spread"] is not None:
            text += f" ± {format_value(stat['spread'], decimals)}"
    return text + (f" ({stat['n']}/{finished})" if stat["n"] < finished else "")


def format_difference(cell: dict | None, decimals: int = 3) -> str:
    """-0.012 [-0.020, -0.004], the mean difference and its 95% interval; under 3 pairs, each pair's
    difference; Welch's test is named."""
    if cell is None:
        return DASH
    if cell["test"] == "paired t" and cell["n"] < MIN_SEEDS_FOR_SPREAD:
        return ", ".join(format_value(v, decimals, sign=True) for v in cell["values"])
    text = format_value(cell["mean"], decimals, sign=True)
    if cell["n"] < MIN_SEEDS_FOR_SPREAD:  # unpaired and too few for an interval: the difference of the means
        return text + f" (Welch, n={cell['n']})"
    if cell["low"] is not None:
        low, high = (format_value(cell[k], decimals, sign=True) for k in ("low", "high"))
        text += f" [{low}, {high}]"
    return text + (" (Welch)" if cell["test"] != "paired t" else "")


def format_p(p: float | None) -> str:
    if p is None:
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_table(headers: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    """Plain text with columns aligned by padding, or a markdown table."""
    if markdown:
        lines = [headers, ["---"] * len(headers), *rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(cells[i]) for cells in [headers, *rows]) for i in range(len(headers))]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines)


def format_unlock(u: dict) -> str:
    """32->64 @ 30 (0.123M), then the spike when it was measured: +0.250 rec 30 | +0.250 not rec."""
    text = f"{u['from_cutoff']}->{u['to_cutoff']} @ {u['step']} ({format_tokens(u['tokens'])})"
    if u["measured"]:
        recovery = "not rec." if u["recovery_steps"] is None else f"rec {u['recovery_steps']}"
        text += f" {format_value(u['spike'], 3, sign=True)} {recovery}"
    return text


def run_table(summaries: list[dict], target_loss: float) -> tuple[list[str], list[list[str]]]:
    """One row per run; one column per unlock, as many as the run with the most."""
    n_unlocks = max((len(s["unlocks"]) for s in summaries), default=0)
    with_bits = any(s.get("final_val_bits_per_byte") is not None for s in summaries)  # runs on tokenized data
    bits = ["bits/byte"] if with_bits else []
    headers = ["run", "status", "final val", "best val", *bits, "LR area", f"loss<={target_loss:g} at", "wall (s)",
               *[f"unlock {i + 1}" for i in range(n_unlocks)]]
    rows = []
    for s in summaries:
        unlocks = [format_unlock(u) for u in s["unlocks"]]
        target = DASH if s["steps_to_target"] is None else (
            f"{s['steps_to_target']} ({format_tokens(s['tokens_to_target'])})")
        bits = [format_value(s["final_val_bits_per_byte"], 3)] if with_bits else []
        rows.append([s["label"], s["status"], format_value(s["final_val_loss"], 3), format_value(s["best_val_loss"], 3),
                     *bits, format_value(s["lr_area"], 1), target, format_value(s["wall_time_s"], 0), *unlocks,
                     *[DASH] * (n_unlocks - len(unlocks))])
    return headers, rows


def variant_name(variant: str, same: dict[str, list[str]]) -> str:
    """A variant, with the variants that are the same runs as it: achievement ≡ achievement_margin."""
    return " ≡ ".join(same.get(variant, [variant]))


def variant_table(variants: list[dict], target_loss: float, same: dict[str, list[str]]) -> tuple[list, list]:
    """One row per variant (identical ones collapsed): how many of its runs finished, and their numbers."""
    with_bits = any(v.get("final_val_bits_per_byte") for v in variants)
    bits = ["bits/byte"] if with_bits else []
    headers = ["variant", "n", "final val", "best val", *bits, "LR area", "tokens", f"steps to loss<={target_loss:g}",
               "steps to full res", "spike", "recovery (steps)", "recovered", "wall (s)"]
    rows = []
    for v in variants:
        if v["variant"] in same and same[v["variant"]][0] != v["variant"]:
            continue  # shown in the row of the first of its identical variants
        n = v["finished"]
        recovered = f"{v['unlocks_recovered']}/{v['unlocks_measured']}" if v["unlocks_measured"] else DASH
        tokens = v["tokens"]
        rows.append([variant_name(v["variant"], same), f"{n}/{v['runs']}", format_stat(v["final_val_loss"], n, 3),
                     format_stat(v["best_val_loss"], n, 3),
                     *([format_stat(v["final_val_bits_per_byte"], n, 3)] if with_bits else []),
                     format_stat(v["lr_area"], n, 1),
                     format_tokens(round(tokens["mean"])) if tokens else DASH,
                     format_stat(v["steps_to_target"], n, None), format_stat(v["steps_to_full_resolution"], n, None),
                     format_stat(v["mean_spike"], n, 3, sign=True), format_stat(v["mean_recovery_steps"], n, None),
                     recovered, format_stat(v["wall_time_s"], n, 0)])
    return headers, rows


def paired_table(rows: list[dict], same: dict[str, list[str]]) -> tuple[list, list]:
    """One row per compared pair: each metric's paired difference, its interval, p (Holm) and verdict."""
    headers = ["variant", "minus", "n"]
    for metric in PAIRED_METRICS:
        name = METRIC_NAMES[metric]
        headers += [f"Δ {name} [95% CI]", "p (Holm)", f"{name}: verdict"]
    headers += ["MDE at 80% power", f"seeds for {DETECTABLE:g}", "LR area ratio"]
    out = []
    for row in rows:
        if row["variant"] in same and same[row["variant"]][0] != row["variant"]:
            continue
        final = row[PAIRED_METRICS[0]]
        cells = [variant_name(row["variant"], same), row["reference"],
                 str(final["n"]) if final else f"{row['n_variant']}/{row['n_reference']}"]
        for metric in PAIRED_METRICS:
            cell = row[metric]
            cells += [format_difference(cell), format_p(cell.get("p_holm") if enough(cell) else None),
                      cell["verdict"] if cell else DASH]
        a, b = row["lr_area"]
        # an SD from fewer than 3 pairs is too rough to plan with
        cells += [format_value(final["mde"], 4) if enough(final) else DASH,
                  str(final["seeds_needed"]) if enough(final) and final["seeds_needed"] else DASH,
                  f"{a / b:.3f}" if a is not None and b else DASH]
        out.append(cells)
    return headers, out


def enough(cell: dict | None) -> bool:
    """Whether a difference rests on enough runs for a p-value and a power estimate."""
    return cell is not None and cell["n"] >= MIN_SEEDS_FOR_SPREAD


def decision_table(rows: list[dict]) -> tuple[list, list]:
    """The stated rule's verdicts: the unlocking alone and the restarts alone, per variant."""
    headers = ["effect", "variant", "minus", "n", "final val difference [95% CI]", "verdict"]
    body = []
    for row in rows:
        body.append([row["question"], row["variant"], row["minus"], str(row["n"]),
                     format_difference(row["difference"], 4), row["verdict"]])
    return headers, body


def along_table(along: list[dict]) -> tuple[list, list]:
    """Per pair, the paired difference in train loss at each fraction of the tokens."""
    headers = ["variant", "minus", *[f"Δ train loss at {f:.0%} [95% CI]" for f in PROGRESS]]
    rows = [[a["variant"], a["reference"], *[format_difference(p["difference"]) for p in a["points"]]]
            for a in along]
    return headers, rows


def unlock_table(unlocks: list[dict], excess: list[dict]) -> tuple[list, list]:
    """One row per variant and unlock k: where it unlocked, its spike and recovery, and where a yoked control
    ran, its excess loss over that control."""
    excess_of = {(e["variant"], e["unlock"]): e["excess"] for e in excess}
    headers = ["variant", "unlock", "cutoffs", "at step", "spike", "recovery (steps)", "recovered"]
    if excess:
        headers.append("excess loss vs yoked [95% CI]")
    rows = []
    for u in unlocks:
        cells = [u["variant"], str(u["unlock"]), ", ".join(u["cutoffs"]), format_stat(u["step"], u["runs"], None),
                 format_stat(u["spike"], u["runs"], 3, sign=True), format_stat(u["recovery_steps"], u["runs"], None),
                 f"{u['recovered']}/{u['measured']}" if u["measured"] else DASH]
        if excess:
            cells.append(format_difference(excess_of.get((u["variant"], u["unlock"]))))
        rows.append(cells)
    return headers, rows


def not_finished(summaries: list[dict]) -> list[str]:
    """One line per run that did not finish, saying how far it got and, for a failure, why."""
    lines = []
    for s in summaries:
        if s["status"] == "failed":
            got = f"last logged step {s['last_step']}" if s["last_step"] is not None else "nothing logged"
            lines.append(f"{s['label']}: failed, {got}" + (f": {s['error']}" if s["error"] else ""))
        elif s["status"] == "incomplete":
            of = f" of {s['total_steps']}" if s["total_steps"] else ""
            lines.append(f"{s['label']}: incomplete, last logged step {s['last_step']}{of}")
    return lines


VARIANT_NOTES = [
    "n: finished/all runs; only finished runs are aggregated.",
    f"±: sample std (n-1) over {MIN_SEEDS_FOR_SPREAD} or more runs; under {MIN_SEEDS_FOR_SPREAD}, each run's value.",
    "(k/n): only k of the n finished runs reached it; the mean is over those k.",
    "LR area: the sum over steps of the LR trained at, over the peak LR. A restart adds to it.",
    "≡: the same runs, step by step and seed by seed (the settings that differ changed nothing).",
    "spike: the highest smoothed train loss within trainer.spike_window steps after an unlock, minus the score "
    "it unlocked at, averaged over a run's unlocks. recovery: steps until the smoothed loss was below that score "
    "again, over the unlocks that recovered; recovered: those unlocks / all measured.",
]
PAIRED_NOTES = [
    "Δ: variant minus the other, seed by seed (seed k has the same initialisation and data order in both); "
    "below 0 = lower loss. [95% CI]: paired t-interval; under 3 pairs, each pair's difference and no interval.",
    "p (Holm): paired t test, Holm-corrected across the rows of this table, from 3 pairs on; (Welch): the seeds "
    "did not pair.",
    "verdict: the 95% CI decides; 'not distinguishable' means we could not tell them apart with these seeds.",
    f"MDE: the smallest true difference these seeds would detect 4 times in 5 (paired SD observed); "
    f"seeds for {DETECTABLE:g}: the pairs needed to detect {DETECTABLE:g} nats at 80% power.",
    f"LR area ratio: the variant's mean LR area over the other's; beyond {LR_AREA_TOLERANCE:.0%} either way "
    "the LR schedule is a confound (see Confounds).",
]


def report_text(report: dict, markdown: bool = False, brief: bool = False) -> str:
    """The tables with their notes, the confounds and the runs that did not finish, as plain text or markdown.
    brief: the variant, paired and confound sections only (the end of a sweep's console)."""
    summaries, target = report["runs"], report["target_loss"]
    same = {v: group for group in report["identical_variants"] for v in group}
    baseline = report["baseline"]
    counts = {k: sum(s["status"] == k for s in summaries) for k in ("finished", "incomplete", "failed")}
    run_notes = [f"loss<={target:g} at: the first logged train loss at or below {target:g}, step (tokens)."]
    if any(s["unlocks"] for s in summaries):
        run_notes.append("unlock k: from->to cutoff @ step (tokens seen), then its spike and the steps it took to "
                         "recover (not rec.: not within the window) where it was measured.")
    sections = []
    if not brief:
        sections.append(("Runs (" + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + ")",
                         run_table(summaries, target), run_notes))
    sections.append(("Variants (seeds aggregated)", variant_table(report["variants"], target, same), VARIANT_NOTES))
    if report["paired"]:
        sections.append((f"Paired differences against the baseline, {baseline}", paired_table(report["paired"], same),
                         PAIRED_NOTES))
    if report["unlocking"]:
        sections.append(("The unlocking alone: each variant minus its yoked control (same seed, same LR at every "
                         "step, band open from step 0)", paired_table(report["unlocking"], same),
                         ["The restarts alone are the yoked(...) rows of the table above: yoked control minus the "
                          "baseline."]))
    decision = report.get("decision")
    if decision and decision["rows"]:
        m = decision["margin"]
        sections.append((f"Decision, by the rule stated before the runs (margin {m:g} nats)",
                         decision_table(decision["rows"]),
                         [f"helps: beats the other by at least {m:g} with the 95% interval below 0; hurts: the "
                          f"interval above 0; null: the interval within +-{m:g}; could not tell: anything else."]))
    if not brief and report["along"]:
        sections.append(("Along the run (paired, logged train loss)", along_table(report["along"]),
                         ["At the log point nearest each fraction of the run's steps."]))
    if not brief and report["unlocks"]:
        notes = ["unlock k: each finished run's k-th unlock; (k/n): only k of the n finished runs had it."]
        if report["excess"]:
            notes.append("excess loss: the run minus its yoked control in logged train loss over the spike window "
                         "after the unlock, paired over seeds: what the unlock cost, with the LR held equal. "
                         "The spike is another measure: it grows with how fast the loss was falling.")
        sections.append(("Unlocks (seeds aggregated)", unlock_table(report["unlocks"], report["excess"]), notes))
    if report["confounds"]:
        sections.append(("Confounds", None, report["confounds"]))
    stopped = not_finished(summaries)
    if stopped:
        sections.append(("Not finished", None, stopped))

    shared = report["shared_overrides"]
    out = [f"Every run has {' '.join(shared)} (left out of the labels).", ""] if shared else []
    for title, table, notes in sections:
        if markdown:
            out += [f"## {title}", ""]
            out += [format_table(*table, markdown=True), ""] if table else []
            out += [*[f"- {n}" for n in notes], ""]
        else:
            out += [title + ":"]
            out += [format_table(*table)] if table else []
            out += [*[f"  {n}" for n in notes], ""]
    return "\n".join(out).rstrip()
