"""The statistics layer: pure functions from tidy tables to tidy tables / result dataclasses.

No file I/O and no knowledge of the pipeline. Each estimator reproduces the R reference
implementation named in its module docstring (see tests/test_stats_*.py for the numbers):

* :mod:`~stormcohort.stats.survival`  Kaplan-Meier (Greenwood, R "log" CI), R medians, log-rank
* :mod:`~stormcohort.stats.cox`       Cox PH (Efron), LR/Wald/score tests, R >= 3.0 cox.zph
* :mod:`~stormcohort.stats.firth`     Firth logistic (R logistf), ML logistic with separation checks
* :mod:`~stormcohort.stats.competing` Aalen-Johansen CIF with infinitesimal-jackknife CI (R survfit)
* :mod:`~stormcohort.stats.rates`     exact Poisson rates and conditional rate ratios (R poisson.test)
* :mod:`~stormcohort.stats.mixed`     log-lab trajectory LMM (REML, as statsmodels MixedLM, vectorised) with fallback
"""

from stormcohort.stats.competing import (
    aalen_johansen,
    cumulative_incidence,
    state_probabilities_at,
)
from stormcohort.stats.cox import CoxResult, cox_ph, cox_zph
from stormcohort.stats.firth import (
    FirthResult,
    LogisticResult,
    firth_logistic,
    ml_logistic,
)
from stormcohort.stats.mixed import MixedResult, lab_trajectory_lmm
from stormcohort.stats.rates import (
    RateRatio,
    incidence_rates,
    poisson_rate_ci,
    rate_ratio,
)
from stormcohort.stats.survival import (
    LogRankResult,
    kaplan_meier,
    km_median,
    km_summary,
    logrank_test,
    numbers_at_risk,
    survival_at,
)

__all__ = [
    "CoxResult",
    "FirthResult",
    "LogRankResult",
    "LogisticResult",
    "MixedResult",
    "RateRatio",
    "aalen_johansen",
    "cox_ph",
    "cox_zph",
    "cumulative_incidence",
    "firth_logistic",
    "incidence_rates",
    "kaplan_meier",
    "km_median",
    "km_summary",
    "lab_trajectory_lmm",
    "logrank_test",
    "ml_logistic",
    "numbers_at_risk",
    "poisson_rate_ci",
    "rate_ratio",
    "state_probabilities_at",
    "survival_at",
]
