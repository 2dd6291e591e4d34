"""The statistics of a paired comparison of training runs across seeds: is variant A's loss really different from B's?

Run i of A and run i of B share a seed, so their difference cancels what the seed decides (init, data order);
the paired t test on those differences is the main tool, Welch's t the fallback when runs do not pair. With the
handful of seeds a sweep affords, the confidence interval says more than the p-value, and the power functions say how
many seeds a given effect would need. Every distribution comes from scipy.stats.
"""

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import optimize
from scipy import stats as sps


@dataclass(frozen=True)
class Difference:
    n: int  # pairs (paired); the smaller side (Welch), since that is what limits what the test can tell
    mean: float  # of a - b
    sd: float | None  # sample SD (ddof=1) of the paired differences; None for Welch or n < 2
    low: float | None  # confidence interval of the mean difference
    high: float | None
    p: float | None  # two-sided
    test: str  # "paired t" | "Welch t"
    values: tuple[float, ...]  # the paired differences a_i - b_i; empty for Welch


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def _t_summary(mean: float, se: float, df: float, confidence: float) -> tuple[float, float, float]:
    """(low, high, p) of a t statistic; se == 0 (identical runs) is certain rather than 0/0."""
    if se == 0.0:
        return mean, mean, 1.0 if mean == 0.0 else 0.0
    half = sps.t.ppf(1.0 - (1.0 - confidence) / 2.0, df) * se
    p = 2.0 * sps.t.sf(abs(mean / se), df)
    return mean - half, mean + half, float(min(p, 1.0))


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Difference:
    """Paired t on a[i] - b[i] (same seed), so the seed's share of the variation cancels."""
    _check_confidence(confidence)
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    if not a:
        raise ValueError("no pairs to compare")
    values = tuple(float(x) - float(y) for x, y in zip(a, b))
    n = len(values)
    mean = float(statistics.mean(values))  # exact (fractions), so identical differences give sd exactly 0
    if n == 1:
        return Difference(n, mean, None, None, None, None, "paired t", values)
    sd = float(statistics.stdev(values))
    low, high, p = _t_summary(mean, sd / math.sqrt(n), n - 1, confidence)
    return Difference(n, mean, sd, float(low), float(high), p, "paired t", values)


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Difference:
    """Welch's t on mean(a) - mean(b), for runs that do not pair by seed; equal variances are not assumed."""
    _check_confidence(confidence)
    if not a or not b:
        raise ValueError(f"both samples need a run, got {len(a)} and {len(b)}")
    na, nb = len(a), len(b)
    mean = float(statistics.mean(a)) - float(statistics.mean(b))
    n = min(na, nb)
    if n < 2:
        return Difference(n, mean, None, None, None, None, "Welch t", ())
    wa, wb = statistics.variance(a) / na, statistics.variance(b) / nb  # squared standard errors of each mean
    se2 = wa + wb
    df = se2**2 / (wa**2 / (na - 1) + wb**2 / (nb - 1)) if se2 > 0 else float(na + nb - 2)  # Welch–Satterthwaite
    low, high, p = _t_summary(mean, math.sqrt(se2), df, confidence)
    return Difference(n, mean, None, float(low), float(high), p, "Welch t", ())


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values: several variants against one baseline are several chances of a fluke.

    Step-down: the k-th smallest of m is multiplied by m - k + 1, kept monotone and capped at 1. None (no test)
    passes through and does not count in m.
    """
    order = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    m = len(order)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for k, i in enumerate(order):
        p = pvalues[i]
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value out of [0, 1]: {p}")
        running = max(running, min(1.0, (m - k) * p))
        adjusted[i] = running
    return adjusted


def power_paired(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Chance that n seeds' paired t test (two-sided, level alpha) detects a true mean difference `effect`."""
    if sd < 0:
        raise ValueError(f"sd must be >= 0, got {sd}")
    if n < 2:
        return 0.0
    if sd == 0:  # identical differences: the test rejects exactly when the difference is not 0
        return 1.0 if effect != 0 else 0.0
    df = n - 1
    crit = sps.t.ppf(1.0 - alpha / 2.0, df)
    nc = abs(effect) * math.sqrt(n) / sd  # power is symmetric in the sign of the effect
    near, far = sps.nct.sf(crit, df, nc), sps.nct.cdf(-crit, df, nc)  # far: significant, but the wrong way
    if math.isnan(far):  # scipy's nct.cdf gives NaN deep in the tail; far <= P(T < 0) = P(Z < -nc) bounds it
        if sps.norm.sf(nc) > 1e-9:
            raise ArithmeticError(f"noncentral t tail undefined (df={df}, nc={nc})")
        far = 0.0
    return float(min(near + far, 1.0))


def minimum_detectable_effect(sd: float | None, n: int, power: float = 0.8, alpha: float = 0.05) -> float | None:
    """Smallest true difference n seeds would detect with the given power: what a "not distinguishable" rules out."""
    if sd is None or n < 2:
        return None
    if not alpha < power < 1.0:
        raise ValueError(f"power must lie in (alpha, 1), got {power}")
    if sd == 0:
        return 0.0

    def shortfall(effect: float) -> float:
        return power_paired(effect, sd, n, alpha) - power

    high = sd
    for _ in range(200):  # widen until the bracket holds the root: n = 2 needs an effect dozens of sds wide
        if shortfall(high) >= 0:
            break
        high *= 2.0
    else:
        return None
    return float(optimize.brentq(shortfall, 0.0, high, xtol=sd * 1e-10))


def seeds_needed(
    sd: float | None, effect: float = 0.005, power: float = 0.8, alpha: float = 0.05, limit: int = 10_000
) -> int | None:
    """Smallest number of seeds (pairs, >= 2) whose paired t test detects `effect` with the given power.

    Power grows with n, so a doubling search then bisection finds it; None when `limit` seeds would not do.
    """
    if sd is None:
        return None
    if sd == 0:
        return 2 if effect != 0 else None  # with no noise any nonzero difference shows at once; 0 never does

    def enough(n: int) -> bool:
        return power_paired(effect, sd, n, alpha) >= power

    if limit < 2:
        return None
    low, high = 1, 2  # invariant once found: not enough(low) (n = 1 never is), enough(high)
    while not enough(high):
        if high >= limit:
            return None
        low, high = high, min(2 * high, limit)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


def verdict(diff: Difference, alpha: float = 0.05) -> str:
    """Words for a table column. The CI decides (at the confidence it was built with, 1 - alpha by convention);
    the p-value sits beside it in the table. alpha is kept for the caller's symmetry and does not change the words.
    """
    if diff.n < 3:
        return f"too few seeds (n={diff.n})"
    if diff.low is not None and diff.high is not None and (diff.low > 0 or diff.high < 0):
        return "lower (CI excludes 0)" if diff.mean < 0 else "higher (CI excludes 0)"
    return f"not distinguishable (n={diff.n})"


def decide(mean: float, low: float | None, high: float | None, margin: float) -> str:
    """A rule stated before the runs, for a loss difference a - b (lower is better) with its interval, applied in
    this order: "helps" when a beats b by at least `margin` and the interval excludes 0; "hurts" when the
    interval lies above 0; "null" when it lies within +-margin; "could not tell" otherwise, and without one."""
    if margin <= 0:
        raise ValueError(f"decision margin {margin} must be > 0")
    if low is None or high is None:
        return "could not tell"
    if mean <= -margin and high < 0:
        return "helps"
    if low > 0:
        return "hurts"
    if -margin <= low and high <= margin:
        return "null"
    return "could not tell"


def _constant(values: Sequence[float]) -> bool:
    """Equal up to float rounding (LR areas summed in another order): r would be noise."""
    scale = max(abs(v) for v in values)
    return max(values) - min(values) <= 1e-9 * max(scale, 1.0)


def pearson(x: Sequence[float], y: Sequence[float]) -> tuple[float, float] | None:
    """(r, p), e.g. does a curriculum's loss spike predict its final loss; None where r is undefined or meaningless."""
    if len(x) != len(y):
        raise ValueError(f"pearson needs equal lengths, got {len(x)} and {len(y)}")
    if len(x) < 3 or _constant(x) or _constant(y):
        return None
    result = sps.pearsonr(x, y)
    return float(result[0]), float(result[1])
