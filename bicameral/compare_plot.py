"""The sweep's figure, four panels a reader can put in a paper draft:

  a  train loss vs tokens: one line per variant (mean over its seeds), shaded min-max over seeds, unlocks marked
  b  the last half of training as the difference to the baseline, so 0.01 nat is visible
  c  val loss vs tokens, mean and min-max band
  d  LR vs steps (each variant's first seed), unlocks marked: the restarts are part of what a curriculum does

A pyplot-free Figure: it renders with Agg whatever the session's backend, and never opens a window.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter

from bicameral.compare import Run

BASELINE_COLOUR = "black"
UNLOCK_MARKER = dict(marker="^", ls="", ms=6, mec="black", mew=0.5)


@dataclass
class Band:
    """One variant's curve over its seeds, on the log points every seed has."""

    steps: np.ndarray
    tokens: np.ndarray
    mean: np.ndarray
    low: np.ndarray  # min over seeds
    high: np.ndarray  # max over seeds
    seeds: int


def band(runs: list[Run], rows: str, value: str) -> Band | None:
    """Mean and min-max of `value` over the runs' `rows` ("train" or "val"), at the steps they all logged."""
    series = [{r["step"]: r for r in getattr(run, rows)} for run in runs]
    series = [s for s in series if s]
    if not series:
        return None
    steps = sorted(set.intersection(*(set(s) for s in series)))
    if not steps:  # seeds that never logged a step in common: the longest one alone
        series = [max(series, key=len)]
        steps = sorted(series[0])
    values = np.array([[s[step][value] for step in steps] for s in series], dtype=float)  # (seeds, steps)
    return Band(np.array(steps), np.array([series[0][step]["tokens"] for step in steps], dtype=float),
                values.mean(0), values.min(0), values.max(0), len(series))


def rolling_mean(y: np.ndarray, k: int) -> np.ndarray:
    """Centred mean over k points (k odd), shrinking at the ends so the curve keeps its length."""
    if k <= 1:
        return y
    half = k // 2
    cums = np.concatenate([[0.0], np.cumsum(y)])
    lo = np.clip(np.arange(len(y)) - half, 0, len(y))
    hi = np.clip(np.arange(len(y)) + half + 1, 0, len(y))
    return (cums[hi] - cums[lo]) / (hi - lo)


def plotted_runs(runs: list[Run]) -> list[Run]:
    """The finished runs of a variant; its unfinished ones only when none finished (drawn dashed)."""
    finished = [r for r in runs if r.status == "finished" and r.train]
    return finished or [r for r in runs if r.train]


def plot_comparison(runs: list[Run], path: Path, title: str, baseline: str | None) -> Figure:
    variants: dict[str, list[Run]] = {}
    for run in runs:
        variants.setdefault(run.variant, []).append(run)
    variants = {v: plotted_runs(rs) for v, rs in variants.items()}
    variants = {v: rs for v, rs in variants.items() if rs}  # a variant whose runs all failed has no curve
    colours, i = {}, 0
    for v in variants:
        if v == baseline:
            colours[v] = BASELINE_COLOUR
        else:
            colours[v], i = f"C{i % 10}", i + 1
    dashed = {v for v, rs in variants.items() if all(r.status != "finished" for r in rs)}
    style = {v: "--" if v in dashed else "-" for v in variants}
    # the baseline first, so a variant whose curve coincides with it (an LR without restarts) stays visible
    variants = dict(sorted(variants.items(), key=lambda item: item[0] != baseline))

    fig = Figure(figsize=(14, 10), layout="constrained")
    (ax_a, ax_b), (ax_c, ax_d) = fig.subplots(2, 2)
    train = {v: band(rs, "train", "loss") for v, rs in variants.items()}
    val = {v: band(rs, "val", "val_loss") for v, rs in variants.items()}

    # a: train loss, with each seed's unlocks sitting on its variant's mean curve
    for v, b in train.items():
        if b is None:
            continue
        ax_a.plot(b.tokens, b.mean, style[v], color=colours[v], lw=1.6, label=v)
        ax_a.fill_between(b.tokens, b.low, b.high, color=colours[v], alpha=0.18, lw=0)
        at = np.array([u["tokens"] for r in variants[v] for u in r.unlocks], dtype=float)
        ax_a.plot(at, np.interp(at, b.tokens, b.mean), color=colours[v], **UNLOCK_MARKER, label=f"{v} unlocks")
    focus_on_training(ax_a, [b for b in train.values() if b is not None])
    ax_a.set(title="a   train loss vs tokens (mean over seeds, band: min–max)", xlabel="tokens",
             ylabel="train loss (nat/byte)")

    # b: the last half, relative to the baseline
    plot_difference(ax_b, train, baseline, colours, style)

    # c: val loss
    for v, b in val.items():
        if b is None:
            continue
        ax_c.plot(b.tokens, b.mean, style[v], color=colours[v], lw=1.6, marker="o", ms=3, label=v)
        ax_c.fill_between(b.tokens, b.low, b.high, color=colours[v], alpha=0.18, lw=0)
    focus_on_training(ax_c, [b for b in val.values() if b is not None])
    ax_c.set(title="c   val loss vs tokens (mean over seeds, band: min–max)", xlabel="tokens",
             ylabel="val loss (nat/byte)")

    # d: the LR of each variant's first seed; unlocks restart its cycle
    for v, rs in variants.items():
        run = rs[0]
        steps = np.array([r["step"] for r in run.train], dtype=float)
        lrs = np.array([r["lr"] for r in run.train], dtype=float)
        # the baseline wider and beneath: where a variant's LR is the same (before its first unlock) both show
        wide = v == baseline
        ax_d.plot(steps, lrs, style[v], color=colours[v], lw=3.5 if wide else 1.3, alpha=0.45 if wide else 1, label=v)
        at = np.array([u["step"] for u in run.unlocks], dtype=float)
        ax_d.plot(at, np.interp(at, steps, lrs), color=colours[v], **UNLOCK_MARKER, label=f"{v} unlocks")
    ax_d.set(title="d   learning rate vs steps (first seed of each variant)", xlabel="optimizer steps",
             ylabel="learning rate")
    ax_d.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))

    for ax in (ax_a, ax_b, ax_c):
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    for ax in (ax_a, ax_b, ax_c, ax_d):
        ax.grid(alpha=0.3)

    handles = [Line2D([], [], color=colours[v], ls=style[v], lw=2, label=legend_label(v, variants[v], baseline))
               for v in variants]
    handles += [Line2D([], [], color="grey", mfc="white", **UNLOCK_MARKER, label="unlock"),
                Patch(color="grey", alpha=0.3, label="shaded: min–max over seeds")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)), fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=14)
    fig.savefig(path, dpi=110)
    return fig


def legend_label(variant: str, runs: list[Run], baseline: str | None) -> str:
    """curriculum=none (baseline, 3 seeds); a variant none of whose runs finished says so."""
    notes = ["baseline"] if variant == baseline else []
    notes.append(f"{len(runs)} seed{'s' if len(runs) != 1 else ''}")
    if all(r.status != "finished" for r in runs):
        notes.append("not finished")
    return f"{variant} ({', '.join(notes)})"


def focus_on_training(ax, bands: list[Band]) -> None:
    """y limits that leave out the first tenth of training's steep fall, so the curves' differences show."""
    if not bands:
        return
    end = max(b.tokens[-1] for b in bands)
    later = [b for b in bands if (b.tokens > 0.1 * end).any()]
    low = min(b.low.min() for b in bands)
    high = max(b.high[b.tokens > 0.1 * end].max() for b in later) if later else max(b.high.max() for b in bands)
    pad = 0.05 * (high - low) or 0.05
    ax.set_ylim(low - pad, high + pad)


def plot_difference(ax, train: dict[str, Band | None], baseline: str | None, colours: dict, style: dict) -> None:
    """Each variant's train loss minus the baseline's, over the last half of training, smoothed over k log
    points (their noise would hide 0.01 nat); the baseline's own seed band is the grey area around 0."""
    base = train.get(baseline) if baseline else None
    if base is None:
        ax.text(0.5, 0.5, "no baseline with a train loss", ha="center", va="center", transform=ax.transAxes)
        ax.set(title="b   train loss minus the baseline, last half")
        return
    half = base.tokens >= base.tokens[-1] / 2
    x = base.tokens[half]
    k = max(1, (int(half.sum()) // 10) | 1)  # odd, about a tenth of the points shown
    smooth = lambda y: rolling_mean(y, k)  # noqa: E731
    ax.axhline(0, color=BASELINE_COLOUR, lw=1.2)
    ax.fill_between(x, smooth(base.low[half] - base.mean[half]), smooth(base.high[half] - base.mean[half]),
                    color=BASELINE_COLOUR, alpha=0.12, lw=0)
    for v, b in train.items():
        if b is None or v == baseline:
            continue
        inside = (x >= b.tokens[0]) & (x <= b.tokens[-1])  # never extrapolate a shorter run
        if not inside.any():
            continue
        xs, ref = x[inside], base.mean[half][inside]
        diff = smooth(np.interp(xs, b.tokens, b.mean) - ref)
        ax.plot(xs, diff, style[v], color=colours[v], lw=1.6, label=v)
        ax.fill_between(xs, smooth(np.interp(xs, b.tokens, b.low) - ref), smooth(np.interp(xs, b.tokens, b.high) - ref),
                        color=colours[v], alpha=0.15, lw=0)
    smoothed = f", rolling mean over {k} log points" if k > 1 else ""
    ax.set(title=f"b   train loss minus {baseline}, last half{smoothed}", xlabel="tokens",
           ylabel="Δ train loss (nat/byte), below 0 = better")
