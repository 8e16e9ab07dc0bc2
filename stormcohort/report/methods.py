"""The methods section, written from the config the results were made with.

Every sentence that states a definition, window, covariate or setting takes it from the
resolved config (``config/config.yaml`` plus any ``--config``/``--configfile``), so changing
the config changes the text. The estimators' conventions are quoted from the analyses' own
model records (``models/*.json``: ``methods``), so the text cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stormcohort.canonical import LAB_WORSE
from stormcohort.labels import death_outcome, lab_label, outcome_label, primary_outcome, var_label
from stormcohort.report.sections import lower_first

DIAGNOSES = {"fhlh": "familial HLH", "shlh": "secondary HLH", "mas": "MAS", "other": "other diagnoses"}


def join_and(items: Sequence[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def days_range(window: Sequence) -> str:
    lo, hi = window
    return f"days {lo:g} to {hi:g}"


def covariates(adjust_for: Sequence[str], reference_levels: Mapping) -> str:
    """``age group (reference adult), intensive care and trigger (reference infection)``."""
    parts = []
    for c in adjust_for:
        ref = (reference_levels or {}).get(c)
        parts.append(lower_first(var_label(c)) + (f" (reference {ref})" if ref is not None else ""))
    return join_and(parts) if parts else "no covariate"


def pct(x: float) -> str:
    return f"{100 * x:g}%"


SAME_DAY = {
    "before_dose": "a sample on the index date counted only when its recorded time was before the first dose's "
                   "time (a sample or dose recorded with a date only was not known to come first, so did not count)",
    "always": "any sample on the index date counted, even one taken after the first dose",
    "never": "no sample on the index date counted",
}


def _worse(direction: str) -> str:
    return join_and([lower_first(lab_label(t)) for t, d in LAB_WORSE.items() if d == direction])


PICK = {
    "nearest": "the sample nearest the first dose (the latest)",
    "worst": f"the worst sample (the highest {_worse('high')}; the lowest {_worse('low')}; ties to the earlier)",
}


def baseline_rule(b: Mapping) -> str:
    """The baseline-laboratory rule of config ``cohort.baseline``, and what it cannot cover."""
    return (
        f"Baseline laboratory values, used for the sHLH/MAS definition, the scores, Table 1 and the hepatotoxicity "
        f"grades: for each test, "
        f"{PICK[b['pick']]} of the samples taken from {b['window_days']} days before the index date and before "
        f"the first anakinra dose; {SAME_DAY[b['same_day']]} (config cohort.baseline: window_days = "
        f"{b['window_days']}, pick = {b['pick']}, same_day = {b['same_day']}). A result reported as below or "
        f"above a limit (<x, >x) met a score's cut-off only when every value it stands for does. Episodes "
        f"without anakinra, scored for the participant flow, took samples up to the admission date inclusive. "
        f"The peak temperature used by the scores is recorded once per admission in every centre's extract, "
        f"so it could not be restricted to before the first dose and may follow the first dose.")


def hepatotoxicity_text(hp: Mapping, uln: str) -> str:
    """The hepatotoxicity outcome: CTCAE v5.0 grades against each patient's baseline (config
    ``analyses.hepatotoxicity``; ``uln``: the centres' upper limits of normal, as text)."""
    tests = join_and([t.upper() for t in hp["tests"]])
    return (
        f"Hepatotoxicity: the worst CTCAE v5.0 grade of {tests} increased on {days_range(hp['window_days'])}, each "
        f"test graded against the patient's baseline of it (the sample the baseline rule picks): when the baseline "
        f"was at or below the upper limit of normal (ULN) of the centre that measured it ({uln}), grade 1 above the "
        f"ULN to 3.0\u00d7ULN, 2 above 3.0 to 5.0\u00d7, 3 above 5.0 to 20.0\u00d7 and 4 above 20.0\u00d7 the ULN "
        f"of the sample's centre; when it was above the ULN, grade 1 from 1.5 to 3.0\u00d7 the baseline, 2 above "
        f"3.0 to 5.0\u00d7, 3 above 5.0 to 20.0\u00d7 and 4 above 20.0\u00d7. A missing baseline was graded as "
        f"a normal one. A result reported as below or above a limit took the highest grade it could stand for "
        f"(above the analyser's range: grade 4; a baseline <x as normal, >x as x). Patients without a sample in "
        f"the window are not evaluable; the number of samples per patient is reported beside the grades, since "
        f"more samples give more chances of a higher grade.")


def multiplicity_text(config: Mapping) -> str:
    """Multiplicity, said once (config ``analyses.comparison``: ``primary_outcome``,
    ``secondary_outcomes``): the primary outcome, the secondary family and its Holm adjustment, and
    what is exploratory, as ``tables/forest.csv``'s ``family`` and ``p_holm`` columns hold them."""
    c, a, labels = config["cohort"], config["analyses"], config.get("labels")
    cmp, bi = a["comparison"], a["binary"]
    primary = lower_first(outcome_label(primary_outcome(cmp["primary_outcome"], c["follow_up_days"]), labels))
    secondary = join_and([lower_first(outcome_label(o, labels)) for o in cmp["secondary_outcomes"]])
    family = (
        f"In the outcome tables and the forest plot, the secondary family is one estimate per secondary outcome "
        f"(config analyses.comparison.secondary_outcomes: {secondary}): its Firth odds ratio IV vs SC adjusted "
        f"for {covariates(bi['adjust_for'], bi['reference_levels'])}. Their p values are Holm-adjusted within the "
        f"family (step-down, as R p.adjust(p, \"holm\"), over the estimates that have a p) and shown beside the "
        f"raw ones. "
        if secondary else "No secondary outcome is configured (analyses.comparison.secondary_outcomes). ")
    return (
        f"One primary outcome, {primary} (config analyses.comparison.primary_outcome = {cmp['primary_outcome']}), "
        f"whose primary estimate is the target trial's. {family}Every other estimate is exploratory, its p value "
        f"unadjusted for multiplicity and to be read as hypothesis-generating: the unadjusted odds ratios and "
        f"those of the other binary outcomes, the Cox hazard ratios of {primary} (between the route groups of "
        f"cohort.exposure: the descriptive counterpart of the primary outcome, not its primary estimate), and the "
        f"competing-risk, trajectory and adverse event rate comparisons.")


ESTIMANDS = {
    "ATE": "stabilised inverse-probability-of-treatment weights (IPTW; the average effect in the whole cohort)",
    "ATO": "overlap weights (the average effect among patients in clinical equipoise)",
}


def target_trial(model: Mapping, settings: Mapping, horizon: int, labels: Mapping | None = None) -> str:
    """The target-trial emulation's paragraph: strategies, weights, risks and intervals from the
    settings the comparison rule ran with (``models/comparison.json``: ``settings``, else the config's
    ``analyses.comparison``), the estimators as the rule's own ``methods`` text states them."""
    s = {**settings, **(model.get("settings") or {})}
    if not s:
        return "Not run."
    g = int(s.get("grace_days", 0))
    conf = f"{100 * float(s.get('conf_level', 0.95)):g}%"
    strategies = (f"IV anakinra started by day {g} of the first dose, against no IV through day {g} (a grace period "
                  f"of {g} day(s), config analyses.comparison.grace_days)" if g else
                  "a first dose given IV, against a first dose given SC (grace_days = 0)")
    days = join_and([f"{d:g}" for d in sorted({*s.get("risk_days", []), horizon})])
    secondary = join_and([lower_first(outcome_label(o, labels)) for o in s.get("secondary_outcomes", [])]) or "none"
    lo, hi = (list(s.get("truncate_percentiles") or []) + [None, None])[:2]
    boot = model.get("bootstrap") or {}
    failed = f"; {boot['failed']} replicate(s) failed" if boot.get("failed") else ""
    quoted = "; ".join(str(t).rstrip(".") for t in (model.get("methods") or {}).values() if t)
    mi, imputed = s.get("missing_data") or {}, (model.get("imputation") or {}).get("imputed_patients")
    if imputed == 0:
        missing = "complete cases: no adjustment variable was missing, so nothing was imputed"
    elif mi:  # the plan (settings), or what ran (some value missing)
        which = ("the pooled estimates primary and the complete cases beside them"
                 if mi.get("primary", "multiple_imputation") == "multiple_imputation" else
                 "the complete cases primary and the pooled estimates beside them")
        missing = (f"missing adjustment variables multiply imputed once for the primary and the secondary outcomes "
                   f"({mi.get('imputations')} imputations by chained equations, seed {mi.get('seed')}; "
                   f"{mi.get('bootstrap_replicates')} bootstrap replicates of the primary in each, whose variance is "
                   f"the set's), pooled by Rubin's rules with Barnard-Rubin degrees of freedom, {which}")
    else:
        missing = "complete cases"
    return (
        f"The IV-vs-SC comparison emulates a target trial (protocol in the comparative-effectiveness section) with "
        f"time zero at the first anakinra dose. Strategies: {strategies}. Each patient was cloned into both "
        f"strategies at time zero; a clone was censored when the patient's record deviated from its strategy, and "
        f"inverse-probability-of-censoring weights corrected for that censoring. Confounding: "
        f"{ESTIMANDS.get(s.get('estimand'), s.get('estimand', ''))}, from a propensity model of "
        f"{covariates(s.get('adjust_for', []), s.get('reference_levels') or {})}, all measured before the first "
        f"dose; {missing}. Risks of death at days {days} under each strategy (weighted Kaplan-Meier), their "
        f"difference and ratio, with {conf} percentile bootstrap intervals over patients "
        f"({s.get('bootstrap_replicates')} replicates, seed {s.get('bootstrap_seed')}{failed}); a weighted Cox "
        f"hazard ratio for reference. Secondary outcomes: {secondary}. Balance: standardised mean differences "
        f"(raw differences for binary covariates) before and after weighting, 0.1 taken as balanced; overlap: the "
        f"preference score (Walker et al. 2013), 0.3 to 0.7 taken as equipoise; E-values (VanderWeele and Ding "
        f"2017) for unmeasured confounding. Sensitivity analyses as listed in their table"
        + (f"; weights truncated at percentiles {lo:g} and {hi:g} in one of them" if lo is not None and hi is not None
           else "") + "." + (f" Estimators, as the analysis states them: {quoted}." if quoted else ""))


def methods(config: Mapping, models: Mapping[str, Mapping], delivery: Mapping) -> list[dict]:
    """Paragraphs ``{"title", "text"}`` in STROBE order (design to statistical methods)."""
    c, a = config["cohort"], config["analyses"]
    d = c["shlh_definition"]
    sv, cr, bi, hp, tr, sa = (a[k] for k in ("survival", "competing_risks", "binary", "hepatotoxicity",
                                             "trajectories", "safety"))
    conf = lambda x: f"{100 * x:g}%"  # noqa: E731
    centres = config["centres"]
    synthetic = " The delivery is synthetic: made by the project's generator, it describes no real patient." \
        if delivery.get("synthetic") else ""
    out = [{"title": "Design and setting", "text": (
        f"Retrospective cohort study of patients with secondary haemophagocytic lymphohistiocytosis (sHLH) or "
        f"macrophage activation syndrome (MAS) treated with anakinra at {len(centres)} centres "
        f"({join_and(centres)}), from the registry extracts of {delivery.get('extract_date')} "
        f"(delivery folder {config['delivery']}).{synthetic} Each centre's export was read through its centre "
        f"map into canonical tables in canonical units; every excluded row or value is listed with its reason in "
        f"the centre's exclusions ledger. People were linked across centres by a keyed hash of the NHS number "
        f"(or local identifier); no direct identifier was kept.")}]
    mas = (f", or the 2016 EULAR/ACR/PRINTO MAS classification for episodes whose trigger matches "
           f"\u201c{d['mas_trigger_pattern']}\u201d (sJIA)") if d["mas2016"] else ""
    same_centre = "; so did consecutive admissions at the same centre" if c["transfer_same_centre"] else ""
    prevalent = ("A person given anakinra in an earlier episode (before the study window or excluded for "
                 "another reason) was a prevalent user, " + ("excluded." if c["exclude_prevalent_users"] else
                 "kept in the cohort (config cohort.exclude_prevalent_users = false)."))
    excluded = join_and([DIAGNOSES.get(x, x) for x in c["exclude_diagnoses"]]) or "none"
    out.append({"title": "Participants", "text": (
        f"Admissions starting from {c['study_window']['start']} to {c['study_window']['end']} inclusive. A "
        f"person's admission at another centre starting within {c['transfer_gap_days']} day(s) of the previous "
        f"discharge (or, when that discharge date was missing, within {c['transfer_without_discharge_days']} "
        f"day(s) of the previous admission) continued the same episode (inter-centre transfer){same_centre}. "
        f"An episode was sHLH/MAS when at least "
        f"{d['hlh2004_min_criteria']} of the 8 HLH-2004 criteria were met, or the HScore was at least "
        f"{d['hscore_min']:g}{mas}. Excluded diagnoses: {excluded}. Patients had to receive anakinra during the "
        f"episode; each person's first qualifying episode was analysed (later ones are readmissions). "
        f"{prevalent} A "
        f"patient's centre is the treating centre, where anakinra was started (after a transfer it may differ "
        f"from the admitting centre, which the dataset keeps as admitting_centre). Children "
        f"are patients younger than {c['age_groups']['child_below']:g} years.")})
    exposure = ("IV if any intravenous dose was given during the episode, otherwise SC"
                if c["exposure"] == "any_iv" else "the route of the first anakinra dose")
    simultaneous = "IV" if c["simultaneous_routes"] == "iv_first" else "SC"
    out.append({"title": "Exposure, baseline and follow-up", "text": (
        f"Route group: {exposure} (config cohort.exposure = {c['exposure']}); SC is the reference in every "
        f"comparison. Day 0 (the index date) is the first anakinra dose; when IV and SC regimens start at the "
        f"same time, the first dose's route is taken to be {simultaneous} (config cohort.simultaneous_routes = "
        f"{c['simultaneous_routes']}). {baseline_rule(c['baseline'])} Follow-up "
        f"runs from the index date to death, last contact, day {c['follow_up_days']} or the extract date, "
        f"whichever comes first.")})
    resp = bi["response"]
    falls = join_and([f"{lab_label(t)} by at least {pct(v)}" for t, v in resp["lab_falls"].items()])
    uln = "; ".join(f"{centre}: " + ", ".join(f"{t.upper()} {v:g} U/L" for t, v in tests.items())
                    for centre, tests in hp["uln"].items())
    multiples = join_and([f"{m:g}\u00d7" for m in hp["multiples"]])
    out.append({"title": "Outcomes", "text": (
        f"Death within {c['follow_up_days']} days of the index date (time to death, censored at the end of "
        f"follow-up); death by day 30. A date of death is a death whatever the outcome field says; a death "
        f"recorded without a date is censored at the last date the patient was known alive in time-to-event "
        f"analyses and counts as a death by day 30 unless the patient was known alive on day 30 (each is listed "
        f"under data conflicts). Fever resolution, with death before resolution as a competing event; a patient "
        f"whose fever resolved before the index date is not at risk, and one alive without a resolution date is "
        f"not evaluable (both excluded and counted, neither a failure to respond). "
        f"Response at day {resp['target_day']:g}: afebrile by day {resp['afebrile_by_day']:g} and, in the sample "
        f"nearest day {resp['target_day']:g} within {days_range(resp['window_days'])}, a fall from baseline of "
        f"{falls}; not evaluable when a component is unknown and none failed. Adverse event of CTCAE grade "
        f"\u2265{bi['ae_min_grade']} on {days_range(bi['ae_window_days'])}. {hepatotoxicity_text(hp, uln)} "
        f"In the binary outcomes, the largest "
        f"{join_and([t.upper() for t in hp['tests']])} on {days_range(hp['window_days'])} above {multiples} the "
        f"ULN of the centre that measured it, whatever the baseline. Laboratory trajectories of "
        f"{join_and([lab_label(t) for t in tr['tests']])} on {days_range(tr['days'])}. Adverse events "
        f"by term and grade on {days_range(sa['window_days'])}.")})
    m_sv = models.get("survival", {}).get("methods", {})
    m_cr = models.get("competing_risks", {}).get("methods", {})
    m_bi = models.get("binary_outcomes", {}).get("methods", {})
    m_tr = models.get("trajectories", {}).get("method", "")
    m_sa = models.get("safety", {}).get("methods", {})
    route_terms = join_and([f"{t.replace('_', ' ')} on {r} days" for t, r in sa["route_specific_terms"].items()])
    days = lambda xs: join_and([f"{x:g}" for x in xs])  # noqa: E731
    cmp = a.get("comparison", {})
    cmp_g = cmp.get("grace_days", 0)
    cmp_w = ("overlap weights (ATO)" if cmp.get("estimand") == "ATO"
             else "stabilised inverse-probability-of-treatment weights (ATE)")
    out += [
        {"title": "Descriptive statistics", "text": (
            "Median [IQR] or n (%) by route and overall, with missing counts and standardised mean differences "
            "(SMD; Yang & Dalton for categorical variables). Complete cases throughout; no imputation.")},
        {"title": "Target trial emulation (primary analysis)", "text": target_trial(
            models.get("comparison", {}), a.get("comparison", {}), c["follow_up_days"], config.get("labels"))},
        {"title": "Survival", "text": (
            f"{m_sv.get('kaplan_meier', 'Kaplan-Meier')}; {conf(sv['conf_level'])} intervals on the log scale "
            f"(log-transformed); numbers at risk on days {days(sv['risk_table_days'])}; "
            f"{m_sv.get('logrank', 'log-rank test')}. Cox models: {m_sv.get('cox', 'Cox proportional hazards')}; "
            f"unadjusted, and adjusted for {covariates(sv['adjust_for'], sv['reference_levels'])}. Models with "
            f"fewer than {sv['epv_warn_below']:g} events per parameter are flagged. Proportional hazards: "
            f"{m_sv.get('ph_test', 'cox.zph')}; flagged at p < {sv['ph_alpha']:g}.")},
        {"title": "Competing risks", "text": (
            f"{m_cr.get('estimator', 'Aalen-Johansen')}. Variance: {m_cr.get('variance', 'not stated')}; "
            f"{conf(cr['conf_level'])} intervals, {m_cr.get('intervals', '')}; reported on days "
            f"{days(cr['summary_days'])}. IV vs SC (reference SC, unadjusted), for fever resolution and for death "
            f"before resolution: {m_cr.get('group_test', 'no between-group test')}; "
            f"{m_cr.get('fine_gray', 'no Fine-Gray model')}; "
            f"{m_cr.get('cause_specific_cox', 'no cause-specific model')}; {conf(cr['conf_level'])} Wald "
            f"intervals for both hazard ratios. Both models were also fitted weighted, comparing IV by day "
            f"{cmp_g:g} with no IV by then among patients followed at day {cmp_g:g} (the target trial's exposure "
            f"and population, not the route groups; fever time still from the first dose), with the target "
            f"trial's {cmp_w} as case weights and a robust (sandwich) variance.")},
        {"title": "Binary outcomes", "text": (
            f"{m_bi.get('firth', 'Firth logistic regression')}; {conf(bi['conf_level'])} intervals; unadjusted, and "
            f"adjusted for {covariates(bi['adjust_for'], bi['reference_levels'])}. Alongside: "
            f"{m_bi.get('ml', 'ML logistic regression')}.")},
        {"title": "Trajectories", "text": (
            f"{m_tr}; offsets added before the log: "
            f"{', '.join(f'{lab_label(t)} {v:g}' for t, v in tr['log_offset'].items())}; "
            f"{conf(tr['conf_level'])} intervals. The models use every available sample and assume that the "
            f"missing ones, including those a death cut short, are missing at random given the observed values "
            f"(death is not modelled jointly).")},
        {"title": "Safety", "text": (
            f"Exposure is patient-days on anakinra (each regimen's calendar days, extended by "
            f"{sa['event_lag_days']} day(s), overlaps counted once). Rates per {sa['per']:g} patient-days: "
            f"{m_sa.get('rate', 'exact Poisson CIs')} ({conf(sa['conf_level'])}); IV vs SC rate ratios: "
            f"{m_sa.get('rate_ratio', 'exact conditional method')}; and, since one patient may have several "
            f"events, with an interval that accounts for it: "
            f"{m_sa.get('rate_ratio_clustered', 'Poisson regression with a patient-clustered variance')}. "
            f"Route-specific terms are counted on that "
            f"route's days only ({route_terms}); severe means grade \u2265{sa['severe_grade']}. Severe adverse "
            f"events by patient: {m_sa.get('first_severe_event', 'time to the first severe event, death competing')}"
            f", rather than patients with an event over all patients, which counts a patient followed briefly as "
            f"event-free for the whole window. Seed of any "
            f"randomness: {config['seed']} (these estimators use none).")},
    ]
    forest = a["forest"]
    labels = config.get("labels")
    rate_outcomes = join_and([outcome_label(o, labels) for o in forest["rate_outcomes"]]) or "every term"
    out.append({"title": "Summary of estimates", "text": (
        "The forest plot gathers every IV-vs-SC estimate: the Cox hazard ratio "
        f"({outcome_label(death_outcome(c['follow_up_days']), labels)}), "
        f"the Firth odds ratios, and the rate ratios of {rate_outcomes}, unadjusted and adjusted side by side, "
        f"each marked secondary or exploratory (below), with the Holm-adjusted p values of the secondary family "
        f"beside the raw ones.")})
    out.append({"title": "Multiplicity", "text": multiplicity_text(config)})
    return out
