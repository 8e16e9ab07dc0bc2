"""E-values for unmeasured confounding (VanderWeele and Ding 2017), as R's ``EValue`` package.

The E-value is the minimum strength of association, on the risk-ratio scale, that an
unmeasured confounder would need with both the treatment and the outcome, conditional on the
measured covariates, to explain away an observed association:

* **Point**: ``E = RR + sqrt(RR (RR - 1))`` for RR >= 1; a protective RR < 1 is inverted first
  (``1/RR``). RR = 1 gives E = 1.
* **Confidence limit**: the same formula applied to the limit nearer the null (the lower limit
  when RR > 1, the upper when RR < 1); 1 when the interval includes 1 (R ``evalues.RR``).
* **Other measures** (R ``evalues.HR`` / ``evalues.OR``), converted to approximate risk ratios
  first, estimate and limits alike:

  - hazard ratio, common outcome (``rare=False``):
    ``RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``; rare outcome (under ~15% by the end of
    follow-up, ``rare=True``): RR = HR;
  - odds ratio, common outcome: ``RR = sqrt(OR)``; rare outcome: RR = OR.

  R's functions have no default for ``rare``; neither do these: the choice is the analyst's.

The null is RR = 1 (R's ``true = 1``). Estimates and limits must be positive and ordered
``lcl <= est <= ucl``; anything else is a ``ValueError`` (a caller's mistake, not data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EValue", "evalue_hr", "evalue_or", "evalue_rr"]


@dataclass(frozen=True)
class EValue:
    """E-values of an estimate and of its confidence limit nearer the null.

    ``measure`` is ``"RR"``, ``"HR"`` or ``"OR"``; ``estimate``/``lcl``/``ucl`` are as given,
    ``rr``/``rr_lcl``/``rr_ucl`` the risk ratios they were converted to (``conversion`` says
    how). ``evalue_ci`` is 1 when the interval includes the null and NaN when no interval was
    given."""

    measure: str
    estimate: float
    lcl: float
    ucl: float
    rr: float
    rr_lcl: float
    rr_ucl: float
    evalue_point: float
    evalue_ci: float
    conversion: str


def _evalue(rr: float) -> float:
    """E-value of one risk ratio (protective ratios inverted first)."""
    if rr < 1:
        rr = 1 / rr
    return rr + math.sqrt(rr * (rr - 1))


def _check(est, lcl, ucl) -> tuple[float, float, float]:
    if (lcl is None) != (ucl is None):
        raise ValueError("give both confidence limits or neither")
    values = [float(est)] + ([] if lcl is None else [float(lcl), float(ucl)])
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"ratio estimates and limits must be positive and finite, got {values}")
    if lcl is None:
        return values[0], math.nan, math.nan
    est, lcl, ucl = values
    if not lcl <= est <= ucl:
        raise ValueError(f"limits must bracket the estimate: lcl {lcl} <= est {est} <= ucl {ucl}")
    return est, lcl, ucl


def _result(measure, est, lcl, ucl, rr, rr_lcl, rr_ucl, conversion) -> EValue:
    point = _evalue(rr)
    if math.isnan(rr_lcl):
        ci = math.nan
    elif rr_lcl <= 1 <= rr_ucl:
        ci = 1.0
    else:
        ci = _evalue(rr_lcl if rr > 1 else rr_ucl)
    return EValue(measure, est, lcl, ucl, rr, rr_lcl, rr_ucl, point, ci, conversion)


def evalue_rr(est: float, lcl: float | None = None, ucl: float | None = None) -> EValue:
    """E-values of a risk ratio (or rate ratio) and its confidence interval (R ``evalues.RR``)."""
    est, lcl, ucl = _check(est, lcl, ucl)
    return _result("RR", est, lcl, ucl, est, lcl, ucl, "none (risk ratio)")


def _hr_to_rr(hr: float) -> float:
    if math.isnan(hr):
        return hr
    return (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))


def evalue_hr(est: float, lcl: float | None = None, ucl: float | None = None, *, rare: bool) -> EValue:
    """E-values of a hazard ratio (R ``evalues.HR``): common outcome (``rare=False``) converted by
    ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``, rare outcome taken as a risk ratio."""
    est, lcl, ucl = _check(est, lcl, ucl)
    if rare:
        return _result("HR", est, lcl, ucl, est, lcl, ucl, "rare outcome: HR taken as RR")
    rr, rr_lcl, rr_ucl = (_hr_to_rr(v) for v in (est, lcl, ucl))
    return _result("HR", est, lcl, ucl, rr, rr_lcl, rr_ucl,
                   "common outcome: RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))")


def evalue_or(est: float, lcl: float | None = None, ucl: float | None = None, *, rare: bool) -> EValue:
    """E-values of an odds ratio (R ``evalues.OR``): common outcome (``rare=False``) converted by
    ``sqrt(OR)``, rare outcome taken as a risk ratio."""
    est, lcl, ucl = _check(est, lcl, ucl)
    if rare:
        return _result("OR", est, lcl, ucl, est, lcl, ucl, "rare outcome: OR taken as RR")
    rr, rr_lcl, rr_ucl = (math.sqrt(v) for v in (est, lcl, ucl))
    return _result("OR", est, lcl, ucl, rr, rr_lcl, rr_ucl, "common outcome: RR = sqrt(OR)")
