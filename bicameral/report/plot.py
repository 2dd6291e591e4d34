"""The sweep's figure, four panels a reader can put in a paper draft (PNG, PDF and SVG):

  a  train loss vs tokens: one line per variant (mean over its seeds), unlocks marked
  b  the last half of training as the paired difference to the baseline, seed by seed, so 0.01 nat is visible
  c  val loss vs tokens
  d  LR vs steps (each variant's first seed), unlocks marked: the restarts are part of what a curriculum does

Every band is a 95% t-interval of the mean over seeds, drawn from 3 seeds on; with fewer there is no band.
A pyplot-free Figure: it renders with Agg whatever the session's backend, and never opens a window.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter
from scipy import stats as sps

from bicameral.files import written_atomically
from bicameral.report.runs import Run
from bicameral.report.summary import MIN_SEEDS_FOR_SPREAD

BASELINE_COLOUR = "black"
UNLOCK_MARKER = dict(marker="^", ls="", ms=6, mec="black", mew=0.5)


@dataclass
class Band:
    """One variant's curve over its seeds, on the log points every seed has."""

    steps: np.ndarray
    tokens: np.ndarray
    mean: np.ndarray
    low: np.ndarray | None  # 95% interval of the mean over seeds; None under MIN_SEEDS_FOR_SPREAD seeds
    high: np.ndarray | None
    seeds: int


def interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """values (seeds, points) -> mean, and the 95% t-interval of the mean where there are enough seeds."""
    mean = values.mean(0)
    n = values.shape[0]
    if n < MIN_SEEDS_FOR_SPREAD:
        return mean, None, None
    half = sps.t.ppf(0.975, n - 1) * values.std(0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def band(runs: list[Run], rows: str, value: str) -> Band | None:
    """Mean and 95% interval of `value` over the runs' `rows` ("train" or "val"), at the steps they all logged."""
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
                *interval(values), len(series))


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


def plot_comparison(runs: list[Run], paths: list[Path], title: str, baseline: str | None,
                    labels: dict[str, str] | None = None) -> Figure:
    """Draw the figure and save it to each of `paths` (the format follows the suffix). labels: legend names."""
    labels = labels or {}
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
        shade(ax_a, b.tokens, b.low, b.high, colours[v])
        at = np.array([u["tokens"] for r in variants[v] for u in r.unlocks], dtype=float)
        ax_a.plot(at, np.interp(at, b.tokens, b.mean), color=colours[v], **UNLOCK_MARKER, label=f"{v} unlocks")
    focus_on_training(ax_a, [b for b in train.values() if b is not None])
    ax_a.set(title="a   train loss vs tokens (mean over seeds)", xlabel="tokens", ylabel="train loss (nat/byte)")

    # b: the last half, paired against the baseline seed by seed
    plot_difference(ax_b, variants, baseline, colours, style, labels.get(baseline, baseline))

    # c: val loss
    for v, b in val.items():
        if b is None:
            continue
        ax_c.plot(b.tokens, b.mean, style[v], color=colours[v], lw=1.6, marker="o", ms=3, label=v)
        shade(ax_c, b.tokens, b.low, b.high, colours[v])
    focus_on_training(ax_c, [b for b in val.values() if b is not None])
    ax_c.set(title="c   val loss vs tokens (mean over seeds)", xlabel="tokens", ylabel="val loss (nat/byte)")

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

    handles = [Line2D([], [], color=colours[v], ls=style[v], lw=2,
                      label=legend_label(v, variants[v], baseline, labels)) for v in variants]
    handles += [Line2D([], [], color="grey", mfc="white", **UNLOCK_MARKER, label="unlock"),
                Patch(color="grey", alpha=0.3,
                      label=f"shaded: 95% interval of the mean ({MIN_SEEDS_FOR_SPREAD}+ seeds)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(3, len(handles)), fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=14)
    for path in paths:
        with written_atomically(path) as tmp:
            fig.savefig(tmp, dpi=110)
    return fig


def shade(ax, x: np.ndarray, low: np.ndarray | None, high: np.ndarray | None, colour: str, alpha: float = 0.18):
    """The interval as a band, where there is one."""
    if low is not None:
        ax.fill_between(x, low, high, color=colour, alpha=alpha, lw=0)


def legend_label(variant: str, runs: list[Run], baseline: str | None, labels: dict[str, str]) -> str:
    """curriculum=none (baseline, 3 seeds), under its mapped name; a variant none of whose runs finished says so."""
    notes = ["baseline"] if variant == baseline else []
    notes.append(f"{len(runs)} seed{'s' if len(runs) != 1 else ''}")
    if all(r.status != "finished" for r in runs):
        notes.append("not finished")
    return f"{labels.get(variant, variant)} ({', '.join(notes)})"


def focus_on_training(ax, bands: list[Band]) -> None:
    """y limits that leave out the first tenth of training's steep fall, so the curves' differences show."""
    if not bands:
        return
    end = max(b.tokens[-1] for b in bands)
    lows = [b.low if b.low is not None else b.mean for b in bands]
    highs = [b.high if b.high is not None else b.mean for b in bands]
    later = [(b, h) for b, h in zip(bands, highs) if (b.tokens > 0.1 * end).any()]
    low = min(x.min() for x in lows)
    high = max(h[b.tokens > 0.1 * end].max() for b, h in later) if later else max(h.max() for h in highs)
    pad = 0.05 * (high - low) or 0.05
    ax.set_ylim(low - pad, high + pad)


def paired_curve(runs: list[Run], reference: list[Run]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(tokens, per-seed differences (seeds, steps)) of train loss, run minus the reference run of the same seed,
    at the steps all of them logged."""
    ref = {r.seed: r for r in reference}
    pairs = [(r, ref[r.seed]) for r in runs if r.seed in ref]
    if not pairs:
        return None
    series = [({x["step"]: x for x in a.train}, {x["step"]: x for x in b.train}) for a, b in pairs]
    steps = sorted(set.intersection(*(set(a) & set(b) for a, b in series)))
    if not steps:
        return None
    diffs = np.array([[a[s]["loss"] - b[s]["loss"] for s in steps] for a, b in series])  # (seeds, steps)
    return np.array(steps), np.array([series[0][0][s]["tokens"] for s in steps], dtype=float), diffs


def plot_difference(ax, variants: dict[str, list[Run]], baseline: str | None, colours: dict, style: dict,
                    baseline_name: str | None = None) -> None:
    """Each variant's train loss minus the baseline's, seed by seed, over the last half of training: the mean
    paired difference and, from 3 seeds on, its 95% interval; smoothed over k log points, since their noise
    would hide 0.01 nat."""
    base = variants.get(baseline) if baseline else None
    if not base:
        ax.text(0.5, 0.5, "no baseline with a train loss", ha="center", va="center", transform=ax.transAxes)
        ax.set(title="b   train loss minus the baseline, last half")
        return
    ax.axhline(0, color=BASELINE_COLOUR, lw=1.2)
    end = max(r.train[-1]["step"] for r in base)
    k = 1
    for v, rs in variants.items():
        curve = paired_curve(rs, base) if v != baseline else None
        if curve is None:
            continue
        steps, tokens, diffs = curve
        half = steps >= end / 2  # the baseline's last half: a run that stopped before it has no curve here
        if not half.any():
            continue
        k = max(1, (int(half.sum()) // 10) | 1)  # odd, about a tenth of the points shown
        smoothed = np.array([rolling_mean(d[half], k) for d in diffs])
        mean, low, high = interval(smoothed)
        ax.plot(tokens[half], mean, style[v], color=colours[v], lw=1.6, label=v)
        shade(ax, tokens[half], low, high, colours[v], alpha=0.15)
    smoothed = f" (rolling mean over {k} log points)" if k > 1 else ""
    ax.set(title=f"b   train loss minus {baseline_name or baseline}, paired by seed, last half",
           xlabel=f"tokens{smoothed}", ylabel="Δ train loss (nat/byte), below 0 = better")
