"""IV vs SC as an emulated target trial: the report's primary analysis (issue 12).

Analysis dataset (and the long tables the secondary outcomes need) in, tidy tables out (no I/O):

* **Primary**: death by day H (``cohort.follow_up_days``) under "start IV within G days of the
  first dose" vs "stay on SC through day G" (G = ``grace_days``), by clone-censor-weight
  (:func:`stormcohort.stats.target_trial.clone_censor_weight`: censoring weights on the baseline
  adjustment set, weighted Kaplan-Meier, risks at ``risk_days`` and H, their difference and
  ratio with percentile bootstrap intervals over patients, the weighted hazard ratio).
* **Secondary outcomes** (``secondary_outcomes``, as :mod:`~stormcohort.analyses.binary` defines
  them) among patients followed at day G (a landmark: exposure = IV by day G, so no group is
  defined by what happens after its time zero), weighted by the propensity of IV by day G on the
  adjustment set (stabilised ATE weights, or overlap weights: ``estimand``): weighted risks, risk
  difference (linear model) and odds ratio (logistic model), each with HC0 robust variance
  (the risks' variance, the same sandwich's, is used only to pool them over imputations).
* **Diagnostics**: balance before and after weighting (cobalt's differences and variance
  ratios), effective sample sizes and the largest weights, the propensity and preference score
  distributions with the share in equipoise (preference score 0.3-0.7, Walker et al. 2013).
* **Sensitivity** of the primary estimate: naive ever-IV Cox (the descriptive grouping, with its
  immortal time), first route (G = 0), landmark at day G with propensity weights, a Cox model with
  the route as a time-varying exposure, overlap weights, truncated weights, each centre left out.
* **E-values** (VanderWeele and Ding 2017) of every ratio and its confidence limit.

**Missing adjustment values** (``missing_data``): the complete cases, and beside them the same
analyses of the primary *and* the secondary outcomes under multiple imputation. The adjustment set is
imputed once, m times (:func:`stormcohort.stats.impute.impute`: chained equations, mice's default
methods), and both analyses run in each completed set; predictors: IV by day G, the death indicator
and its Nelson-Aalen hazard (the primary's treatment and outcome) and every secondary outcome, not
evaluable entering as its own level (:func:`_imputation_base`), so that the one imputation model
holds the outcome of every analysis model (congenial with each; the secondary outcomes change the
primary's imputations, which stay valid: :func:`_imputed_analyses`). Pooled by Rubin's rules
(``stormcohort.stats.pool_scalar``, Barnard-Rubin df with the complete-data df n - k): risks and risk
differences on their scale, ratios on the log scale; each set's variance that of the primary's bootstrap
replicates (``missing_data.bootstrap_replicates`` per set: Rubin's rules average the m sets' variances,
so m x b replicates in all), the hazard ratio's and the secondary outcomes' robust standard errors.
``missing_data.primary`` says which is primary: the other is labelled
``complete_case`` or ``multiple_imputation`` in effect.csv; nothing missing, no imputed rows.
Anything that cannot be estimated is a row with the reason, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from stormcohort.analyses.binary import binary_outcomes
from stormcohort.analyses.common import check_columns, check_routes, jsonable, reference_first
from stormcohort.analyses.protocol import protocol_table
from stormcohort.analyses.result import AnalysisResult
from stormcohort.labels import death_outcome, sensitivity_label

EFFECT_COLUMNS = ["analysis", "outcome", "measure", "day", "estimate", "lcl", "ucl", "p", "n", "events", "note"]
SENSITIVITY_COLUMNS = ["analysis", "label", "measure", "estimate", "lcl", "ucl", "n", "events", "note"]
EVALUE_COLUMNS = ["outcome", "measure", "estimate", "lcl", "ucl", "evalue_estimate", "evalue_ci", "note"]
BALANCE_COLUMNS = ["weighting", "covariate", "type", "diff_type", "mean_iv_unadj", "mean_sc_unadj", "diff_unadj",
                   "mean_iv_adj", "mean_sc_adj", "diff_adj", "var_ratio_unadj", "var_ratio_adj", "note"]
WEIGHTS_COLUMNS = ["weighting", "group", "n", "ess", "mean", "min", "max", "n_above_10"]
OVERLAP_COLUMNS = ["group", "n", "ps_min", "ps_q1", "ps_median", "ps_q3", "ps_max", "n_equipoise",
                   "share_equipoise"]
PATIENT_WEIGHT_COLUMNS = ["patient_key", "iv", "iptw", "overlap"]
# one completed set's secondary estimates: q on the pooling scale (log for the odds ratio), u its variance
DRAW_COLUMNS = ["outcome", "measure", "q", "u", "reason", "n", "events"]
# the imputation model's predictors for the primary analysis: IV by day G, the death indicator, its
# Nelson-Aalen cumulative hazard; the secondary outcomes' follow (_imputation_base)
PRIMARY_PREDICTORS = ("_iv", "_event", "_hazard")
EQUIPOISE = (0.3, 0.7)
METHODS = {
    "primary": "clone-censor-weight: each patient cloned into both strategies at the first dose, a clone censored "
               "when its record deviates from its strategy, inverse-probability-of-censoring weights from logistic "
               "models on the adjustment set, weighted Kaplan-Meier per strategy; percentile bootstrap intervals "
               "over patients; weighted Cox hazard ratio with robust variance clustered on patients",
    "secondary": "patients followed at day G; propensity of IV by day G by logistic regression (Firth when it "
                 "separates) on the adjustment set; weighted linear (risk difference) and logistic (odds ratio) "
                 "models with HC0 robust variance (R lm/glm with weights + sandwich)",
    "missing_data": "missing adjustment variables imputed m times by chained equations (R mice's default "
                    "methods) from the other adjustment variables, IV by day G, death by day H and its Nelson-Aalen "
                    "hazard and each secondary outcome (not evaluable as its own level); the primary and the "
                    "secondary outcomes analysed in each completed data set and pooled by Rubin's rules (ratios on "
                    "the log scale; within-set variances from the bootstrap replicates and the robust standard errors; "
                    "Barnard-Rubin degrees of freedom), the "
                    "complete cases beside them; nothing imputed when nothing is missing",
    "balance": "differences in means (binary: proportions; continuous: standardised by the pooled SD of the "
               "unweighted groups) and variance ratios before and after weighting, as R cobalt bal.tab",
    "evalue": "VanderWeele and Ding (2017): E = RR + sqrt(RR (RR - 1)); hazard and odds ratios of an outcome "
              "more common than 15% converted to risk ratios first",
}
# An outcome more common than this is not rare for the E-value conversions of HR and OR.
RARE_BELOW = 0.15
TIME, IV, IV_BY_G = "time_to_death_days", "iv_start_day", "iv_by_grace"


def _design(frame: pd.DataFrame, covariates, reference_levels: Mapping) -> tuple[pd.DataFrame, list[str]]:
    """Numeric columns of the adjustment set: 0/1 indicators for text columns (reference level
    left out: ``reference_levels``, else the first sorted), numbers as they are."""
    from stormcohort.stats._util import design_matrix

    coded = frame[list(covariates)].apply(
        lambda x: x if pd.api.types.is_numeric_dtype(x) else reference_first(x, reference_levels.get(x.name)))
    out, _ = design_matrix(coded, covariates)
    return out, list(out.columns)


def _row(analysis, outcome, measure, estimate=np.nan, lcl=np.nan, ucl=np.nan, p=np.nan, n=pd.NA, events=pd.NA,
         day=pd.NA, note=None) -> dict:
    return {"analysis": analysis, "outcome": outcome, "measure": measure, "day": day, "estimate": estimate,
            "lcl": lcl, "ucl": ucl, "p": p, "n": n, "events": events, "note": note}


def _ccw_rows(analysis: str, outcome: str, fit, days, n: int, events: int) -> list[dict]:
    """effect.csv rows of a clone-censor-weight fit: risks, their contrasts, the hazard ratio."""
    if not fit.estimable:
        return [_row(analysis, outcome, m, n=n, events=events, note=f"not estimable: {fit.reason}")
                for m in ("risk_difference", "hazard_ratio")]
    rows = []
    risks = fit.risks.set_index(["arm", "day"])
    # per arm: the clones that started follow-up (not censored at time zero) and their deaths by the day
    clones = fit.clones[~(fit.clones["deviated"].astype(bool) & fit.clones["time"].eq(0))]
    for day in days:
        for arm, measure in (("IV", "risk_iv"), ("SC", "risk_sc")):
            r, own = risks.loc[(arm, day)], clones[clones["arm"].eq(arm)]
            deaths = int((own["event"].eq(1) & own["time"].le(day)).sum())
            rows.append(_row(analysis, outcome, measure, r["risk"], r["risk_lcl"], r["risk_ucl"], n=len(own),
                             events=deaths, day=day))
        c = fit.contrasts.set_index("day").loc[day]
        rows.append(_row(analysis, outcome, "risk_difference", c["rd"], c["rd_lcl"], c["rd_ucl"], n=n,
                         events=events, day=day))
        rows.append(_row(analysis, outcome, "risk_ratio", c["rr"], c["rr_lcl"], c["rr_ucl"], n=n, events=events,
                         day=day))
    hr = fit.cox.iloc[0][["hr", "hr_lcl", "hr_ucl", "p"]] if len(fit.cox) else [np.nan] * 4
    note = (f"not estimable: {fit.cox_reason}" if fit.cox_reason
            else "weighted Cox, robust variance clustered on patients")
    rows.append(_row(analysis, outcome, "hazard_ratio", *hr, n=n, events=events, note=note))
    return rows


def _weighted_rows(analysis: str, outcome: str, fit, measure: str, n: int, events: int) -> dict:
    if not fit.estimable:
        return _row(analysis, outcome, measure, n=n, events=events, note=f"not estimable: {fit.reason}")
    ratio = measure in ("hazard_ratio", "odds_ratio")
    est = (fit.ratio, fit.ratio_lcl, fit.ratio_ucl) if ratio else (fit.estimate, fit.lcl, fit.ucl)
    return _row(analysis, outcome, measure, *est, fit.p, n=n, events=events, note=fit.variance)


def _safe(name: str) -> str:
    """``centre[LDN]`` -> ``centre_LDN``: design column names the model code takes as plain names."""
    return name.replace("[", "_").replace("]", "")


def _analysis_frame(dataset: pd.DataFrame, adjust, reference_levels, death: str):
    """Complete cases of the adjustment set: identifiers, raw covariates (for the balance table), time, event,
    iv_start and the design columns ``x_<name>`` (returned as ``names``; levels absent from ``dataset`` get
    none, so a subset never holds a constant indicator). Also the mask of complete rows."""
    X, names = _design(dataset, adjust, reference_levels)
    X.columns = names = [f"x_{_safe(c)}" for c in names]
    complete = X.notna().all(axis=1) & dataset[TIME].notna()
    frame = pd.concat([dataset[list(dict.fromkeys(["patient_key", "centre", "route_group", *adjust]))],
                       dataset[[TIME, death, IV]].set_axis(["time", "event", "iv_start"], axis=1), X], axis=1)
    return frame[complete].reset_index(drop=True), names, complete


def _preference(ps: np.ndarray, treat: np.ndarray) -> np.ndarray:
    """Walker et al. (2013) preference score: the propensity with the treated share taken out."""
    share = treat.mean()
    logit = np.log(ps / (1 - ps)) - np.log(share / (1 - share))
    return 1 / (1 + np.exp(-logit))


def _overlap(scores: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for group in ("IV", "SC"):
        s = scores.loc[scores["group"].eq(group)]
        q = np.percentile(s["ps"], [0, 25, 50, 75, 100]) if len(s) else [np.nan] * 5
        inside = int(s["preference"].between(*EQUIPOISE).sum())
        rows.append([group, len(s), *q, inside, inside / len(s) if len(s) else np.nan])
    return pd.DataFrame(rows, columns=OVERLAP_COLUMNS)


def _weights_row(weighting: str, group: str, w: np.ndarray) -> list:
    from stormcohort.stats import effective_sample_size

    stats = (w.mean(), w.min(), w.max()) if len(w) else (np.nan,) * 3
    return [weighting, group, len(w), effective_sample_size(w) if len(w) else 0.0, *stats, int((w > 10).sum())]


def _evalue_row(outcome: str, measure: str, est: float, lcl: float, ucl: float, rare: bool) -> dict:
    from stormcohort.stats import evalue_hr, evalue_or, evalue_rr

    row = {"outcome": outcome, "measure": measure, "estimate": est, "lcl": lcl, "ucl": ucl,
           "evalue_estimate": np.nan, "evalue_ci": np.nan, "note": None}
    if not all(np.isfinite([est, lcl, ucl])) or min(est, lcl, ucl) <= 0:
        return row | {"note": "not estimable: no finite ratio with confidence limits"}
    if measure == "hazard_ratio":
        e = evalue_hr(est, lcl, ucl, rare=rare)
    elif measure == "odds_ratio":
        e = evalue_or(est, lcl, ucl, rare=rare)
    else:
        e = evalue_rr(est, lcl, ucl)
    how = "rare outcome: taken as a risk ratio" if rare and measure != "risk_ratio" else (
        "common outcome: converted to a risk ratio" if measure != "risk_ratio" else None)
    return row | {"evalue_estimate": e.evalue_point, "evalue_ci": e.evalue_ci, "note": how}


def comparison_analysis(dataset: pd.DataFrame, labs: pd.DataFrame, adverse_events: pd.DataFrame,
                        hepatotoxicity: pd.DataFrame, cohort_cfg: Mapping, binary_cfg: Mapping, cfg: Mapping, *,
                        synthetic: bool = False) -> AnalysisResult:
    """The ``comparison`` rule: tables ``protocol, balance, weights, overlap, effect, sensitivity,
    evalues``, four figures and the model summary (module doc)."""
    from stormcohort.stats import (
        balance_table,
        balancing_weights,
        cox_ph,
        missingness_pattern,
        propensity,
        truncate_weights,
        weighted_cox,
    )
    from stormcohort.stats.target_trial import clone_censor_weight, landmark, time_varying_cox

    h, g = int(cohort_cfg["follow_up_days"]), cfg["grace_days"]
    death = death_outcome(h)
    days = sorted({*cfg["risk_days"], h})
    adjust = list(cfg["adjust_for"])
    check_columns(dataset, ["patient_key", "centre", "route_group", TIME, death, IV, *adjust], "analysis dataset")
    check_routes(dataset, "analysis dataset")
    conf, replicates, seed = cfg["conf_level"], cfg["bootstrap_replicates"], cfg["bootstrap_seed"]

    frame, names, complete = _analysis_frame(dataset, adjust, cfg["reference_levels"], death)
    n, events = len(frame), int(frame["event"].sum())
    warnings = []
    if (~complete).any():
        warnings.append(f"{int((~complete).sum())} patient(s) without a value of the adjustment set left out "
                        "(complete cases)")

    # the secondary outcomes (0/1/<NA> per patient): analysed below and predictors of the imputation model
    outcomes = binary_outcomes(dataset, labs, adverse_events, hepatotoxicity, binary_cfg)[0].set_index("patient_key")
    primary = clone_censor_weight(frame, g, names, days=days, replicates=replicates, seed=seed, conf_level=conf)
    effect = _ccw_rows("primary", death, primary, days, n, events)
    imputed, imputed_secondary, imputation = _imputed_analyses(dataset, adjust, cfg, death, days, conf, outcomes)
    # with missing values, the pooled estimates are primary as configured and the complete cases move aside
    cc_label, mi_label = (("complete_case", "primary") if imputation["imputed_patients"]
                          and cfg["missing_data"]["primary"] == "multiple_imputation"
                          else ("primary", "multiple_imputation"))
    effect = [r | {"analysis": cc_label} for r in effect] + [r | {"analysis": mi_label} for r in imputed]
    warnings += imputation["notes"]

    # Landmark at day G: the population of the propensity-weighted analyses.
    lm = landmark(frame, g)
    ps = propensity(lm, "iv", names)
    scores = pd.DataFrame(columns=["group", "ps", "preference"])
    balance, weight_rows, weights = [], [], {}
    if ps.estimable:
        lm = lm.loc[ps.index].reset_index(drop=True)
        treat = ps.treat.astype(int)
        ate = balancing_weights(treat, ps.ps, "ATE", stabilize=True)
        weights = {"iptw": ate, "overlap": balancing_weights(treat, ps.ps, "ATO")}
        weights["truncated"] = truncate_weights(weights["iptw" if cfg["estimand"] == "ATE" else "overlap"],
                                                *(q / 100 for q in cfg["truncate_percentiles"]))
        scores = pd.DataFrame({"group": np.where(treat == 1, "IV", "SC"), "ps": ps.ps,
                               "preference": _preference(ps.ps, treat)})
        for weighting in ("iptw", "overlap"):
            b = balance_table(lm, "iv", adjust, weights[weighting], estimand="ATE" if weighting == "iptw" else "ATO")
            b = b.rename(columns=lambda c: c.replace("treated", "iv").replace("control", "sc"))
            balance.append(b.assign(weighting=weighting))
            weight_rows += [_weights_row(weighting, grp, weights[weighting][treat == code])
                            for grp, code in (("IV", 1), ("SC", 0))]
    else:
        warnings.append(f"propensity of IV by day {g} not estimable: {ps.reason}")
    main_weights = weights.get("iptw" if cfg["estimand"] == "ATE" else "overlap")
    if primary.estimable:  # censoring weights of the clones that followed their strategy
        followed = primary.clones[~primary.clones["deviated"].astype(bool)]
        weight_rows += [_weights_row("censoring", arm, followed.loc[followed["arm"].eq(arm), "weight"].to_numpy(float))
                        for arm in ("IV", "SC")]

    # Secondary outcomes among the landmark population, propensity weighted: the complete cases, then the
    # same estimates pooled over the imputations (none when nothing is missing).
    if main_weights is None:
        effect += [_row(cc_label, outcome, "odds_ratio", note="not estimable: no propensity weights")
                   for outcome in cfg["secondary_outcomes"]]
    else:
        effect += [r["row"] | {"analysis": cc_label}
                   for r in _secondary_records(lm, main_weights, outcomes, cfg["secondary_outcomes"], conf)]
    effect += [r | {"analysis": mi_label} for r in imputed_secondary]

    # Sensitivity analyses of the primary outcome.
    naive = cox_ph(frame.assign(ever_iv=frame["route_group"].eq("IV").astype(int)), "time", "event", ["ever_iv"],
                   conf_level=conf)
    cox = naive.table.iloc[0]
    effect.append(_row("naive_ever_iv", death, "hazard_ratio", *(cox[["hr", "hr_lcl", "hr_ucl", "p"]]), n=n,
                       events=events, note=None if naive.estimable else f"not estimable: {naive.reason}"))
    first = clone_censor_weight(frame, 0, names, days=days, conf_level=conf)
    effect += [r for r in _ccw_rows("first_route", death, first, days, n, events)
               if r["measure"] in ("hazard_ratio", "risk_difference")]
    lm_n, lm_events = len(lm), int(lm["event"].sum())
    for analysis, key in (("landmark", "iptw" if cfg["estimand"] == "ATE" else "overlap"),
                          ("overlap_weights", "overlap"), ("truncated_weights", "truncated")):
        if key in weights:
            fit = weighted_cox(lm, "time", "event", "iv", weights[key], conf_level=conf)
            effect.append(_weighted_rows(analysis, death, fit, "hazard_ratio", lm_n, lm_events))
        else:
            effect.append(_row(analysis, death, "hazard_ratio", n=lm_n, events=lm_events,
                               note="not estimable: no propensity weights"))
    tv, tv_note = time_varying_cox(frame, names, conf_level=conf), "adjusted for the adjustment set"
    if not tv.estimable:  # too few deaths for the adjustment set: the route alone, said so
        tv, tv_note = time_varying_cox(frame, conf_level=conf), f"unadjusted (adjusted model: {tv.reason})"
    effect.append(_row("time_varying_cox", death, "hazard_ratio", *_tv_estimate(tv), n=n, events=events,
                       note=tv_note if tv.estimable else f"not estimable: {tv.reason}"))
    for centre in sorted(frame["centre"].unique()):
        kept, kept_names, _ = _analysis_frame(dataset[dataset["centre"].ne(centre)], adjust, cfg["reference_levels"],
                                              death)
        fit = clone_censor_weight(kept, g, kept_names, days=days, conf_level=conf)
        effect += [r for r in _ccw_rows(f"leave_out_{centre}", death, fit, days, len(kept), int(kept["event"].sum()))
                   if r["measure"] in ("hazard_ratio", "risk_difference")]

    effect = pd.DataFrame(effect, columns=EFFECT_COLUMNS)
    effect["day"] = effect["day"].astype("Int64")
    for c in ("n", "events"):
        effect[c] = effect[c].astype("Int64")
    sensitivity = _sensitivity(effect, death, h)
    evalues = _evalues(effect, death, h, outcomes)
    balance = (pd.concat(balance, ignore_index=True) if balance else pd.DataFrame())
    balance = balance.reindex(columns=BALANCE_COLUMNS)
    weights_table = pd.DataFrame(weight_rows, columns=WEIGHTS_COLUMNS)
    overlap = _overlap(scores)
    model = _model(cfg, primary, effect, evalues, overlap, weights_table, death, h, n, events, dataset, complete,
                   frame, g, warnings + list(primary.notes))
    model["imputation"] = {k: v for k, v in imputation.items() if k != "notes"}

    def survival():
        from stormcohort.plots.comparison import survival_figure

        return survival_figure(primary.curve.rename(columns={"arm": "strategy"}), synthetic=synthetic)

    def love():
        from stormcohort.plots.comparison import love_figure

        return love_figure(balance, synthetic=synthetic)

    def overlap_plot():
        from stormcohort.plots.comparison import overlap_figure

        return overlap_figure(scores, synthetic=synthetic)

    def forest():
        from stormcohort.plots.comparison import sensitivity_forest_figure

        return sensitivity_forest_figure(sensitivity, synthetic=synthetic)

    return AnalysisResult(
        tables={"protocol": protocol_table(cohort_cfg, cfg), "patients": _patient_weights(lm, weights),
                "missingness": missingness_pattern(dataset, adjust, group="route_group"),
                "balance": balance, "weights": weights_table,
                "overlap": overlap, "effect": effect, "sensitivity": sensitivity, "evalues": evalues},
        model=jsonable(model),
        figures={"survival": survival, "love": love, "overlap": overlap_plot, "sensitivity_forest": forest},
        notes=tuple(model["warnings"]))


def _imputation_base(dataset: pd.DataFrame, adjust, g: int, death: str, outcomes: pd.DataFrame,
                     secondary) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The frame :func:`~stormcohort.stats.impute.impute` completes: the columns the analysis frames read
    (it copies every column m times: GBs at 100,000 patients) and the imputation model's complete
    predictors. Returns the frame, the predictor columns and notes on outcomes left out of them.

    Predictors: IV by day G, the death indicator and its Nelson-Aalen hazard (the primary analysis's
    treatment and outcome, White and Royston 2009), then each secondary outcome (the outcome of its own
    analysis model: an imputation model without it biases the covariate-outcome association towards the
    null). A secondary outcome is 0, 1 or not evaluable (<NA>) and a predictor must be complete, so it
    enters as ``_y_<outcome>`` (1 = the outcome; not evaluable counted 0) and, when some patient is not
    evaluable, ``_na_<outcome>`` (1 = not evaluable): together a three-level factor. Not evaluable is a
    state of the patient (no sample), not a value to guess, so it is a level of the predictor and is never
    imputed; the secondary analyses use the observed outcomes only. An outcome evaluable for no patient
    carries no information and is left out, with a note."""
    from stormcohort.stats import nelson_aalen

    keep = list(dict.fromkeys(["patient_key", "centre", "route_group", *adjust, TIME, death, IV]))
    base = dataset[keep].assign(_iv=dataset[IV].le(g).astype(float), _event=dataset[death].astype(float),
                                _hazard=nelson_aalen(dataset[TIME], dataset[death]))
    extra, notes = {}, []
    for outcome in secondary:
        y = dataset["patient_key"].map(outcomes[outcome]).astype("Float64")
        if y.isna().all():
            notes.append(f"secondary outcome {outcome} evaluable for no patient: not a predictor of the imputations")
            continue
        extra[f"_y_{outcome}"] = y.fillna(0).to_numpy(dtype=float)
        if y.isna().any():
            extra[f"_na_{outcome}"] = y.isna().to_numpy(dtype=float)
    return base.assign(**extra), [*PRIMARY_PREDICTORS, *extra], notes


def _imputed_analyses(dataset: pd.DataFrame, adjust, cfg: Mapping, death: str, days, conf: float,
                      outcomes: pd.DataFrame) -> tuple[list[dict], list[dict], dict]:
    """The primary and the secondary analyses under multiple imputation of the adjustment set, on the same
    m completed sets. Imputed once (chained equations with mice's default methods; predictors as
    :func:`_imputation_base`), then in each set the primary's clone-censor-weight fit (a bootstrap of
    ``missing_data.bootstrap_replicates`` replicates, seeded ``missing_data.seed + i``) and the secondary
    outcomes' propensity-weighted estimates (:func:`_secondary_draw`), pooled by Rubin's rules
    (:func:`_pool_primary`, :func:`_pool_secondary`). Returns the primary's rows, the secondary outcomes'
    rows (analysis ``multiple_imputation``) and a summary for the model: ``imputed_patients``,
    ``imputations``, ``seed``, ``bootstrap_replicates``, ``predictors`` and ``notes`` (for the warnings).
    No rows when nothing is missing (the imputed analysis would be the complete-case one).

    The secondary outcomes are predictors of the one imputation model, so the primary's completed sets
    depend on them. One model that holds every analysis model's outcome is congenial with all of them; the
    extra predictors of the incomplete covariates keep the primary valid under missing at random (the
    inclusive strategy, Collins, Schafer and Kam 2001), whereas a model per analysis would give a patient
    one baseline in the primary table and another in the secondary one, at twice the cost. With no
    secondary outcome the predictors, and so the primary's imputations, are the primary's alone."""
    from stormcohort.stats import clone_censor_weight
    from stormcohort.stats.impute import impute  # the module's own name hides it on stormcohort.stats

    mi = cfg["missing_data"]
    m, g, seed, replicates = mi["imputations"], cfg["grace_days"], mi["seed"], mi["bootstrap_replicates"]
    missing = dataset[adjust].isna().any(axis=1)
    summary = {"imputed_patients": int(missing.sum()), "imputations": m, "seed": seed,
               "bootstrap_replicates": replicates, "predictors": []}
    if not missing.any():
        return [], [], summary | {
            "notes": ["no adjustment variable is missing: multiple imputation equals the complete-case analysis"]}
    base, predictors, notes = _imputation_base(dataset, adjust, g, death, outcomes, cfg["secondary_outcomes"])
    completed = impute(base, adjust, m, seed, predictors=predictors)
    primary_draws, secondary_draws = [], []
    # one completed set at a time, both analyses on it, its analysis frame dropped before the next
    for i, one in completed.groupby("imputation", sort=True):
        frame, names, _ = _analysis_frame(one.drop(columns="imputation"), adjust, cfg["reference_levels"], death)
        fit = clone_censor_weight(frame, g, names, days=days, replicates=replicates, seed=seed + int(i),
                                  conf_level=conf)
        primary_draws.append(_primary_draw(fit, death, days, len(frame)))
        secondary_draws.append(_secondary_draw(frame, names, cfg, outcomes, conf).assign(imputation=int(i)))
    summary |= {"predictors": predictors, "notes": [
        f"{int(missing.sum())} patient(s) with a missing adjustment variable imputed ({m} imputations)", *notes]}
    return (_pool_primary(primary_draws, death, m, len(dataset), int(dataset[death].sum()), conf),
            _pool_secondary(pd.concat(secondary_draws, ignore_index=True), m, conf), summary)


def _primary_draw(fit, death: str, days, n: int) -> dict:
    """One completed set's primary estimates on the pooling scale: ``{(measure, day): (estimate,
    variance)}``, ratios as logs. A risk's, risk difference's or risk ratio's variance is the variance of
    the set's bootstrap replicates (``replicate_risks``): each set's is rough with a few replicates, but
    Rubin's rules use their mean over the m sets, which rests on m x b replicates. The hazard ratio's is
    its robust se squared."""
    rows = {(r["measure"], r["day"]): r for r in _ccw_rows("primary", death, fit, days, n, 0)}
    boot = fit.replicate_risks  # used replicates x (IV, SC) x days
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = {"risk_iv": boot[:, 0], "risk_sc": boot[:, 1], "risk_difference": boot[:, 0] - boot[:, 1],
                      "risk_ratio": np.log(boot[:, 0] / boot[:, 1])}
    draw = {}
    for (measure, day), r in rows.items():
        est = float(r["estimate"])
        if measure in ("risk_ratio", "hazard_ratio"):  # pooled on the log scale
            est = np.log(est) if est > 0 else np.nan
        if measure == "hazard_ratio":
            var = float(fit.cox.iloc[0]["se"]) ** 2 if len(fit.cox) else np.nan
        elif pd.isna(day):  # the set's estimate is not estimable
            var = np.nan
        else:
            v = replicates[measure][:, list(days).index(day)]
            # a replicate without a death by the day in an arm has no log risk ratio; leaving it out would
            # leave out the most extreme replicates and shrink the variance, so the set has none
            var = float(np.var(v, ddof=1)) if len(v) >= 2 and np.isfinite(v).all() else np.nan
        draw[(measure, day)] = (est, var)
    return draw


def _pool_primary(draws: list[dict], death: str, m: int, n: int, events: int, conf: float) -> list[dict]:
    """Rubin's rules on the primary's draws: risks and their difference on their scale (risk limits
    clipped to [0, 1]), ratios on the log scale; Barnard-Rubin df with the complete-data df n - k (as
    mice's ``get.dfcom``: patients less the parameters, 2 risks or 1 log hazard ratio)."""
    from stormcohort.stats import pool_scalar

    out = []
    for key in draws[0]:
        est = np.array([d.get(key, (np.nan, np.nan))[0] for d in draws], dtype=float)
        var = np.array([d.get(key, (np.nan, np.nan))[1] for d in draws], dtype=float)
        ratio = key[0] in ("risk_ratio", "hazard_ratio")
        k = 1 if key[0] == "hazard_ratio" else 2
        pooled = pool_scalar(est, var, max(n, k + 1), k, conf_level=conf, exponentiate=ratio)
        if not pooled.estimable:
            why = pooled.reason
            if key[0] == "risk_ratio" and np.isfinite(est).all():
                why = (f"in {int(np.isnan(var).sum())} of {m} imputations a bootstrap replicate had no death by "
                       f"day {key[1]} in an arm (no log risk ratio, so no variance)")
            out.append(_row("multiple_imputation", death, key[0], day=key[1], n=n, events=events,
                            note=f"not estimable: {why}"))
            continue
        values = (pooled.ratio, pooled.ratio_lcl, pooled.ratio_ucl) if ratio else (pooled.qbar, pooled.lcl, pooled.ucl)
        if key[0] in ("risk_iv", "risk_sc"):  # a risk's normal-theory limits stay within [0, 1]
            values = tuple(np.clip(values, 0, 1))
        out.append(_row("multiple_imputation", death, key[0], *values, pooled.p if key[0] == "hazard_ratio" else np.nan,
                        day=key[1], n=n, events=events,
                        note=f"{m} imputations, Rubin's rules: fraction of missing information {pooled.fmi:.2f}"))
    return out


def _secondary_records(lm: pd.DataFrame, w: np.ndarray | None, outcomes: pd.DataFrame, secondary, conf: float,
                       no_weights: str = "no propensity weights") -> list[dict]:
    """Each secondary outcome among the landmark population ``lm`` with the outcome known, weighted by
    ``w``: the weighted risk per arm, the risk difference (weighted linear model) and the odds ratio
    (weighted logistic model), the last two with HC0 robust variance. A risk's variance is the same
    sandwich's: ``sum w^2 (y - risk)^2 / (sum w)^2``, the HC0 variance of the arm's mean in the saturated
    weighted linear model (the two arms' add up to the risk difference's).

    One record per (outcome, measure): ``outcome``, ``measure``, ``row`` (its effect row, analysis
    ``primary``; the risks without an interval, as always), ``q`` and ``u`` (the estimate on the pooling
    scale, log for the odds ratio, and its variance, the squared robust se) and ``reason`` (None unless not
    estimable). ``w`` None (no propensity weights): every estimate is not estimable for ``no_weights``,
    with its counts."""
    from stormcohort.stats import weighted_glm

    records = []
    for outcome in secondary:
        y = lm.assign(y=lm["patient_key"].map(outcomes[outcome]).astype("Float64"), w=np.nan if w is None else w)
        y = y[y["y"].notna()].reset_index(drop=True)
        y["y"] = y["y"].astype(float)
        k = int(y["y"].sum())
        for arm, measure in (("IV", "risk_iv"), ("SC", "risk_sc")):
            s = y[y["iv"].eq(1 if arm == "IV" else 0)]
            row = _row("primary", outcome, measure, n=len(s), events=int(s["y"].sum()))
            why = no_weights if w is None else None if len(s) else "no patient of the arm with the outcome known"
            if why:
                records.append({"row": row | {"note": f"not estimable: {why}"}, "q": np.nan, "u": np.nan,
                                "reason": why})
                continue
            yy, ww = s["y"].to_numpy(), s["w"].to_numpy()
            risk = float(np.average(yy, weights=ww))
            records.append({"row": row | {"estimate": risk}, "q": risk,
                            "u": float(np.sum(ww**2 * (yy - risk) ** 2) / ww.sum() ** 2), "reason": None})
        for measure, family in (("risk_difference", "gaussian"), ("odds_ratio", "binomial")):
            if w is None:
                records.append({"row": _row("primary", outcome, measure, n=len(y), events=k,
                                            note=f"not estimable: {no_weights}"),
                                "q": np.nan, "u": np.nan, "reason": no_weights})
                continue
            fit = weighted_glm(y, "y", "iv", "w", family=family, conf_level=conf)
            records.append({"row": _weighted_rows("primary", outcome, fit, measure, len(y), k),
                            "q": fit.estimate, "u": fit.se**2, "reason": fit.reason})
    return [r | {"outcome": r["row"]["outcome"], "measure": r["row"]["measure"]} for r in records]


def _secondary_draw(frame: pd.DataFrame, names, cfg: Mapping, outcomes: pd.DataFrame, conf: float) -> pd.DataFrame:
    """One completed set's secondary estimates, made as the complete-case ones: the landmark population at
    day G, the propensity of IV by day G on the adjustment set, the configured weights (stabilised
    inverse-probability for ATE, overlap for ATO), :func:`_secondary_records`. A frame of
    :data:`DRAW_COLUMNS`."""
    from stormcohort.stats import balancing_weights, propensity
    from stormcohort.stats.target_trial import landmark

    lm = landmark(frame, cfg["grace_days"])
    ps = propensity(lm, "iv", names)
    if ps.estimable:
        treat = ps.treat.astype(int)
        w = (balancing_weights(treat, ps.ps, "ATE", stabilize=True) if cfg["estimand"] == "ATE"
             else balancing_weights(treat, ps.ps, "ATO"))
        records = _secondary_records(lm.loc[ps.index].reset_index(drop=True), w, outcomes, cfg["secondary_outcomes"],
                                     conf)
    else:
        records = _secondary_records(lm, None, outcomes, cfg["secondary_outcomes"], conf,
                                     no_weights=f"no propensity weights: {ps.reason}")
    return pd.DataFrame([[r["outcome"], r["measure"], r["q"], r["u"], r["reason"], r["row"]["n"], r["row"]["events"]]
                         for r in records], columns=DRAW_COLUMNS)


def _pool_secondary(draws: pd.DataFrame, m: int, conf: float) -> list[dict]:
    """Rubin's rules per (outcome, measure) over the completed sets' draws (:func:`_secondary_draw`, with
    ``imputation``): the risks and the risk difference on their scale (risk limits clipped to [0, 1]), the
    odds ratio on the log scale, each set's variance its robust se squared, Barnard-Rubin df with the
    complete-data df n - k (the patients of the arm less 1 for a risk, of the model less 2 for the others).
    ``n`` and ``events`` are the first set's (the same in every set: the landmark population and the
    outcomes are complete). An estimate not estimable in some set: a row saying why and in how many. One
    the same in every set with zero variance (a risk of 0 or 1: no, or only, events in an arm) keeps its
    value, without an interval."""
    from stormcohort.stats import pool_scalar

    if draws.empty:
        return []
    keys = draws.drop_duplicates(["outcome", "measure"])[["outcome", "measure", "n", "events"]]
    index = pd.MultiIndex.from_frame(keys[["outcome", "measure"]])
    wide = draws.pivot(index="imputation", columns=["outcome", "measure"], values=["q", "u"])
    Q, U = (wide[v].reindex(columns=index).to_numpy(dtype=float) for v in ("q", "u"))
    ratio = keys["measure"].eq("odds_ratio").to_numpy()
    # complete-data df n - k (mice's get.dfcom): an arm's patients less its risk, a model's less its 2 terms
    k = np.where(keys["measure"].isin(["risk_iv", "risk_sc"]), 1, 2)
    n = keys["n"].to_numpy(dtype=float, na_value=np.inf)
    n = np.where(np.isfinite(n), np.maximum(n, k + 1), np.inf)
    est, p, fmi = np.full((3, len(keys)), np.nan), np.full(len(keys), np.nan), np.full(len(keys), np.nan)
    reason = np.full(len(keys), "", dtype=object)
    for is_ratio in (True, False):  # one vectorised pool per scale
        mask = ratio == is_ratio
        if mask.any():
            pooled = pool_scalar(Q[:, mask], U[:, mask], n[mask], k[mask], conf_level=conf, exponentiate=is_ratio)
            est[:, mask] = ((pooled.ratio, pooled.ratio_lcl, pooled.ratio_ucl) if is_ratio
                            else (pooled.qbar, pooled.lcl, pooled.ucl))
            p[mask], fmi[mask], reason[mask] = pooled.p, pooled.fmi, pooled.reason
    risk = keys["measure"].isin(["risk_iv", "risk_sc"]).to_numpy()
    est[:, risk] = np.clip(est[:, risk], 0, 1)  # a risk's normal-theory limits stay within [0, 1]
    fixed = np.isnan(est[0]) & np.isfinite(Q).all(axis=0) & (U == 0).all(axis=0) & (Q == Q[:1]).all(axis=0)
    est[0, fixed] = Q[0, fixed]
    failed = (draws[draws["reason"].notna()].groupby(["outcome", "measure"], sort=False)["reason"]
              .agg(["first", "size"]).reindex(index))

    def note(j: int) -> str:
        if failed["size"].iloc[j] > 0:
            return f"not estimable in {int(failed['size'].iloc[j])} of {m} imputations: {failed['first'].iloc[j]}"
        if fixed[j]:
            return f"{m} imputations: the same estimate in each, with zero variance (no interval)"
        if np.isnan(est[0, j]):
            return f"not estimable: {reason[j]}"
        return (f"{m} imputations, Rubin's rules: fraction of missing information {fmi[j]:.2f}"
                + ("" if risk[j] else "; HC0 robust variance in each"))

    return [_row("multiple_imputation", r.outcome, r.measure, *est[:, j], np.nan if risk[j] else p[j], n=r.n,
                 events=r.events, note=note(j)) for j, r in enumerate(keys.itertuples(index=False))]


def _patient_weights(lm: pd.DataFrame, weights: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """``patient_key, iv`` (IV by day G) and the ``iptw`` and ``overlap`` weights of the landmark population
    (empty without propensity weights): what the weighted secondary analyses of other rules read."""
    if "iptw" not in weights:
        return pd.DataFrame(columns=PATIENT_WEIGHT_COLUMNS)
    return pd.DataFrame({"patient_key": lm["patient_key"], "iv": lm["iv"].astype(int), "iptw": weights["iptw"],
                         "overlap": weights["overlap"]})[PATIENT_WEIGHT_COLUMNS]


def _tv_estimate(tv) -> list[float]:
    if not tv.estimable:
        return [np.nan] * 4
    row = tv.table.set_index("term").loc["iv"]
    return [row["hr"], row["hr_lcl"], row["hr_ucl"], row["p"]]


def _sensitivity(effect: pd.DataFrame, death: str, h: int) -> pd.DataFrame:
    """The primary outcome under each analysis: the hazard ratio, and the risk difference at day H
    where the analysis gives one (a view of effect.csv)."""
    e = effect[effect["outcome"].eq(death) & (effect["measure"].eq("hazard_ratio")
                                              | (effect["measure"].eq("risk_difference") & effect["day"].eq(h)))]
    return e.assign(label=e["analysis"].map(sensitivity_label))[SENSITIVITY_COLUMNS].reset_index(drop=True)


def _evalues(effect, death, h, outcomes) -> pd.DataFrame:
    main = effect[effect["analysis"].eq("primary")]
    rows = []
    risk_sc = main.loc[main["outcome"].eq(death) & main["measure"].eq("risk_sc") & main["day"].eq(h), "estimate"]
    for r in main.itertuples():
        if r.measure == "risk_ratio" and r.day == h or r.measure in ("hazard_ratio", "odds_ratio"):
            if r.outcome == death:
                rare = bool(len(risk_sc) and risk_sc.iloc[0] < RARE_BELOW)
            else:
                rare = bool(outcomes[r.outcome].astype("Float64").mean() < RARE_BELOW)
            rows.append(_evalue_row(r.outcome, r.measure, r.estimate, r.lcl, r.ucl, rare))
    return pd.DataFrame(rows, columns=EVALUE_COLUMNS)


def _model(cfg, primary, effect, evalues, overlap, weights_table, death, h, n, events, dataset, complete, frame, g,
           warnings) -> dict:
    main = effect[effect["analysis"].eq("primary") & effect["outcome"].eq(death)].set_index(["measure", "day"])

    def get(measure, day=pd.NA, what="estimate"):
        key = (measure, day)
        return float(main.loc[key, what]) if key in main.index else np.nan

    ev = evalues[evalues["outcome"].eq(death) & evalues["measure"].eq("risk_ratio")]
    iv_by = frame["iv_start"].le(g)
    propensity = weights_table[weights_table["weighting"].eq("iptw" if cfg["estimand"] == "ATE" else "overlap")]
    return {
        "analysis": "comparison",
        "settings": dict(cfg),
        "primary": {
            "outcome": death, "day": h, "estimable": bool(primary.estimable), "reason": primary.reason, "n": n,
            "events": events,
            # risk_iv, risk_iv_lcl, risk_iv_ucl, ..., risk_difference, rd_lcl, rd_ucl, ..., hazard_ratio, hr_lcl
            **{key: get(measure, h if measure != "hazard_ratio" else pd.NA, what)
               for measure, short in (("risk_iv", "risk_iv"), ("risk_sc", "risk_sc"), ("risk_difference", "rd"),
                                      ("risk_ratio", "rr"), ("hazard_ratio", "hr"))
               for key, what in ((measure, "estimate"), (f"{short}_lcl", "lcl"), (f"{short}_ucl", "ucl"))},
            "evalue_estimate": float(ev["evalue_estimate"].iloc[0]) if len(ev) else np.nan,
            "evalue_ci": float(ev["evalue_ci"].iloc[0]) if len(ev) else np.nan,
        },
        "bootstrap": {"replicates": cfg["bootstrap_replicates"], "seed": cfg["bootstrap_seed"],
                      "used": primary.bootstrap.to_dict(orient="records")},
        "counts": {
            "patients": len(dataset), "complete_cases": int(complete.sum()),
            "missing_by_variable": {c: int(dataset[c].isna().sum()) for c in cfg["adjust_for"]},
            "iv_by_grace": int(iv_by.sum()),
            "sc_through_grace": int((~iv_by & frame["time"].ge(g)).sum()),
            "died_before_grace": int((~iv_by & frame["time"].lt(g) & frame["event"].eq(1)).sum()),
        },
        "positivity": {
            "share_equipoise": float((overlap["n_equipoise"].sum() / overlap["n"].sum()) if overlap["n"].sum()
                                     else np.nan),
            **{f"ess_{grp.lower()}": float(propensity.loc[propensity["group"].eq(grp), "ess"].sum())
               for grp in ("IV", "SC")},
            "max_weight": float(propensity["max"].max()) if len(propensity) else np.nan,
        },
        "methods": METHODS,
        "warnings": warnings,
    }
