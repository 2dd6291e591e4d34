"""Compare the runs of a sweep: per-run and per-group tables, and their loss curves, from each job's files.

A sweep dir is what `python train.py -m ...` leaves: one job dir per override combination, each holding
.hydra/{config,overrides}.yaml, metrics.jsonl and events.jsonl. A single run dir is a sweep of one.
A run is labelled by its overrides, less those every run shares; seeds aggregate: a run's group is its
label minus seed=...

    runs = load_runs(sweep_dir)
    print(write_report(runs, sweep_dir, out_dir, target_loss=2.0))  # + comparison.{md,json,png} in out_dir
"""

import json
import math
import statistics
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter
from omegaconf import OmegaConf

DASH = "—"  # never reached, or never logged
SCORE_DRIVEN = ("achievement", "fixed_threshold")  # the curricula whose first bar is curriculum.unlock_threshold
GROUP_METRICS = ("final_val_loss", "best_val_loss", "steps_to_target", "steps_to_full_resolution", "wall_time_s")


@dataclass
class Run:
    path: Path
    overrides: list[str] | None  # as given on the command line; None without .hydra/overrides.yaml
    label: str  # the overrides that set it apart, sorted and joined as Hydra names dirs: curriculum=achievement,seed=0
    group: str  # the label minus seed=..., so seeds aggregate
    status: str  # finished | incomplete (logged, but no finish row or stopped early) | failed (nothing logged)
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


def shared_overrides(override_lists: list[list[str] | None]) -> list[str]:
    """The overrides every run of a sweep has (e.g. trainer.steps_per_epoch=500 next to the swept keys): they tell
    runs apart no more than the config does. Nothing for a single run: it has no other run to be told from."""
    known = [set(o) for o in override_lists if o is not None]
    return sorted(set.intersection(*known)) if len(override_lists) > 1 and known else []


def group_key(overrides: list[str]) -> str:
    """The overrides minus seed=..., sorted like Hydra's override_dirname: runs that differ only in seed share it."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "seed"]
    return ",".join(sorted(kept)) or "(base config)"


def load_run(run_dir: Path, root: Path, shared: Collection[str] = ()) -> Run:
    """Everything one job left behind, whatever state it stopped in; `shared` overrides are left out of its label."""
    cfg = read_config(run_dir)
    overrides = read_overrides(run_dir)
    own = [o for o in overrides if o not in shared] if overrides is not None else None
    rows = read_jsonl(run_dir / "metrics.jsonl")
    events = read_jsonl(run_dir / "events.jsonl")
    train = by_step([r for r in rows if r.get("kind") == "train"])
    val = by_step([r for r in rows if r.get("kind") == "val"])
    unlocks = by_step([e for e in events if e.get("kind") == "unlock"])
    finishes = [e for e in events if e.get("kind") == "finish"]
    finish = finishes[-1] if finishes else None  # a stopped, then resumed run has one per segment

    epochs, steps_per_epoch = select(cfg, "trainer.epochs"), select(cfg, "trainer.steps_per_epoch")
    total_steps = epochs * steps_per_epoch if isinstance(epochs, int) and isinstance(steps_per_epoch, int) else None
    # trainer.stop_at also writes a finish row: a run only finished if it got to its last step
    if finish is not None and (total_steps is None or finish["step"] >= total_steps):
        status = "finished"
    elif train or val:
        status = "incomplete"
    else:
        status = "failed"

    relative = run_dir.relative_to(root).as_posix()
    name = root.name if relative == "." else relative
    curriculum = select(cfg, "curriculum.name")
    return Run(
        path=run_dir,
        overrides=overrides,
        label=",".join(sorted(own)) if own else name,
        # without overrides.yaml nothing says which runs are seeds of one config: each is its own group
        group=group_key(own) if own is not None else name,
        status=status,
        curriculum=curriculum,
        arch=select(cfg, "model.arch") or "bicameral",  # runs from before model.arch existed were bicameral
        threshold=select(cfg, "curriculum.unlock_threshold") if curriculum in SCORE_DRIVEN else None,
        seed=select(cfg, "seed"),
        d_model=select(cfg, "model.d_model"),
        n_layers=select(cfg, "model.n_layers"),
        total_steps=total_steps,
        train=train,
        val=val,
        unlocks=unlocks,
        finish=finish,
    )


def load_runs(root: str | Path) -> list[Run]:
    """Every run under root, sorted by group, then seed."""
    root = Path(root)
    dirs = find_run_dirs(root)
    shared = shared_overrides([read_overrides(d) for d in dirs])
    runs = [load_run(d, root, shared) for d in dirs]
    return sorted(runs, key=lambda r: (r.group, r.seed if isinstance(r.seed, int) else -1, r.label))


# -----------------------------------------------------------------------------------------------
# Numbers


def number(x) -> float | None:
    """x, or None where there is no number: a NaN loss (no validation ran) reads as missing, and stays valid JSON."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def steps_to_target(train: list[dict], target: float) -> tuple[int, int] | None:
    """(step, tokens) of the first logged train loss <= target; None if the run never got there."""
    for row in train:
        if row["loss"] <= target:
            return row["step"], row["tokens"]
    return None


def summarize_run(run: Run, target_loss: float) -> dict:
    """The run's numbers: from its finish row when it finished, else from what it logged before it stopped."""
    finish = run.finish if run.status == "finished" else {}
    val_losses = [r["val_loss"] for r in run.val]
    hit = steps_to_target(run.train, target_loss)
    return {
        "label": run.label,
        "group": run.group,
        "overrides": run.overrides,
        "path": str(run.path),
        "status": run.status,
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
        "unlocks": [{"step": u["step"], "tokens": u["tokens"], "from_cutoff": u["from_cutoff"],
                     "to_cutoff": u["to_cutoff"], "score": number(u["score"]), "reason": u["reason"]}
                    for u in run.unlocks],
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


def summarize_groups(summaries: list[dict]) -> list[dict]:
    """Per group: its run counts, and each metric's mean and spread over its finished runs that have it."""
    groups: dict[str, list[dict]] = {}
    for s in summaries:
        groups.setdefault(s["group"], []).append(s)
    out = []
    for name, members in groups.items():
        # a crashed run's numbers stop wherever it crashed: averaging them in would mislead
        done = [s for s in members if s["status"] == "finished"]
        stats = {m: mean_spread([s[m] for s in done if s[m] is not None]) for m in GROUP_METRICS}
        out.append({"group": name, "runs": len(members), "finished": len(done), **stats})
    return out


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


def format_value(x: float | None, decimals: int | None) -> str:
    """x to `decimals` places; decimals=None is for step counts: whole ones bare, a mean like 32.5 to one place."""
    if x is None:
        return DASH
    if decimals is None:
        decimals = 0 if x == round(x) else 1
    return f"{x:.{decimals}f}"


def format_stat(stat: dict | None, finished: int, decimals: int | None) -> str:
    """mean ± spread, then (k/n) when only k of the n finished runs have the value."""
    if stat is None:
        return DASH
    text = format_value(stat["mean"], decimals)
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


def run_table(summaries: list[dict], target_loss: float) -> tuple[list[str], list[list[str]]]:
    """One row per run; one column per unlock, as many as the run with the most."""
    n_unlocks = max((len(s["unlocks"]) for s in summaries), default=0)
    headers = ["run", "status", "final val", "best val", f"loss<={target_loss:g} at", "wall (s)",
               *[f"unlock {i + 1}" for i in range(n_unlocks)]]
    rows = []
    for s in summaries:
        unlocks = [f"{u['from_cutoff']}->{u['to_cutoff']} @ {u['step']} ({format_tokens(u['tokens'])})"
                   for u in s["unlocks"]]
        target = DASH if s["steps_to_target"] is None else (
            f"{s['steps_to_target']} ({format_tokens(s['tokens_to_target'])})")
        rows.append([s["label"], s["status"], format_value(s["final_val_loss"], 3), format_value(s["best_val_loss"], 3),
                     target, format_value(s["wall_time_s"], 0), *unlocks, *[DASH] * (n_unlocks - len(unlocks))])
    return headers, rows


def group_table(groups: list[dict], target_loss: float) -> tuple[list[str], list[list[str]]]:
    """One row per group: how many of its runs finished, and mean ± spread over those."""
    headers = ["group", "n", "final val", "best val", f"steps to loss<={target_loss:g}", "steps to full res",
               "wall (s)"]
    rows = [[g["group"], f"{g['finished']}/{g['runs']}", format_stat(g["final_val_loss"], g["finished"], 3),
             format_stat(g["best_val_loss"], g["finished"], 3), format_stat(g["steps_to_target"], g["finished"], None),
             format_stat(g["steps_to_full_resolution"], g["finished"], None),
             format_stat(g["wall_time_s"], g["finished"], 0)] for g in groups]
    return headers, rows


def not_finished(summaries: list[dict]) -> list[str]:
    """One line per run that did not finish, saying how far it got."""
    lines = []
    for s in summaries:
        if s["status"] == "failed":
            lines.append(f"{s['label']}: failed, nothing logged")
        elif s["status"] == "incomplete":
            of = f" of {s['total_steps']}" if s["total_steps"] else ""
            lines.append(f"{s['label']}: incomplete, last logged step {s['last_step']}{of}")
    return lines


def report_text(summaries: list[dict], groups: list[dict], shared: list[str], target_loss: float,
                markdown: bool = False) -> str:
    """Both tables with their notes, and the runs that did not finish, as plain text or markdown."""
    counts = {k: sum(s["status"] == k for s in summaries) for k in ("finished", "incomplete", "failed")}
    run_notes = [f"loss<={target_loss:g} at: the first logged train loss at or below {target_loss:g}, step (tokens)."]
    if any(s["unlocks"] for s in summaries):
        run_notes.append("unlock k: from->to cutoff @ step (tokens seen).")
    sections = [
        ("Runs (" + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + ")", run_table(summaries, target_loss),
         run_notes),
        ("Groups (seeds aggregated)", group_table(groups, target_loss),
         ["n: finished/all runs; only finished runs are aggregated.",
          "±: half range (max-min)/2 over 2 runs, sample std (n-1) over 3 or more; no ± for 1 run.",
          "(k/n): only k of the n finished runs reached it; the mean is over those k."]),
    ]
    stopped = not_finished(summaries)
    if stopped:
        sections.append(("Not finished", None, stopped))

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
# Plot


def plot_runs(runs: list[Run], path: Path, title: str, target_loss: float) -> Figure:
    """Train and val loss vs tokens side by side: one line per run, one colour per group, unlocks marked.

    A pyplot-free Figure: it renders with Agg whatever the session's backend, and never opens a window.
    """
    fig = Figure(figsize=(13, 5), layout="constrained")
    ax_train, ax_val = fig.subplots(1, 2)
    colours = {g: f"C{i % 10}" for i, g in enumerate(dict.fromkeys(r.group for r in runs))}
    for run in runs:
        colour = colours[run.group]
        style = "-" if run.status == "finished" else "--"
        if run.train:
            tokens = np.array([r["tokens"] for r in run.train])
            losses = np.array([r["loss"] for r in run.train])
            ax_train.plot(tokens, losses, style, color=colour, alpha=0.8, lw=1.2, label=run.label)
            # an unlock happens right after a train log, at that row's tokens: the marker sits on the curve
            at = np.array([u["tokens"] for u in run.unlocks])
            ax_train.plot(at, np.interp(at, tokens, losses), "^", color=colour, mec="black", mew=0.6, ms=7,
                          label=f"{run.label} unlocks")
        if run.val:
            ax_val.plot([r["tokens"] for r in run.val], [r["val_loss"] for r in run.val], style, color=colour,
                        alpha=0.8, lw=1.2, marker="o", ms=3, label=run.label)
    target = ax_train.axhline(target_loss, color="grey", ls=":", lw=1, label=f"target loss {target_loss:g}")

    handles = [Line2D([], [], color=c, label=g) for g, c in colours.items()]
    handles += [Line2D([], [], ls="", marker="^", color="white", mec="black", label="unlock"), target]
    if any(r.status != "finished" for r in runs):
        handles.append(Line2D([], [], ls="--", color="grey", label="not finished"))
    ax_train.legend(handles=handles, fontsize=8)
    for ax, name in ((ax_train, "train loss"), (ax_val, "val loss")):
        ax.set(title=f"{name} vs tokens", xlabel="tokens", ylabel=name)
        ax.xaxis.set_major_formatter(EngFormatter())
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return fig


# -----------------------------------------------------------------------------------------------
# Report


def sweep_name(root: Path) -> str:
    """The sweep dir's last two parts: multirun/2026-11-26/12-00-00 -> 2026-11-26/12-00-00."""
    root = root.resolve()
    return f"{root.parent.name}/{root.name}"


def write_report(runs: list[Run], root: str | Path, out_dir: str | Path, target_loss: float = 2.0) -> str:
    """Write comparison.md, comparison.json and comparison.png to out_dir; returns the tables as plain text."""
    root, out_dir = Path(root), Path(out_dir)
    summaries = [summarize_run(r, target_loss) for r in runs]
    groups = summarize_groups(summaries)
    shared = shared_overrides([r.overrides for r in runs])
    title = sweep_name(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = report_text(summaries, groups, shared, target_loss, markdown=True)
    (out_dir / "comparison.md").write_text(f"# {title}\n\n{markdown}\n\n![loss vs tokens](comparison.png)\n",
                                           encoding="utf-8")
    report = {"sweep": str(root), "target_loss": target_loss, "shared_overrides": shared, "runs": summaries,
              "groups": groups}
    (out_dir / "comparison.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_runs(runs, out_dir / "comparison.png", title, target_loss)
    return report_text(summaries, groups, shared, target_loss)
