"""bicameral/report/stats.py against worked examples computed by hand (the arithmetic is in the comments),
with scipy's own tests as a second, independent oracle where one exists."""

import math

import pytest
from scipy import stats as sps

from bicameral.report import stats
from bicameral.report.stats import (
    Difference,
    holm,
    minimum_detectable_effect,
    paired_difference,
    pearson,
    power_paired,
    seeds_needed,
    verdict,
    welch_difference,
)

A = [1.0, 2.0, 3.0, 4.0]
B = [0.5, 1.0, 2.5, 3.0]


# --- paired_difference -------------------------------------------------------------------------------------------


def test_paired_worked_example():
    # diffs a - b = [0.5, 1.0, 0.5, 1.0]; mean 0.75; deviations ±0.25, so SS = 4 * 0.0625 = 0.25
    # var = 0.25 / 3 = 1/12, sd = sqrt(1/12) = 0.288675; se = sd / sqrt(4) = 0.144338; t = 0.75 / se = 3*sqrt(3) = 5.196
    # t_{0.975, 3} = 3.182446 (table) -> half width 3.182446 * 0.1443376 = 0.459347 -> CI [0.290653, 1.209347]
    # p: for df = 3 the t CDF is closed-form, F(t) = 1/2 + (1/pi) * [ (t/sqrt3) / (1 + t^2/3) + atan(t/sqrt3) ];
    # t/sqrt3 = 3, t^2/3 = 9 -> sf = 1/2 - (0.3 + atan 3) / pi = 1/2 - (0.3 + 1.2490458) / pi = 0.0069234
    # -> p = 2 sf = 0.013847
    d = paired_difference(A, B)
    assert d.test == "paired t"
    assert d.n == 4
    assert d.values == (0.5, 1.0, 0.5, 1.0)
    assert d.mean == pytest.approx(0.75)
    assert d.sd == pytest.approx(math.sqrt(1 / 12))
    assert d.sd == pytest.approx(0.288675, abs=1e-6)
    assert d.low == pytest.approx(0.75 - 0.459347, abs=1e-6)
    assert d.high == pytest.approx(0.75 + 0.459347, abs=1e-6)
    assert d.p == pytest.approx(0.013847, abs=2e-6)
    assert d.p == pytest.approx(sps.ttest_rel(A, B).pvalue, rel=1e-9)


def test_paired_confidence_level_changes_the_interval():
    # 90%: t_{0.95, 3} = 2.353363 (table) -> half width 2.353363 * 0.144338 = 0.339678; p does not depend on it
    d = paired_difference(A, B, confidence=0.90)
    assert d.low == pytest.approx(0.75 - 0.339678, abs=1e-6)
    assert d.high == pytest.approx(0.75 + 0.339678, abs=1e-6)
    assert d.p == pytest.approx(0.013847, abs=2e-6)


def test_paired_is_antisymmetric():
    # swapping the sides negates mean and CI, leaves sd and p
    d, e = paired_difference(A, B), paired_difference(B, A)
    assert e.mean == pytest.approx(-d.mean)
    assert (e.low, e.high) == pytest.approx((-d.high, -d.low))
    assert (e.sd, e.p) == pytest.approx((d.sd, d.p))


def test_paired_single_pair_has_no_spread():
    d = paired_difference([2.0], [1.5])
    assert (d.n, d.mean, d.values) == (1, 0.5, (0.5,))
    assert d.sd is None and d.low is None and d.high is None and d.p is None


def test_paired_identical_differences():
    # every difference exactly 0.5 (binary-exact): sd 0, the interval collapses to the mean, p = 0
    d = paired_difference([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])
    assert d.sd == 0.0
    assert (d.low, d.high, d.p) == (0.5, 0.5, 0.0)
    # identical runs: difference 0 with certainty, p = 1
    same = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.mean, same.sd, same.low, same.high, same.p) == (0.0, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("a, b", [([1.0, 2.0], [1.0]), ([1.0], [1.0, 2.0]), ([], [])])
def test_paired_rejects_bad_lengths(a, b):
    with pytest.raises(ValueError):
        paired_difference(a, b)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95.0])
def test_paired_rejects_bad_confidence(confidence):
    with pytest.raises(ValueError):
        paired_difference(A, B, confidence=confidence)


# --- welch_difference --------------------------------------------------------------------------------------------


def test_welch_worked_example():
    # a = [1, 2, 3, 4]: mean 2.5, var (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3
    # b = [2, 4, 6]: mean 4, var (4 + 0 + 4) / 2 = 4
    # se^2 = (5/3)/4 + 4/3 = 5/12 + 16/12 = 21/12 = 1.75, se = 1.322876; mean diff -1.5, t = -1.133893
    # df = 1.75^2 / ((5/12)^2 / 3 + (4/3)^2 / 2) = 3.0625 / (0.0578704 + 0.8888889) = 3.234718
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    d = welch_difference(a, b)
    assert d.test == "Welch t"
    assert d.n == 3  # the smaller side
    assert d.sd is None and d.values == ()
    assert d.mean == pytest.approx(-1.5)
    half = sps.t.ppf(0.975, 3.234718) * math.sqrt(1.75)  # the hand df; a pooled df (5) would give 3.40 instead of 4.04
    assert d.low == pytest.approx(-1.5 - half, rel=1e-5)
    assert d.high == pytest.approx(-1.5 + half, rel=1e-5)
    oracle = sps.ttest_ind(a, b, equal_var=False)
    assert oracle.statistic == pytest.approx(-1.133893, abs=1e-6)  # the hand t, so the oracle is checked too
    assert d.p == pytest.approx(oracle.pvalue, rel=1e-9)


def test_welch_matches_scipy_on_unequal_spreads():
    a = [2.31, 2.29, 2.35, 2.30, 2.33, 2.28]
    b = [2.40, 2.21, 2.52, 2.19]
    d = welch_difference(a, b)
    oracle = sps.ttest_ind(a, b, equal_var=False)
    assert d.p == pytest.approx(oracle.pvalue, rel=1e-9)
    ci = oracle.confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_welch_needs_two_a_side():
    d = welch_difference([1.0], [2.0, 3.0, 4.0])
    assert d.mean == pytest.approx(-2.0)
    assert d.n == 1
    assert d.low is None and d.high is None and d.p is None


def test_welch_zero_variance_both_sides():
    d = welch_difference([2.0, 2.0, 2.0], [1.5, 1.5])
    assert (d.mean, d.low, d.high, d.p) == (0.5, 0.5, 0.5, 0.0)
    same = welch_difference([2.0, 2.0], [2.0, 2.0, 2.0])
    assert (same.mean, same.p) == (0.0, 1.0)


def test_welch_rejects_an_empty_side():
    with pytest.raises(ValueError):
        welch_difference([], [1.0, 2.0])


# --- holm --------------------------------------------------------------------------------------------------------


def test_holm_worked_example():
    # m = 3 (None does not count); sorted 0.01, 0.03, 0.04
    # 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> monotone: max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])


def test_holm_caps_at_one_and_keeps_order():
    # [0.5, 0.6]: 0.5 * 2 = 1.0; 0.6 * 1 = 0.6 -> max(1.0, 0.6) = 1.0
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    # [0.04, 0.01]: the smaller comes first: 0.01 * 2 = 0.02; 0.04 * 1 = 0.04 -> back in input order [0.04, 0.02]
    assert holm([0.04, 0.01]) == pytest.approx([0.04, 0.02])
    # [0.3, 0.001, 0.02]: 0.001 * 3 = 0.003; 0.02 * 2 = 0.04; 0.3 * 1 = 0.3
    assert holm([0.3, 0.001, 0.02]) == pytest.approx([0.3, 0.003, 0.04])


def test_holm_degenerate_inputs():
    assert holm([]) == []
    assert holm([None, None]) == [None, None]
    assert holm([0.02]) == pytest.approx([0.02])  # m = 1: nothing to correct
    with pytest.raises(ValueError):
        holm([0.5, 1.5])


# --- power, minimum detectable effect, seeds needed ------------------------------------------------------------------


def test_power_at_zero_effect_is_alpha():
    # no true difference: the test rejects exactly as often as its level, alpha / 2 in each tail
    assert power_paired(0.0, 0.003, 6) == pytest.approx(0.05, abs=1e-12)
    assert power_paired(0.0, 1.0, 30, alpha=0.01) == pytest.approx(0.01, abs=1e-12)


def test_power_shape():
    assert power_paired(0.004, 0.003, 1) == 0.0
    assert power_paired(-0.004, 0.003, 6) == pytest.approx(power_paired(0.004, 0.003, 6))
    assert power_paired(0.004, 0.003, 5) < power_paired(0.004, 0.003, 6) < power_paired(0.004, 0.003, 10)
    assert power_paired(0.004, 0.0, 3) == 1.0 and power_paired(0.0, 0.0, 3) == 0.0


def test_power_deep_in_the_tail_is_a_number():
    # df 199, nc = 0.79 * sqrt(200) = 11.2: scipy's nct.cdf of the far tail is NaN here; the power is ~1, not NaN
    assert power_paired(0.79, 1.0, 200) == pytest.approx(1.0)


def test_mde_n6_against_the_noncentral_t_by_hand():
    # n = 6, sd = 0.003, df = 5, t_{0.975, 5} = 2.570582. Power 0.8 means P(T' > 2.570582) = 0.8 (the other tail is
    # ~1e-4). Normal approximation to the noncentral t (Abramowitz & Stegun 26.7.10):
    #   P(T' <= c) ~ Phi( (c (1 - 1/(4 df)) - nc) / sqrt(1 + c^2 / (2 df)) )
    #   c (1 - 1/20) = 2.442053; sqrt(1 + 6.608/10) = 1.288720; Phi(.) = 0.2 -> (2.442053 - nc) / 1.288720 = -0.841621
    #   -> nc = 2.442053 + 1.084624 = 3.526677 -> effect = nc * sd / sqrt(6) = 3.526677 * 0.003 / 2.449490 = 0.004319
    # The approximation is good to about a percent at df = 5, so the exact answer lies within 0.0043-0.0045.
    mde = minimum_detectable_effect(0.003, 6)
    assert 0.0043 <= mde <= 0.0045
    assert mde == pytest.approx(0.004319, rel=0.01)
    assert power_paired(mde, 0.003, 6) == pytest.approx(0.8, abs=1e-6)


def test_mde_large_n_approaches_the_normal_formula():
    # (z_0.975 + z_0.8) * sd / sqrt(n) = (1.959964 + 0.841621) * 1 / sqrt(200) = 2.801585 / 14.142136 = 0.198103;
    # the t version is a little larger (t_{0.975,199} = 1.97 > 1.96) but within 1%
    mde = minimum_detectable_effect(1.0, 200)
    assert mde == pytest.approx(0.198103, rel=0.01)
    assert mde > 0.198103
    assert power_paired(mde, 1.0, 200) == pytest.approx(0.8, abs=1e-6)


def test_mde_small_n_and_other_power():
    mde = minimum_detectable_effect(1.0, 2, power=0.9)  # df 1: a wide bracket is needed
    assert power_paired(mde, 1.0, 2) == pytest.approx(0.9, abs=1e-6)
    assert minimum_detectable_effect(1.0, 10, power=0.9) > minimum_detectable_effect(1.0, 10, power=0.8)


def test_mde_degenerate():
    assert minimum_detectable_effect(None, 6) is None
    assert minimum_detectable_effect(0.003, 1) is None
    assert minimum_detectable_effect(0.0, 6) == 0.0
    with pytest.raises(ValueError):
        minimum_detectable_effect(0.003, 6, power=0.01)


def test_seeds_needed_straddles_the_power():
    # normal approximation: n = ((1.96 + 0.84) * 0.003 / 0.005)^2 = 1.681^2 = 2.8, and the t test's fat tails at tiny df
    # push it up. By A&S 26.7.10 as above:
    #   n = 5: df 4, c = 2.776445, nc = 0.005 sqrt5 / 0.003 = 3.72678; (2.602917 - 3.72678) / 1.401279 = -0.802
    #          -> power ~ 1 - Phi(-0.802) = 1 - 0.211 = 0.789 < 0.8
    #   n = 6: df 5, c = 2.570582, nc = 4.08248; (2.442053 - 4.08248) / 1.288720 = -1.273 -> power ~ 1 - 0.1015 = 0.898
    # so 6 seeds.
    n = seeds_needed(0.003, 0.005)
    assert n == 6
    assert power_paired(0.005, 0.003, n) >= 0.8 > power_paired(0.005, 0.003, n - 1)


def test_seeds_needed_limits():
    assert seeds_needed(0.003, 0.005, limit=5) is None
    assert seeds_needed(0.003, 0.005, limit=6) == 6
    assert seeds_needed(None) is None
    assert seeds_needed(0.0, 0.005) == 2
    assert seeds_needed(0.003, 0.0) is None  # no difference is never detected more often than alpha
    # a big effect: 2 seeds. n = 2: df 1, c = 12.706, nc = 1.0 * sqrt2 / 0.01 = 141 -> power ~ 1
    assert seeds_needed(0.01, 1.0) == 2
    # (2.8 * 1 / 0.01)^2 = 78400 seeds > the default limit of 10000
    assert seeds_needed(1.0, 0.01) is None


# --- verdict -----------------------------------------------------------------------------------------------------


def _diff(n: int, mean: float, low: float | None, high: float | None) -> Difference:
    return Difference(n=n, mean=mean, sd=None, low=low, high=high, p=None, test="paired t", values=())


def test_verdict_branches():
    assert verdict(_diff(2, -1.0, -2.0, -0.5)) == "too few seeds (n=2)"  # excludes 0, but 2 seeds
    assert verdict(_diff(4, -0.01, -0.02, -0.001)) == "lower (CI excludes 0)"
    assert verdict(_diff(4, 0.01, 0.001, 0.02)) == "higher (CI excludes 0)"
    assert verdict(_diff(5, 0.01, -0.001, 0.02)) == "not distinguishable (n=5)"
    assert verdict(_diff(5, 0.0, 0.0, 0.0)) == "not distinguishable (n=5)"  # 0 inside a collapsed CI


def test_verdict_on_computed_differences():
    assert verdict(paired_difference(A, B)) == "higher (CI excludes 0)"  # CI [0.29, 1.21]
    assert verdict(paired_difference(B, A)) == "lower (CI excludes 0)"
    assert verdict(paired_difference(A[:2], B[:2])) == "too few seeds (n=2)"
    # diffs [0.5, -0.5, 0.5]: mean 1/6, CI wide around it
    assert verdict(paired_difference([1.0, 1.0, 1.0], [0.5, 1.5, 0.5])) == "not distinguishable (n=3)"
    assert verdict(welch_difference([1.0, 2.0, 3.0, 4.0], [2.0, 4.0])) == "too few seeds (n=2)"


# --- pearson -----------------------------------------------------------------------------------------------------


def test_pearson_worked_example():
    # x = [1, 2, 3], y = [2, 4, 7]: dx = [-1, 0, 1], dy = [-7/3, -1/3, 8/3]
    # Sxy = 7/3 + 0 + 8/3 = 5; Sxx = 2; Syy = (49 + 1 + 64) / 9 = 114/9
    # -> r = 5 / sqrt(2 * 114/9) = 15 / sqrt(228) = 0.993399
    # r^2 = 225/228 = 75/76 -> t = r sqrt(n - 2) / sqrt(1 - r^2) = sqrt(75) = 8.660254, df 1 (a Cauchy):
    # p = 1 - (2/pi) atan(8.660254) = 1 - (2/pi) * 1.4558366 = 0.073186
    r, p = pearson([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])
    assert r == pytest.approx(15 / math.sqrt(228))
    assert r == pytest.approx(0.993399, abs=1e-6)
    assert p == pytest.approx(0.073186, abs=2e-6)


def test_pearson_undefined():
    assert pearson([1.0, 2.0], [3.0, 4.0]) is None  # two points always lie on a line
    assert pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert pearson([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]) is None
    # LR areas equal but for float rounding: no r (scipy would warn of a near-constant input and return noise)
    assert pearson([219.9, 219.9 + 3e-14, 219.9 - 3e-14], [1.85, 1.78, 1.72]) is None
    with pytest.raises(ValueError):
        pearson([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize("mean, low, high, verdict", [
    (-0.010, -0.014, -0.006, "helps"),  # beats by more than the margin, interval below 0
    (-0.006, -0.012, -0.001, "helps"),
    (-0.003, -0.004, -0.002, "null"),  # below 0, but by less than the margin: within +-0.005
    (+0.008, +0.002, +0.014, "hurts"),
    (+0.002, +0.001, +0.004, "hurts"),  # above 0 is checked before the margin
    (+0.001, -0.004, +0.004, "null"),
    (-0.006, -0.013, +0.001, "could not tell"),  # the interval reaches 0
    (+0.000, -0.009, +0.009, "could not tell"),  # too wide to call null
    (-0.020, None, None, "could not tell"),  # no interval: too few seeds
])
def test_the_decision_rule_reads_the_interval_against_the_margin(mean, low, high, verdict):
    assert stats.decide(mean, low, high, margin=0.005) == verdict


def test_the_decision_rule_needs_a_positive_margin():
    with pytest.raises(ValueError, match="margin"):
        stats.decide(0.0, -0.001, 0.001, margin=0)
