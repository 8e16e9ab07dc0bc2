"""The comparative-effectiveness section of the report (target-trial emulation), from fixture tables
in the comparison rule's contract (tests/comparison_fixtures.py): the primary estimate in words,
the display tables, disclosure in the shareable report, the not-estimable path, the section's place
in the report, its limitations and methods. Fast and offline: no workflow run."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from stormcohort.disclosure import Policy
from stormcohort.report import comparison as C
from stormcohort.report.fmt import Formatter
from stormcohort.report.inputs import FIGURES, MODELS, TABLES, report_inputs
from stormcohort.report.limitations import comparison_limitations, limitations
from stormcohort.report.methods import methods, target_trial
from stormcohort.report.render import SECTIONS, environment
from stormcohort.report.strobe import strobe_map
from tests import comparison_fixtures as X
from tests.test_disclosure import offenders
from tests.test_report import CONFIG, DELIVERY

MINUS = "\u2212"
SHARE = Policy(min_count=10, round_to=5)


def data(model=None, **tables) -> dict:
    d = {"protocol": X.PROTOCOL, "balance": X.BALANCE, "weights": X.WEIGHTS, "overlap": X.OVERLAP,
         "effect": X.EFFECT, "sensitivity": X.SENSITIVITY, "evalues": X.EVALUES, "missingness": X.MISSINGNESS,
         "models": {"comparison": X.MODEL if model is None else model}}
    return {**d, **tables}


def empty_data() -> dict:
    return data(X.not_estimable_model(), **{k: X.empty(v) for k, v in {
        "protocol": X.PROTOCOL, "balance": X.BALANCE, "weights": X.WEIGHTS, "overlap": X.OVERLAP,
        "effect": X.EFFECT, "sensitivity": X.SENSITIVITY, "evalues": X.EVALUES,
        "missingness": X.MISSINGNESS}.items()})


def render_section(d: dict, f: Formatter, share: bool) -> str:
    figures = {k: "data:image/png;base64,AAAA" for k in FIGURES}
    return environment().get_template("comparison.html.j2").render(
        sections=SECTIONS, share=share, figures=figures, comparison=C.comparison_section(d, f))


# --------------------------------------------------------------------------- the primary estimate

def test_the_primary_estimate_reads_as_a_clinician_reads_it():
    p = C.primary_estimate(X.MODEL, X.EFFECT, X.EVALUES, Formatter())
    assert p["estimable"] and not p["withheld"]
    assert p["text"] == (
        "If every patient had started IV anakinra by day 2 (day 0: the first dose), the estimated risk of death by "
        "day 90 would have been 25% (95% CI 12% to 40%), against 30% (95% CI 15% to 46%) had every patient stayed on "
        f"SC anakinra through day 2: a difference of {MINUS}5.0 percentage points ({MINUS}20.0 to 10.0), a risk ratio "
        "of 0.83 (0.40\u20131.70); E-value of the risk ratio 1.70 (confidence limit 1.00).")
    assert p["reference"] == "For reference, the weighted Cox hazard ratio IV vs SC: 0.81 (0.35\u20131.88)."
    assert p["key"] == f"{MINUS}5.0 ({MINUS}20.0 to 10.0)"


def test_the_primary_estimate_follows_the_grace_period_and_the_e_value_table():
    m = copy.deepcopy(X.MODEL)
    m["settings"]["grace_days"] = 0
    m["primary"]["evalue_estimate"] = None  # then from tables/evalues.csv
    text = C.primary_estimate(m, X.EFFECT, X.EVALUES, Formatter())["text"]
    assert text.startswith("If every patient had started anakinra intravenously,")
    assert "had every patient started anakinra subcutaneously" in text and "E-value of the risk ratio 1.70" in text


def test_not_estimable_gives_the_reason_and_every_table_survives_empty_inputs():
    for f in (Formatter(), Formatter(SHARE)):
        c = C.comparison_section(empty_data(), f)
        assert not c["primary"]["estimable"] and c["primary"]["key"] == "not estimable"
        assert c["positivity"] == "Not assessed: the propensity model was not estimable."
        assert all(t.rows == [] and any("not estimable" in n for n in t.notes)
                   for k, t in c["tables"].items() if k != "protocol")
        html = render_section(empty_data(), f, share=f.policy.active)
        assert "not estimable" in html
    assert "no patient started IV by day 2" in C.comparison_section(empty_data(), Formatter())["primary"]["text"]


# --------------------------------------------------------------------------- tables

def test_tables_format_the_contract_and_compute_nothing():
    c = C.comparison_section(data(), Formatter())["tables"]
    assert c["protocol"].columns == ["Component", "Target trial", "Emulation here"] and len(c["protocol"].rows) == 8
    bal = c["balance"]
    assert bal.rows[0][0] == "Inverse probability of treatment (IPTW)" and 0 in bal.header_rows
    assert bal.rows[1] == ["\u2003Age group: child", "proportion", "11%", "25%", f"{MINUS}0.14 *", "20%", "21%",
                           f"{MINUS}0.01", "\u2014", "\u2014"]
    assert bal.rows[2][1:5] == ["SMD", "12,000", "7,000", "0.52 *"] and bal.rows[2][-2:] == ["1.80", "1.10"]
    assert c["weights"].rows[0] == ["Inverse probability of treatment (IPTW)", "IV", "18", "12.3", "1.02", "0.41",
                                    "11.70", "1"]
    assert c["overlap"].rows[0][-1] == "9 of 18 (50%)" and c["overlap"].rows[1][-1] == "12 of 28 (43%)"
    eff = c["effect"]
    assert eff.rows[0][0] == "Death by day 90 (primary outcome)"
    assert ["\u2003Risk, IV strategy", "90", "25% (12%\u201340%)", "", "46", "4"] in eff.rows
    assert [f"\u2003Risk difference IV {MINUS} SC, percentage points", "90", f"{MINUS}5.0 ({MINUS}20.0 to 10.0)",
            "0.520", "46", "13"] in eff.rows
    assert "3 not evaluable" in eff.notes
    sens = c["sensitivity"]
    assert sens.rows[0][0] == "Primary (clone-censor-weight)" and sens.header_rows == {0, 1}
    assert ["Leaving out centre LDN", "Hazard ratio IV vs SC", "0.90 (0.30\u20132.50)", "30", "8"] in sens.rows
    assert c["evalues"].rows[0] == ["Death by day 90", "Risk ratio IV / SC", "0.83 (0.40\u20131.70)", "1.70", "1.00"]


def test_the_primary_analysis_comes_first_whatever_the_table_order():
    sens = C.sensitivity_table(X.SENSITIVITY.iloc[::-1], Formatter())
    assert [r[0] for r in sens.rows[:2]] == ["Primary (clone-censor-weight)"] * 2
    eff = C.effect_table(X.EFFECT.iloc[::-1], Formatter(), "death_90d")
    assert eff.rows[0][0].startswith("Death by day 90") and eff.rows[1][:2] == ["\u2003Risk, IV strategy", "30"]


def test_arm_events_are_the_risks_rows_at_the_day():
    assert C.arm_events(X.EFFECT, "primary", "death_90d", 90) == [4, 9]
    assert C.arm_events(X.EFFECT, "primary", "death_90d", 30.0) == [3, 6]
    assert C.arm_events(X.EFFECT, "primary", "death_90d") == [4, 9]  # the last day
    assert C.arm_events(X.EFFECT, "primary", "response_day7") == [21]  # no risk per arm: the outcome's count


# --------------------------------------------------------------------------- disclosure

def test_the_shareable_section_discloses_every_count_and_withholds_what_rests_on_small_ones():
    f = Formatter(SHARE)
    c = C.comparison_section(data(), f)
    assert c["primary"]["withheld"] and c["primary"]["key"] == "not shown (<10 events)"
    assert "25%" not in c["primary"]["text"]
    assert "undisclosed data" in c["share_note"]
    t = c["tables"]
    assert t["balance"].columns == ["Covariate", "Difference in", "Before weighting", "After weighting", "Before",
                                    "After"]  # no group means: an unadjusted proportion is a count over n
    assert t["weights"].rows[0][2:4] == ["20", "10"] and t["weights"].rows[0][-1] == "<10"  # n, ESS, weights > 10
    assert t["overlap"].rows[0][-1] == "<10 of 20"
    assert all("not shown" in r[2] for r in t["effect"].rows[1:8])
    assert [r for r in t["sensitivity"].rows if r[0] == "Leaving out centre LDN"][0][2] == "not shown (<10 events)"
    # the primary analysis rests on the arms' events in tables/effect.csv, not only on its total
    assert all(r[2].startswith("not shown") for r in t["sensitivity"].rows if r[0].startswith("Primary"))
    assert t["evalues"].rows[0][2:] == ["not shown (<10 events)"] * 3
    assert "1 weight above 10" not in c["warnings"]  # free text quoting a count
    assert c["counts"].startswith("Of 45 patients in the cohort, 45 had")


def test_disclosure_scanner_finds_nothing_in_the_shareable_section_and_counts_in_the_full_one():
    shareable = render_section(data(), Formatter(SHARE), share=True)
    assert offenders(shareable) == []
    assert "data:image/png" not in shareable and shareable.count('class="withheld"') == 5
    full = render_section(data(), Formatter(), share=False)
    assert len(offenders(full)) > 10 and full.count("data:image/png") == 4
    # with large counts the estimates are shown, still with the note that they rest on undisclosed data
    big = X.EFFECT.assign(events=X.EFFECT["events"] * 10, n=X.EFFECT["n"] * 10)
    shown = C.comparison_section(data(effect=big, sensitivity=X.SENSITIVITY.assign(events=100)), Formatter(SHARE))
    assert shown["primary"]["text"].startswith("If every patient") and shown["share_note"]
    assert offenders(render_section(data(effect=big), Formatter(SHARE), share=True)) == []


# --------------------------------------------------------------------------- the report around it

def test_the_section_comes_before_the_descriptive_outcomes_and_answers_strobe_items():
    ids = list(SECTIONS)
    assert ids.index("baseline") < ids.index("comparison") < ids.index("outcomes")
    source = (environment().loader.get_source(environment(), "report.html.j2")[0])
    assert source.index('{% include "comparison.html.j2" %}') < source.index('<section id="outcomes">')
    assert "key.primary.value" in source and "key.hr.unadjusted" not in source
    rows = {r["item"]: r for r in strobe_map(SECTIONS)}
    assert rows["12e"]["section"] == "comparison" and rows["12e"]["title"] == SECTIONS["comparison"]


def test_the_report_reads_the_comparison_outputs():
    inputs = report_inputs(["LDN"])
    assert {k: TABLES[k] for k in ("effect", "sensitivity", "evalues")} == {
        "effect": ("comparison", "effect"), "sensitivity": ("comparison", "sensitivity"),
        "evalues": ("comparison", "evalues")}
    assert inputs["model_comparison"] == "models/comparison.json" and "comparison" in MODELS
    assert inputs["figure_love"] == "figures/love.png" and inputs["figure_overlap"] == "figures/overlap.png"
    assert inputs["figure_comparison_survival"] == "figures/comparison_survival.png"
    assert inputs["figure_sensitivity_forest"] == "figures/sensitivity_forest.png"


def test_descriptive_note_names_immortal_time_for_ever_iv_groups():
    assert "immortal time" in C.descriptive_note(CONFIG)
    first = copy.deepcopy(CONFIG)
    first["cohort"]["exposure"] = "first_dose"
    assert "immortal" not in C.descriptive_note(first)


# --------------------------------------------------------------------------- limitations and methods

def _args(config=CONFIG, model=None, overlap=X.OVERLAP, f=None, withheld=False) -> dict:
    """limitations()'s arguments: no descriptive result (empty tables) and the comparison's fixtures."""
    return dict(
        config=config, table1=pd.DataFrame(columns=["variable", "kind", "level", "group", "n", "count", "missing",
                                                    "smd"]),
        survival_model={}, logistic=pd.DataFrame(columns=["outcome", "model", "method", "term"]),
        binary_counts=pd.DataFrame(columns=["outcome", "group", "n", "events", "not_evaluable"]),
        ph=pd.DataFrame(columns=["model", "term", "p"]),
        forest=pd.DataFrame(columns=["outcome", "measure", "model", "lcl", "ucl", "plotted", "p", "family", "p_holm"]),
        competing_model={}, severity=[], cohort={"n": 46, "iv": 18, "sc": 28}, synthetic=True, f=f or Formatter(),
        comparison_model=X.MODEL if model is None else model, overlap=overlap, primary_withheld=withheld)


def _limitations(**kw):
    return limitations(**_args(**kw))


def test_limitations_are_recomputed_from_the_comparison_model():
    items = {i["title"]: i for i in _limitations()}
    imm = items["Immortal time"]
    assert imm["level"] == "warn" and "clone-censor-weight" in imm["text"]
    assert "By day 2, 16 patients had started IV, 27 had not, and 2 patients died before day 2" in imm["text"]
    assert "descriptive comparisons" in imm["text"] and "immortal time" in imm["text"]
    res = items["Residual confounding"]
    assert "E-value 1.70 (confidence limit 1.00)" in res["text"] and res["level"] == "warn"
    assert "age group (reference adult), ferritin, ug/L and CNS involvement" in res["text"]
    pos = items["Positivity (overlap of the routes)"]
    assert "IV 9 of 18 (50%) and SC 12 of 28 (43%); 46% overall" in pos["text"]
    assert "IV 12.3, SC 22.5" in pos["text"] and "largest weight 11.70" in pos["text"]
    assert "Fewer than 50% of patients are in equipoise" in pos["text"] and "percentiles 1 and 99" in pos["text"]
    conf = items["Confounding by indication"]["text"]
    assert "The IV-vs-SC estimates are associations" not in conf and "descriptive IV-vs-SC estimates" in conf
    assert "43 of 46 patients with every adjustment variable" in items["Missing data"]["text"]


def test_limitations_without_the_comparison_keep_the_old_wording_and_follow_the_exposure():
    old = {i["title"]: i for i in limitations(**{**_args(), "comparison_model": None})}
    assert "The IV-vs-SC estimates are associations and are likely confounded" in old[
        "Confounding by indication"]["text"] and "Immortal time" not in old
    first = copy.deepcopy(CONFIG)
    first["cohort"]["exposure"] = "first_dose"
    items = {i["title"]: i for i in comparison_limitations(first, X.MODEL, X.OVERLAP, False, Formatter())}
    assert items["Immortal time"]["level"] == "info" and "route of the first dose" in items["Immortal time"]["text"]


def test_limitations_disclose_and_withhold_in_the_shareable_report():
    items = {i["title"]: i for i in _limitations(f=Formatter(SHARE), withheld=True)}
    assert "E-value is not shown" in items["Residual confounding"]["text"]
    pos = items["Positivity (overlap of the routes)"]["text"]
    assert "IV <10 of 20 and SC 10 of 30 (33%)" in pos and "overall" not in pos and "IV 10, SC 20" in pos
    assert "<10 patients died before day 2" in items["Immortal time"]["text"]
    not_est = {i["title"]: i for i in _limitations(model=X.not_estimable_model(), overlap=X.empty(X.OVERLAP))}
    assert "not estimable: no patient started IV by day 2" in not_est["Residual confounding"]["text"]
    assert not_est["Positivity (overlap of the routes)"]["text"].startswith("Not assessed")


def test_methods_describe_the_emulation_from_its_settings():
    text = target_trial(X.MODEL, {}, 90)
    assert "IV anakinra started by day 2 of the first dose, against no IV through day 2" in text
    assert "(200 replicates, seed 20200601)" in text and "Risks of death at days 30 and 90" in text
    assert "stabilised inverse-probability-of-treatment weights" in text
    assert "age group (reference adult), ferritin, ug/L and CNS involvement" in text
    assert "Weighted Kaplan-Meier of each strategy's clones" in text  # the rule's own methods text
    ato = copy.deepcopy(X.MODEL)
    ato["settings"].update(estimand="ATO", grace_days=0, bootstrap_replicates=500)
    other = target_trial(ato, {}, 60)
    assert "overlap weights" in other and "a first dose given IV" in other and "500 replicates" in other
    assert "days 30 and 60" in other
    paragraphs = {p["title"]: p["text"] for p in methods(CONFIG, {"comparison": X.MODEL}, DELIVERY)}
    assert paragraphs["Target trial emulation (primary analysis)"] == text
    assert target_trial({}, CONFIG["analyses"]["comparison"], 90).startswith("The IV-vs-SC comparison emulates")


@pytest.mark.parametrize("x, shown", [(np.nan, "\u2014"), (-0.0004, "0.0"), (0.123, "12.3"), (-0.05, f"{MINUS}5.0")])
def test_percentage_points(x, shown):
    assert Formatter().points(x) == shown


def test_missingness_patterns_by_route_and_which_estimate_is_primary():
    t = C.comparison_section(data(), Formatter())["tables"]["missingness"]
    assert t.rows == [["IV", "complete", "16"], ["IV", "platelets baseline", "2"], ["SC", "complete", "28"]]
    assert "Primary: the estimate pooled over the imputations" in t.notes[0]


# --------------------------------------------------------------------------- missing adjustment values

def test_the_secondary_outcomes_complete_cases_are_shown_beside_their_pooled_estimates():
    """Under multiple imputation each secondary outcome's complete-case estimates follow its pooled ones under
    their own sub-heading (the primary outcome's are in the sensitivity table); with the complete cases
    primary, the pooled ones follow instead; without imputed rows the table is as it was."""
    model, effect = X.imputed()
    t = C.comparison_section(data(model, effect=effect), Formatter())["tables"]["effect"]
    labels = [r[0] for r in t.rows]
    block = labels[labels.index("Response at day 7"):labels.index("Any adverse event grade \u22653")]
    assert block == ["Response at day 7", "\u2003Odds ratio IV vs SC", "\u2003Complete cases (no imputation)",
                     "\u2003\u2003Risk, IV strategy", "\u2003\u2003Risk, SC strategy",
                     "\u2003\u2003Odds ratio IV vs SC"]
    row = t.rows[labels.index("\u2003Complete cases (no imputation)") + 3]
    assert row == ["\u2003\u2003Odds ratio IV vs SC", "", "1.50 (0.45\u20134.80)", "0.510", "38", "19"]
    assert labels.count("\u2003Complete cases (no imputation)") == 1  # not the primary outcome's
    assert any(n.startswith("Under \u201cComplete cases (no imputation)\u201d: the secondary outcome's estimates "
                            "among the patients with every adjustment variable") for n in t.notes)
    swapped = C.effect_table(X.imputed("complete_case")[1], Formatter(), "death_90d")
    assert "\u2003Multiple imputation of the adjustment set" in [r[0] for r in swapped.rows]
    plain = C.effect_table(X.EFFECT, Formatter(), "death_90d")
    assert not any("Complete cases" in r[0] or "imputation" in r[0] for r in plain.rows)
    assert not any(n.startswith("Under") for n in plain.notes)


def test_imputed_estimates_are_described_and_disclosed_like_every_other():
    model, effect = X.imputed()
    full = C.comparison_section(data(model, effect=effect), Formatter())
    assert "The missing values were multiply imputed for the primary and the secondary outcomes: every patient" \
        in full["counts"]
    assert "the complete cases are the primary analysis" in C.counts_text(X.imputed("complete_case")[0], Formatter())
    assert full["secondary"].startswith("Secondary outcomes (death by day 30, response at day 7 and any adverse event "
                                        "grade \u22653) are compared among the patients followed at day 2")
    assert "imputed for them as for the primary outcome" in full["secondary"]
    assert "imputed" not in C.secondary_text(X.MODEL, Formatter())
    assert "imputed for them" in render_section(data(model, effect=effect), Formatter(), share=False)
    assert "the secondary outcomes' in the table of estimates by outcome" in full["tables"]["missingness"].notes[0]
    # the shareable section: the complete cases' small arms withheld, no count left undisclosed
    share = C.comparison_section(data(model, effect=effect), Formatter(SHARE))["tables"]["effect"]
    cc = [r for r in share.rows if r[0] == "\u2003\u2003Odds ratio IV vs SC"][0]
    assert cc[2] == "not shown (<10 events)" and cc[-2:] == ["40", "20"]
    assert offenders(render_section(data(model, effect=effect), Formatter(SHARE), share=True)) == []
    # methods and limitations say that the secondary outcomes are imputed and pooled too
    text = target_trial(model, {}, 90)
    assert ("missing adjustment variables multiply imputed once for the primary and the secondary outcomes "
            "(20 imputations by chained equations, seed 20200602; 10 bootstrap replicates of the primary in each, "
            "whose variance is the set's), pooled by Rubin's rules with Barnard-Rubin degrees of freedom, the pooled "
            "estimates primary and the complete cases beside them") in text
    nothing = copy.deepcopy(model)
    nothing["imputation"]["imputed_patients"] = 0
    assert "no adjustment variable was missing, so nothing was imputed" in target_trial(nothing, {}, 90)
    missing = {i["title"]: i for i in _limitations(model=model)}["Missing data"]["text"]
    assert missing.startswith("Complete-case analyses, without imputation, except the target trial's")
    assert "of the primary and the secondary outcomes, impute the missing adjustment variables" in missing
    assert "its complete-case estimates, beside them, use the 43 of 46 patients" in missing
