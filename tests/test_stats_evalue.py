"""E-values against the EValue package's test numbers (VanderWeele and Ding 2017).

Reference numbers: /work/shared/reference/README.md, "E-values".
"""

import math

import pytest

from stormcohort.stats.evalue import evalue_hr, evalue_or, evalue_rr


@pytest.mark.parametrize(
    "est, lcl, ucl, point, ci, digits",
    [
        (3.9, 1.8, 8.7, 7.263, 3.0, 3),  # README: 7.263 and 3.0
        (0.80, 0.71, 0.91, 1.809, 1.429, 3),  # protective: 1/RR, upper limit
        (10.73, 8.02, 14.36, 20.95, 15.52, 2),
    ],
)
def test_evalue_rr_matches_evalue_package(est, lcl, ucl, point, ci, digits):
    e = evalue_rr(est, lcl, ucl)
    assert round(e.evalue_point, digits) == point
    assert round(e.evalue_ci, digits) == pytest.approx(ci)
    assert (e.rr, e.rr_lcl, e.rr_ucl) == (est, lcl, ucl)
    assert e.measure == "RR"


def test_interval_crossing_the_null_gives_one():
    assert evalue_rr(1.3, 0.9, 1.9).evalue_ci == 1.0
    assert evalue_rr(0.8, 0.5, 1.0).evalue_ci == 1.0  # a limit on the null counts as crossing
    assert evalue_rr(1.0).evalue_point == 1.0


def test_point_only_has_no_ci_evalue():
    e = evalue_rr(2.0)
    assert e.evalue_point == pytest.approx(2 + math.sqrt(2))
    assert math.isnan(e.evalue_ci)


def test_hr_common_outcome_conversion_by_hand():
    # HR 0.56 (0.46 to 0.69), common outcome. By hand: sqrt(0.56) = 0.748331,
    # 0.5^0.748331 = 0.595307; sqrt(1/0.56) = 1.336306, 0.5^1.336306 = 0.396040;
    # RR = 0.404693 / 0.603960 = 0.670084 -> 1/RR = 1.492350, E = 1.492350 + sqrt(1.492350 *
    # 0.492350) = 2.349531. Upper limit 0.69 -> RR 0.773527 -> E 1.908004.
    e = evalue_hr(0.56, 0.46, 0.69, rare=False)
    assert e.rr == pytest.approx(0.670084, abs=1e-6)
    assert e.evalue_point == pytest.approx(2.349531, abs=1e-6)
    assert e.rr_ucl == pytest.approx(0.773527, abs=1e-6)
    assert e.evalue_ci == pytest.approx(1.908004, abs=1e-6)
    assert e.measure == "HR" and "common" in e.conversion


def test_hr_rare_outcome_is_taken_as_rr():
    e = evalue_hr(0.80, 0.71, 0.91, rare=True)
    r = evalue_rr(0.80, 0.71, 0.91)
    assert (e.evalue_point, e.evalue_ci) == (r.evalue_point, r.evalue_ci)


def test_or_conversions_by_hand():
    # OR 2.5 (1.6 to 3.9), common outcome: RR = sqrt(OR) = 1.581139, E = 1.581139 +
    # sqrt(1.581139 * 0.581139) = 2.539711; lower limit sqrt(1.6) = 1.264911 -> E 1.843780.
    e = evalue_or(2.5, 1.6, 3.9, rare=False)
    assert e.rr == pytest.approx(1.581139, abs=1e-6)
    assert e.evalue_point == pytest.approx(2.539711, abs=1e-6)
    assert e.evalue_ci == pytest.approx(1.843780, abs=1e-6)
    # rare outcome: OR as RR, 2.5 + sqrt(2.5 * 1.5) = 4.436492; 1.6 + sqrt(1.6 * 0.6) = 2.579796
    rare = evalue_or(2.5, 1.6, 3.9, rare=True)
    assert rare.evalue_point == pytest.approx(4.436492, abs=1e-6)
    assert rare.evalue_ci == pytest.approx(2.579796, abs=1e-6)


def test_rare_has_no_default():
    with pytest.raises(TypeError):
        evalue_hr(0.5, 0.3, 0.8)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "args",
    [(0.0, None, None), (-1.0, None, None), (float("nan"), None, None), (2.0, 2.5, 3.0), (2.0, 1.0, None),
     (float("inf"), 1.0, float("inf"))],
)
def test_bad_input_is_an_error(args):
    with pytest.raises(ValueError):
        evalue_rr(*args)
