"""The statistics layer: pure functions from tidy tables to tidy tables / result dataclasses.

No file I/O and no knowledge of the pipeline. Each estimator reproduces the R reference
implementation named in its module docstring (see tests/test_stats_*.py for the numbers):

* :mod:`~stormcohort.stats.survival`  Kaplan-Meier (Greenwood, R "log" CI), R medians, log-rank
* :mod:`~stormcohort.stats.cox`       Cox PH (Efron), LR/Wald/score tests, R >= 3.0 cox.zph
* :mod:`~stormcohort.stats.firth`     Firth logistic (R logistf), ML logistic with separation checks
* :mod:`~stormcohort.stats.competing` Aalen-Johansen CIF with infinitesimal-jackknife CI (R survfit)
* :mod:`~stormcohort.stats.finegray`  Gray's test, Fine-Gray and cause-specific Cox, optionally weighted
  (R cmprsk cuminc/crr, survival coxph)
* :mod:`~stormcohort.stats.rates`     exact Poisson rates and conditional rate ratios (R poisson.test),
  patient-clustered Poisson rate ratios (R sandwich::vcovCL)
* :mod:`~stormcohort.stats.mixed`     log-lab trajectory LMM (REML as lme4, Satterthwaite t as lmerTest; vectorised)
* :mod:`~stormcohort.stats.weights`   propensity (logistic, Firth fallback), ATE/ATT/ATO weights, balance (R cobalt)
* :mod:`~stormcohort.stats.weighted`  weighted linear/logistic/Poisson (HC0, R sandwich) and Cox (R robust) models
* :mod:`~stormcohort.stats.evalue`    E-values for unmeasured confounding, RR/HR/OR (R EValue)
* :mod:`~stormcohort.stats.multiplicity` Holm step-down adjusted p values (R p.adjust "holm")
* :mod:`~stormcohort.stats.target_trial` clone-censor-weight emulation of IV within G days vs SC (weighted KM,
  risks, RD/RR, patient bootstrap), landmark and start-stop data for the sensitivity analyses
* :mod:`~stormcohort.stats.impute`    multiple imputation by chained equations, mice's defaults (pmm, logreg,
  polyreg) for all m imputations at once; missingness patterns (R mice, md.pattern)
* :mod:`~stormcohort.stats.pooling`   Rubin's rules with Barnard-Rubin df and fraction of missing information
  (R mice pool.scalar / pool), vectorised, ratios on the log scale
"""

import importlib

# Names are imported on first use (PEP 562): each rule's job imports only the estimators it
# runs, not scipy.optimize, lifelines or statsmodels for all of them.
_HOME = {
    "competing": ["aalen_johansen", "cumulative_incidence", "state_probabilities_at"],
    "cox": ["CoxResult", "cox_ph", "cox_zph"],
    "evalue": ["EValue", "evalue_hr", "evalue_or", "evalue_rr"],
    "finegray": ["FineGrayResult", "GrayTest", "cause_specific_cox", "fine_gray", "gray_test"],
    "firth": ["FirthResult", "LogisticResult", "firth_logistic", "ml_logistic"],
    "impute": ["impute", "missingness_pattern", "nelson_aalen"],
    "mixed": ["MixedResult", "lab_trajectory_lmm"],
    "multiplicity": ["holm"],
    "pooling": ["PooledScalar", "pool_log_ratios", "pool_scalar", "pool_table"],
    "rates": ["ClusteredRateRatio", "RateRatio", "clustered_rate_ratio", "incidence_rates", "poisson_rate_ci",
              "rate_ratio"],
    "survival": ["LogRankResult", "kaplan_meier", "km_median", "km_summary", "logrank_test", "numbers_at_risk",
                 "survival_at"],
    "weighted": ["WeightedFit", "weighted_cox", "weighted_glm"],
    "weights": ["PropensityResult", "balance_table", "balancing_weights", "effective_sample_size", "ess_by_group",
                "propensity", "truncate_weights", "weights_summary"],
    "target_trial": ["TargetTrialResult", "TimeVaryingCoxResult", "clone", "clone_censor_weight", "landmark",
                     "start_stop", "time_varying_cox", "weighted_kaplan_meier"],
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)


def __dir__():
    return sorted([*globals(), *_MODULE_OF])


__all__ = sorted(_MODULE_OF)
