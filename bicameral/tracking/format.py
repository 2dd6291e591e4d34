"""How numbers read on the console: LRs, token counts, durations, progress."""

from bicameral.engine.events import TrainStats


def format_lr(lr: float) -> str:
    """The reference's compact LR: 2.0e-4, 1.99e-4."""
    mantissa, exponent = f"{lr:.2e}".split("e")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}e{int(exponent)}"


def format_count(n: float) -> str:
    """1234 -> 1.2k, 2500000 -> 2.5M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{suffix}"
    return f"{n:.0f}"


def format_duration(seconds: float) -> str:
    """11100 -> 3h05m, 312 -> 5m12s, 7 -> 7s."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress(stats: TrainStats, total_steps: int) -> str:
    """Global progress, throughput and time left: [412/50000 1.2k tok/s eta 3h05m]."""
    seconds_per_step = stats.tokens / stats.step / max(stats.tokens_per_s, 1e-9)
    eta = format_duration((total_steps - stats.step) * seconds_per_step)
    return f"[{stats.step}/{total_steps} {format_count(stats.tokens_per_s)} tok/s eta {eta}]"


def hemisphere_line(freq_share: float) -> str:
    return f"  Hemisphere: Freq={100 * freq_share:.1f}% Time={100 * (1 - freq_share):.1f}%"
