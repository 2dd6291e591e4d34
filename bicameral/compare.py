"""Compare the runs of a sweep: per-run and per-variant tables, and their curves, from each job's files.

A sweep dir is what `python train.py -m ...` leaves: one job dir per override combination, each holding
.hydra/{config,overrides}.yaml, metrics.jsonl and events.jsonl. A single run dir is a sweep of one.
A run is labelled by its overrides, less the preset and those every run shares; its *variant* is that
label minus seed=..., so the seeds of one variant aggregate (bicameral/variants.py).

    runs = load_runs(sweep_dir)
    report = write_report(runs, sweep_dir, out_dir, target_loss=2.0)  # comparison.{md,json,png} in out_dir
    print(report_text(report))
"""

import json
import math
import statistics
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra.utils import get_object
from omegaconf import OmegaConf

from bicameral.curriculum import curriculum_name, snake_case
from bicameral.variants import PRESET_KEY, SEED_KEY, override_key, run_label, sweep_id, variant_label, without

DASH = "—"  # never reached, or never logged
VARIANT_METRICS = ("final_val_loss", "best_val_loss", "steps_to_target", "steps_to_full_resolution", "mean_spike",
                   "mean_recovery_steps", "wall_time_s")
BASELINE_CURRICULUM = "none"  # full resolution from the start: what every curriculum is measured against


@dataclass
class Run:
    path: Path
    overrides: list[str] | None  # as given on the command line; None without .hydra/overrides.yaml
    label: str  # the overrides that set it apart, sorted and joined as Hydra names dirs: curriculum=achievement,seed=0
    variant: str  # the label minus seed=..., so seeds aggregate
    status: str  # finished | incomplete (logged, but stopped early or preempted) | failed
    error: str | None  # why it failed, when it said so
    curriculum: str | None
    arch: str
    threshold: float | None  # curriculum.unlock_threshold: the first bar of a score-driven curriculum
    seed: int | None
    d_model: int | None
    n_layers: int | None
    total_steps: int | None  # trainer.epochs * trainer.steps_per_epoch
    train: list[dict]
    val: list[dict]
    unlocks: list[dict]
    spikes: list[dict]  # events.jsonl kind "spike": one per measured unlock, at the unlock's step
    finish: dict | None


# -----------------------------------------------------------------------------------------------
# Loading


def find_run_dirs(root: Path) -> list[Path]:
    """Job dirs at any depth under root (root itself for a single run).

    A job is a dir with metrics.jsonl, or with .hydra/overrides.yaml: Hydra writes that before the job
    starts, so a job that crashed before logging anything is still found.
    """
    found = {p.parent for p in root.rglob("metrics.jsonl")}
    found |= {p.parent.parent for p in root.rglob("overrides.yaml") if p.parent.name == ".hydra"}
    return sorted(found)


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSONL file: none if it is missing; a last line cut short by a crash is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def by_step(rows: list[dict]) -> list[dict]:
    """One row per step, in step order. A resumed run appends to the same files and replays the steps
    after its last checkpoint: the later row is the one that counts."""
    return sorted({row["step"]: row for row in rows}.values(), key=lambda row: row["step"])


def read_config(run_dir: Path):
    """The job's composed config; an empty one if it is missing or unreadable (it only costs the run's details)."""
    try:
        return OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    except Exception:
        return OmegaConf.create()


def select(cfg, key: str):
    """cfg's value at key; None where it is absent, ??? or an interpolation that only resolves inside Hydra."""
    return OmegaConf.select(cfg, key, throw_on_missing=False, throw_on_resolution_failure=False)


def read_overrides(run_dir: Path) -> list[str] | None:
    """The job's command-line overrides (plain YAML: OmegaConf would try to resolve any ${...} in them)."""
    try:
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return [str(o) for o in overrides] if isinstance(overrides, list) else None


def logged_error(run_dir: Path) -> str | None:
    """The one-line `error: ...` train.py logs for bad input, which stops a job before it logs anything else."""
    try:
        lines = (run_dir / "train.log").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    errors = [line.split("error: ", 1)[1] for line in lines if "] error: " in line or line.startswith("error: ")]
    return errors[-1] if errors else None


def shared_overrides(override_lists: list[list[str] | None]) -> list[str]:
    """The overrides every run of a sweep has (e.g. trainer.steps_per_epoch=500 next to the swept keys): they tell
    runs apart no more than the config does. Nothing for a single run: it has no other run to be told from."""
    known = [set(o) for o in override_lists if o is not None]
    return sorted(set.intersection(*known)) if len(override_lists) > 1 and known else []


def run_status(finish: dict | None, last_event: dict | None, logged: bool, total_steps: int | None) -> str:
    """finished only if it got to its last step (trainer.stop_at also writes a finish row); failed if it said so or
    logged nothing; else incomplete (stopped early, preempted, or killed)."""
    if finish is not None and (total_steps is None or finish["step"] >= total_steps):
        return "finished"
    if (last_event or {}).get("kind") == "failed" or not logged:
        return "failed"
    return "incomplete"


def load_run(run_dir: Path, root: Path, shared: Collection[str] = ()) -> Run:
    """Everything one job left behind, whatever state it stopped in; `shared` overrides are left out of its label."""
    cfg = read_config(run_dir)
    overrides = read_overrides(run_dir)
    own = [o for o in overrides if o not in shared] if overrides is not None else None
    rows = read_jsonl(run_dir / "metrics.jsonl")
    events = read_jsonl(run_dir / "events.jsonl")
    train = by_step([r for r in rows if r.get("kind") == "train"])
    val = by_step([r for r in rows if r.get("kind") == "val"])
    finishes = [e for e in events if e.get("kind") == "finish"]
    finish = finishes[-1] if finishes else None  # a stopped, then resumed run has one per segment

    epochs, steps_per_epoch = select(cfg, "trainer.epochs"), select(cfg, "trainer.steps_per_epoch")
    total_steps = epochs * steps_per_epoch if isinstance(epochs, int) and isinstance(steps_per_epoch, int) else None
    status = run_status(finish, events[-1] if events else None, bool(train or val), total_steps)
    error = None
    if status == "failed":
        failed = [e for e in events if e.get("kind") == "failed"]
        error = failed[-1].get("error") if failed else logged_error(run_dir)

    relative = run_dir.relative_to(root).as_posix()
    name = root.name if relative == "." else relative
    curriculum = run_curriculum(cfg, finish)
    return Run(
        path=run_dir,
        overrides=overrides,
        label=run_label(own) if own else name,
        # without overrides.yaml nothing says which runs are seeds of one config: each is its own variant
        variant=variant_label(own) if own is not None else name,
        status=status,
        error=error,
        curriculum=curriculum,
        arch=select(cfg, "model.arch") or "bicameral",  # runs from before model.arch existed were bicameral
        threshold=select(cfg, "curriculum.unlock_threshold"),  # only curricula with a first bar have one
        seed=select(cfg, "seed"),
        d_model=select(cfg, "model.d_model"),
        n_layers=select(cfg, "model.n_layers"),
        total_steps=total_steps,
        train=train,
        val=val,
        unlocks=by_step([e for e in events if e.get("kind") == "unlock"]),
        spikes=by_step([e for e in events if e.get("kind") == "spike"]),
        finish=finish,
    )


def run_curriculum(cfg, finish: dict | None) -> str | None:
    """The curriculum's name: from the run's summary, else from its config's class (or the `name` key that
    configs had before components were `_target_` nodes)."""
    if finish and finish.get("curriculum"):
        return finish["curriculum"]
    target = select(cfg, "curriculum._target_")
    if not target:
        return select(cfg, "curriculum.name")
    try:
        return curriculum_name(get_object(target))
    except Exception:  # a plug-in not importable here: its class name will do
        return snake_case(target.rsplit(".", 1)[-1])


def keep_presets_where_needed(runs: list[Run], shared: Collection[str]) -> None:
    """Labels leave the preset out; where that makes two different variants read the same (a folder holding two
    sweeps, each with a curriculum=none), those variants keep it."""
    keys = {}
    for run in runs:
        if run.overrides is not None:
            own = [o for o in run.overrides if o not in shared]
            keys.setdefault(run.variant, set()).add(",".join(sorted(without(own, {SEED_KEY}))))
    for run in runs:
        if len(keys.get(run.variant, ())) > 1:
            own = [o for o in run.overrides if o not in shared]
            run.label = ",".join(sorted(own))
            run.variant = ",".join(sorted(without(own, {SEED_KEY})))


def load_runs(root: str | Path) -> list[Run]:
    """Every run under root, sorted by variant, then seed."""
    root = Path(root)
    dirs = find_run_dirs(root)
    shared = shared_overrides([read_overrides(d) for d in dirs])
    runs = [load_run(d, root, shared) for d in dirs]
    keep_presets_where_needed(runs, shared)
    return sorted(runs, key=lambda r: (r.variant, r.seed if isinstance(r.seed, int) else -1, r.label))


# -----------------------------------------------------------------------------------------------
# Numbers


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
        "last_step": run.train[-1]["step"] if run.train else None,
        "total_steps": run.total_steps,
        "final_val_loss": number(finish.get("final_val_loss", val_losses[-1] if val_losses else None)),
        "best_val_loss": number(finish.get("best_val_loss", min(val_losses) if val_losses else None)),
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
    """Mean and spread of values: no spread for one, the half range for two, the sample std for three or more."""
    if not values:
        return None
    if len(values) == 1:
        spread = None
    elif len(values) == 2:
        spread = (max(values) - min(values)) / 2
    else:
        spread = statistics.stdev(values)
    return {"mean": statistics.fmean(values), "spread": spread, "n": len(values)}


def summarize_variants(summaries: list[dict]) -> list[dict]:
    """Per variant: its run counts, and each metric's mean and spread over its finished runs that have it."""
    variants: dict[str, list[dict]] = {}
    for s in summaries:
        variants.setdefault(s["variant"], []).append(s)
    out = []
    for name, members in variants.items():
        # a crashed run's numbers stop wherever it crashed: averaging them in would mislead
        done = [s for s in members if s["status"] == "finished"]
        stats = {m: mean_spread([s[m] for s in done if s[m] is not None]) for m in VARIANT_METRICS}
        out.append({"variant": name, "runs": len(members), "finished": len(done), **stats,
                    "unlocks_measured": sum(s["unlocks_measured"] for s in done),
                    "unlocks_recovered": sum(s["unlocks_recovered"] for s in done)})
    return out


def summarize_unlocks(summaries: list[dict]) -> list[dict]:
    """Per variant and k: its finished runs' k-th unlocks, with the step, spike and recovery as mean and spread
    over the seeds (the question "is the 2nd unlock's spike larger?" needs them apart, not averaged per run)."""
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


def pick_baseline(runs: list[Run]) -> str | None:
    """The variant the others are measured against: the one a `...=none` override names (curriculum=none,
    +study=none), else the first whose runs train with curriculum none, else the first variant."""
    variants = list(dict.fromkeys(r.variant for r in runs if r.train))
    named = [v for v in variants
             if any(o.split("=", 1)[1:] == [BASELINE_CURRICULUM] for o in v.split(","))]
    plain = [v for v in variants if all(r.curriculum == BASELINE_CURRICULUM for r in runs if r.variant == v)]
    return (named or plain or variants or [None])[0]


def sweep_title(root: Path, runs: list[Run]) -> str:
    """The sweep's name: its dir's last two parts, after the presets its runs share when the dir does not
    say them (a folder of merged sweeps reads "curriculum_comparison + study")."""
    presets = sorted({o.split("=", 1)[1] for r in runs for o in (r.overrides or ()) if override_key(o) == PRESET_KEY})
    name = sweep_id(root)
    if Path(root).resolve().name == "multirun":  # the multirun root itself: its parent says nothing
        name = ""
    missing = [p for p in presets if p not in name]
    return " · ".join(x for x in (" + ".join(missing), name) if x) or Path(root).resolve().name


# -----------------------------------------------------------------------------------------------
# Tables


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
    """mean ± spread, then (k/n) when only k of the n finished runs have the value."""
    if stat is None:
        return DASH
    text = format_value(stat["mean"], decimals, sign)
    if stat["spread"] is not None:
        text += f" ± {format_value(stat['spread'], decimals)}"
    return text + (f" ({stat['n']}/{finished})" if stat["n"] < finished else "")


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
    headers = ["run", "status", "final val", "best val", f"loss<={target_loss:g} at", "wall (s)",
               *[f"unlock {i + 1}" for i in range(n_unlocks)]]
    rows = []
    for s in summaries:
        unlocks = [format_unlock(u) for u in s["unlocks"]]
        target = DASH if s["steps_to_target"] is None else (
            f"{s['steps_to_target']} ({format_tokens(s['tokens_to_target'])})")
        rows.append([s["label"], s["status"], format_value(s["final_val_loss"], 3), format_value(s["best_val_loss"], 3),
                     target, format_value(s["wall_time_s"], 0), *unlocks, *[DASH] * (n_unlocks - len(unlocks))])
    return headers, rows


def variant_table(variants: list[dict], target_loss: float) -> tuple[list[str], list[list[str]]]:
    """One row per variant: how many of its runs finished, and mean ± spread over those."""
    headers = ["variant", "n", "final val", "best val", f"steps to loss<={target_loss:g}", "steps to full res",
               "spike", "recovery (steps)", "recovered", "wall (s)"]
    rows = []
    for v in variants:
        n = v["finished"]
        recovered = f"{v['unlocks_recovered']}/{v['unlocks_measured']}" if v["unlocks_measured"] else DASH
        rows.append([v["variant"], f"{n}/{v['runs']}", format_stat(v["final_val_loss"], n, 3),
                     format_stat(v["best_val_loss"], n, 3), format_stat(v["steps_to_target"], n, None),
                     format_stat(v["steps_to_full_resolution"], n, None),
                     format_stat(v["mean_spike"], n, 3, sign=True), format_stat(v["mean_recovery_steps"], n, None),
                     recovered, format_stat(v["wall_time_s"], n, 0)])
    return headers, rows


def unlock_table(unlocks: list[dict]) -> tuple[list[str], list[list[str]]]:
    """One row per variant and unlock k: where it unlocked, its spike and recovery, mean ± spread over seeds."""
    headers = ["variant", "unlock", "cutoffs", "at step", "spike", "recovery (steps)", "recovered"]
    rows = [[u["variant"], str(u["unlock"]), ", ".join(u["cutoffs"]),
             format_stat(u["step"], u["runs"], None), format_stat(u["spike"], u["runs"], 3, sign=True),
             format_stat(u["recovery_steps"], u["runs"], None),
             f"{u['recovered']}/{u['measured']}" if u["measured"] else DASH] for u in unlocks]
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
    "±: half range (max-min)/2 over 2 runs, sample std (n-1) over 3 or more; no ± for 1 run.",
    "(k/n): only k of the n finished runs reached it; the mean is over those k.",
    "spike: the highest smoothed train loss within curriculum.spike_window steps after an unlock, minus the score "
    "it unlocked at, averaged over a run's unlocks. recovery: steps until the smoothed loss was below that score "
    "again, over the unlocks that recovered; recovered: those unlocks / all measured.",
]


def report_text(report: dict, markdown: bool = False, variants_only: bool = False) -> str:
    """The tables with their notes, and the runs that did not finish, as plain text or markdown."""
    summaries, variants, target = report["runs"], report["variants"], report["target_loss"]
    counts = {k: sum(s["status"] == k for s in summaries) for k in ("finished", "incomplete", "failed")}
    run_notes = [f"loss<={target:g} at: the first logged train loss at or below {target:g}, step (tokens)."]
    if any(s["unlocks"] for s in summaries):
        run_notes.append("unlock k: from->to cutoff @ step (tokens seen), then its spike and the steps it took to "
                         "recover (not rec.: not within the window) where it was measured.")
    sections = [("Variants (seeds aggregated)", variant_table(variants, target), VARIANT_NOTES)]
    if not variants_only and report.get("unlocks"):  # reports written before this table have none
        sections.append(("Unlocks (seeds aggregated)", unlock_table(report["unlocks"]),
                         ["unlock k: each finished run's k-th unlock; (k/n): only k of the n finished runs had it."]))
    if not variants_only:
        sections.insert(0, ("Runs (" + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + ")",
                            run_table(summaries, target), run_notes))
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


# -----------------------------------------------------------------------------------------------
# Report


def build_report(runs: list[Run], root: str | Path, target_loss: float = 2.0, title: str | None = None) -> dict:
    """Everything comparison.json holds."""
    summaries = [summarize_run(r, target_loss) for r in runs]
    return {"sweep": str(root), "title": title or sweep_title(Path(root), runs), "target_loss": target_loss,
            "shared_overrides": shared_overrides([r.overrides for r in runs]), "baseline": pick_baseline(runs),
            "runs": summaries, "variants": summarize_variants(summaries), "unlocks": summarize_unlocks(summaries)}


def write_report(runs: list[Run], root: str | Path, out_dir: str | Path, target_loss: float = 2.0,
                 title: str | None = None) -> dict:
    """Write comparison.md, comparison.json and comparison.png to out_dir; returns the report."""
    from bicameral.compare_plot import plot_comparison  # matplotlib only where a figure is drawn

    out_dir = Path(out_dir)
    report = build_report(runs, root, target_loss, title)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = report_text(report, markdown=True)
    (out_dir / "comparison.md").write_text(
        f"# {report['title']}\n\n![curves](comparison.png)\n\n{markdown}\n", encoding="utf-8")
    (out_dir / "comparison.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_comparison(runs, out_dir / "comparison.png", report["title"], report["baseline"])
    return report
