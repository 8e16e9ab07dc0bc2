"""Disclosure control of the shareable report.

The policy (unit tests), then the proof on the real workflow's ``report_shareable.html``
(min_count 10, round_to 5): no count from 1 to 9 survives in any table, sentence or figure. The
scanner reads every integer of the data sections' visible text and table cells; numbers that
are not counts are recognised by their form (decimals, percentages, dates, days, grades, ratios)
or by their column (day, df). The same scanner run on the full report finds the small counts
there, so it does see counts.
"""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stormcohort.disclosure import SUPPRESSED, Policy
from stormcohort.report.fmt import Formatter
from tests.test_report_workflow import DISCLOSURE, report_run

N, M = DISCLOSURE["min_count"], DISCLOSURE["round_to"]
# sections holding data; methods, limitations' meta-numbers, provenance and the appendix hold config
# values, digests and versions (the limitations are checked by their count idioms below)
DATA_SECTIONS = {"summary", "data-sources", "participants", "baseline", "comparison", "outcomes", "safety", "forest"}
# a file size in bytes is not a count of people; the target trial's protocol states the config (grace days, seed)
NON_COUNT_COLUMNS = {"Day", "df", "Size", "Target trial", "Emulation here"}
INTEGER = re.compile(r"(?<![\w.,\-/:^\u2265>\u00d7\u2013])(<?)(\d{1,3}(?:,\d{3})+|\d+)(?![\w.%\-/:^\u00d7]|,\d)")
NOT_A_COUNT_BEFORE = re.compile(r"(\bday|\bdays|\bDay|\bFigure|\bgrade|\bto|\bon)\s*$")
COUNT_IDIOMS = [re.compile(p) for p in (r"(<?\d[\d,]*) (?:patients|deaths|events|people)\b",
                                        r"(<?\d[\d,]*) (?:IV|SC)\b(?!-)",
                                        r":\s*(<?\d[\d,]*)(?![\d.,])", r"n = (<?\d[\d,]*)")]


# --------------------------------------------------------------------------- the policy

def test_off_by_default_shows_counts_as_counted():
    f = Formatter()
    assert not f.policy.active
    assert [f.count(x) for x in (0, 1, 7, 18, 2033)] == ["0", "1", "7", "18", "2,033"]
    assert f.n_pct(18, 46) == "18 (39%)"


def test_small_counts_are_suppressed_and_others_rounded():
    p = Policy(min_count=10, round_to=5)
    assert [p.count(x) for x in (0, 1, 9)] == [0, SUPPRESSED, SUPPRESSED]
    assert [p.count(x) for x in (10, 12, 13, 18, 46, 2033)] == [10, 10, 15, 20, 45, 2035]
    assert p.count(None) is None and p.count(float("nan")) is None


def test_no_rounded_count_falls_below_the_minimum():
    p = Policy(min_count=7, round_to=5)
    assert p.count(6) == SUPPRESSED
    assert p.count(7) == 10 and p.count(8) == 10  # not 5: a shown count is never a small count
    assert Policy(min_count=8, round_to=10).count(14) == 10


def test_percentages_rates_and_ratios_come_from_the_rounded_counts():
    f = Formatter(Policy(min_count=10, round_to=5))
    assert f.n_pct(18, 46) == "20 (44%)"          # 20 / 45, not 18 / 46
    assert f.n_pct(7, 46) == "<10"                # no percentage of a suppressed count
    assert f.pct(46, 7) == ""
    assert f.rate(7, 294, 100) == "\u2014"
    assert f.unless_small([7, 20], "1.84 (0.64\u20135.25)").startswith("not shown")
    assert f.unless_small([12, 20], "1.84") == "1.84"


def test_the_disclose_rule_recomputes_estimates_from_the_disclosed_counts():
    """Rates and rate ratios from the rounded counts (exact Poisson, R poisson.test, as the safety
    analysis computes them); a quantity resting on a suppressed count is withheld, not estimated."""
    import pandas as pd

    from stormcohort.disclosure import disclosed_estimates
    from stormcohort.stats import poisson_rate_ci, rate_ratio

    policy = Policy(min_count=10, round_to=5)
    rates = pd.DataFrame({"group": ["IV", "SC", "IV"], "term": ["any", "any", "infusion_reaction"],
                          "patients": [11, 14, 3], "events": [23, 31, 4], "patient_days": [302, 698, 150],
                          "rate_per_100pd": [7.6, 4.4, 2.7], "rate_lcl": [0.0] * 3, "rate_ucl": [0.0] * 3,
                          "note": [None] * 3})
    ratios = pd.DataFrame({"outcome": ["any", "infusion_reaction"], "model": ["exact"] * 2,
                           "term": ["route_group[IV]"] * 2, "irr": [1.7, 9.9], "irr_lcl": [1.0, 1.0],
                           "irr_ucl": [3.0, 99.0], "p": [0.05, 0.5], "events_iv": [23, 4],
                           "patient_days_iv": [302, 150], "events_sc": [31, 12], "patient_days_sc": [698, 400],
                           "note": [None, None]})
    forest = pd.DataFrame({"section": ["rate", "rate"], "outcome": ["any", "infusion_reaction"],
                           "label": ["Any", "Infusion"], "measure": ["IRR", "IRR"], "model": ["exact"] * 2,
                           "family": ["exploratory"] * 2, "estimate": [1.7, 9.9], "lcl": [1.0, 1.0],
                           "ucl": [3.0, 99.0], "p": [0.05, 0.5], "p_holm": [float("nan")] * 2,
                           "plotted": [True, True], "estimable": [True, True], "note": [None, None]})
    counts = pd.DataFrame(columns=["outcome", "group", "events"])
    km = pd.DataFrame({"group": ["IV", "SC"], "events": [12, 20]})
    r = disclosed_estimates(rates, ratios, forest, counts, km, policy, per=100, conf_level=0.95)
    shown = r.tables["rates"].set_index(["group", "term"])
    expected = poisson_rate_ci(30, 700, per=100).iloc[0]
    assert shown.loc[("SC", "any"), ["events", "patient_days"]].tolist() == [30, 700]
    assert shown.loc[("SC", "any"), "rate_per_100pd"] == pytest.approx(expected["rate"])
    assert shown.loc[("SC", "any"), "rate_lcl"] == pytest.approx(expected["rate_lcl"])
    assert shown.loc[("IV", "infusion_reaction"), "withheld"] and pd.isna(shown.loc[("IV", "infusion_reaction"),
                                                                                       "rate_per_100pd"])
    rr = r.tables["ratios"].set_index("outcome")
    exact = rate_ratio(25, 300, 30, 700)
    assert rr.loc["any", ["irr", "irr_lcl", "irr_ucl", "p"]].tolist() == pytest.approx(
        [exact.rate_ratio, exact.lcl, exact.ucl, exact.p])
    assert rr.loc["infusion_reaction", "withheld"] and pd.isna(rr.loc["infusion_reaction", "irr"])
    f = r.tables["forest"].set_index("outcome")
    assert f.loc["any", "estimate"] == pytest.approx(exact.rate_ratio)
    assert pd.isna(f.loc["infusion_reaction", "estimate"]) and not f.loc["infusion_reaction", "plotted"]


def test_a_withheld_secondary_estimate_loses_its_holm_p_and_keeps_its_family():
    """The secondary family's Holm p values come from the undisclosed p values; a member resting on a
    suppressed count is withheld with its Holm p, the others keep theirs; the note of the descriptive
    counterpart of the primary outcome survives withholding."""
    import numpy as np
    import pandas as pd

    from stormcohort.disclosure import disclosed_forest
    from stormcohort.labels import PRIMARY_COUNTERPART_NOTE

    policy = Policy(min_count=10, round_to=5)
    forest = pd.DataFrame({
        "section": ["cox", "logistic", "logistic"], "outcome": ["death_90d", "death_30d", "response_day7"],
        "label": ["Death by day 90", "Death by day 30", "Response at day 7"], "measure": ["HR", "OR", "OR"],
        "model": ["adjusted"] * 3, "family": ["exploratory", "secondary", "secondary"],
        "estimate": [1.5, 2.0, 0.5], "lcl": [0.6, 0.8, 0.2], "ucl": [3.9, 5.0, 1.2], "p": [0.4, 0.04, 0.03],
        "p_holm": [np.nan, 0.06, 0.06], "estimable": [True] * 3, "plotted": [True] * 3,
        "note": [f"events per variable 4.3 < 10; {PRIMARY_COUNTERPART_NOTE}", None, None]})
    counts = pd.DataFrame({"outcome": ["death_30d"] * 2 + ["response_day7"] * 2, "group": ["IV", "SC"] * 2,
                           "events": [3, 12, 15, 20]})
    km = pd.DataFrame({"group": ["IV", "SC"], "events": [4, 20]})
    ratios = pd.DataFrame(columns=["outcome"])
    out = disclosed_forest(forest, ratios, counts, km, policy).set_index("outcome")
    assert out["family"].tolist() == ["exploratory", "secondary", "secondary"]
    assert np.isnan(out.loc["death_30d", ["estimate", "p", "p_holm"]].astype(float)).all()
    assert out.loc["response_day7", "p_holm"] == 0.06 and out.loc["response_day7", "p"] == 0.03
    assert out.loc["death_90d", "note"] == f"withheld: a group has <10 events; {PRIMARY_COUNTERPART_NOTE}"


def test_the_patient_clustered_ratio_is_recentred_on_the_disclosed_counts():
    """irr_robust is the crude ratio: recomputed from the disclosed counts like irr, its Wald interval
    and p rebuilt around it with the clustered standard error of the log ratio."""
    import numpy as np
    import pandas as pd
    from scipy.stats import norm

    from stormcohort.disclosure import disclosed_ratios
    from stormcohort.stats import rate_ratio

    ratios = pd.DataFrame({"outcome": ["any", "rare"], "model": ["unadjusted"] * 2, "term": ["route_group[IV]"] * 2,
                           "irr": [1.7, 9.9], "irr_lcl": [1.0, 1.0], "irr_ucl": [3.0, 99.0], "p": [0.05, 0.5],
                           "events_iv": [23, 4], "patient_days_iv": [302, 150], "events_sc": [31, 12],
                           "patient_days_sc": [698, 400], "note": [None, None], "irr_robust": [1.7, 9.9],
                           "robust_lcl": [0.8, 1.0], "robust_ucl": [3.6, 99.0], "robust_p": [0.2, 0.5],
                           "robust_se": [0.4, 1.2], "robust_method": ["poisson_glm_cluster_hc1"] * 2})
    out = disclosed_ratios(ratios, Policy(min_count=10, round_to=5), 0.95).set_index("outcome")
    irr = rate_ratio(25, 300, 30, 700).rate_ratio
    z = 1.959963984540054
    assert out.loc["any", ["irr_robust", "robust_lcl", "robust_ucl"]].tolist() == pytest.approx(
        [irr, irr * np.exp(-z * 0.4), irr * np.exp(z * 0.4)])
    assert out.loc["any", "robust_p"] == pytest.approx(2 * norm.sf(abs(np.log(irr)) / 0.4))
    assert out.loc["rare", "withheld"] and out.loc["rare", ["irr_robust", "robust_lcl", "robust_p"]].isna().all()


def test_free_text_notes_with_numbers_are_left_out_when_disclosing():
    note = "EPV 2.3 < 10 (14 deaths, 6 parameters): estimates may be unstable"
    assert Formatter().note(note) == note
    assert Formatter(Policy(10, 5)).note(note) == ""
    assert Formatter(Policy(10, 5)).note("not estimable: route-specific term") == "not estimable: route-specific term"


# --------------------------------------------------------------------------- the shareable report

class Cells(HTMLParser):
    """Text of the data sections as (section, column header or None, text) pieces."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.pieces, self.section, self.skip = [], None, 0
        self.headers, self.col, self.cell, self.in_th, self.header_row = [], -1, None, False, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("style", "script", "pre"):
            self.skip += 1
        elif tag == "section":
            self.section = a.get("id")
        elif tag == "tr":
            self.col, self.header_row = -1, []
        elif tag in ("td", "th"):
            self.col += int(a.get("colspan", 1))
            self.in_th, self.cell = tag == "th", []
        elif tag == "img":
            self.pieces.append((self.section, "img", a.get("alt", "")))

    def handle_endtag(self, tag):
        if tag in ("style", "script", "pre"):
            self.skip -= 1
        elif tag in ("td", "th") and self.cell is not None:
            text = "".join(self.cell).strip()
            if self.in_th:
                self.header_row.append(text)
            column = None if self.in_th else (self.headers[self.col] if 0 <= self.col < len(self.headers) else None)
            self.pieces.append((self.section, "th" if self.in_th else column, text))
            self.cell = None
        elif tag == "tr" and self.header_row and len(self.header_row) > 1:
            self.headers = self.header_row

    def handle_data(self, data):
        if self.skip:
            return
        if self.cell is not None:
            self.cell.append(data)
        else:
            self.pieces.append((self.section, None, data))


def compliant(lt: str, number: str) -> bool:
    v = int(number.replace(",", ""))
    if lt:
        return v == N
    return v == 0 or (v >= N and v % M == 0) or 1900 <= v <= 2099  # years: HLH-2004, MAS 2016


def offenders(html: str) -> list[str]:
    parser = Cells()
    parser.feed(html)
    found = []
    for section, column, text in parser.pieces:
        if section in DATA_SECTIONS:
            if column in NON_COUNT_COLUMNS or (column == "th" and re.fullmatch(r"\u2265?\d+", text)):
                continue
            for m in INTEGER.finditer(text):
                if NOT_A_COUNT_BEFORE.search(text[:m.start()]):
                    continue
                if not compliant(m.group(1), m.group(2)):
                    found.append(f"{section} [{column}]: {text.strip()[:120]!r} -> {m.group(0)}")
        elif section == "limitations":
            for idiom in COUNT_IDIOMS:
                for m in idiom.finditer(text):
                    token = m.group(1)
                    if not compliant("<" if token.startswith("<") else "", token.lstrip("<")):
                        found.append(f"{section}: {text.strip()[:120]!r} -> {token}")
    return found


@pytest.fixture(scope="module")
def reports():
    out = report_run()
    return (out, (out / "report.html").read_text(encoding="utf-8"),
            (out / "report_shareable.html").read_text(encoding="utf-8"))


def test_no_count_below_the_minimum_survives_in_the_shareable_report(reports):
    _, full, shareable = reports
    assert offenders(shareable) == []
    # the scanner does find counts: the full report has small ones in tables and text
    found = offenders(full)
    assert len(found) > 20
    assert any(f.startswith("participants") for f in found) and any(f.startswith("limitations") for f in found)


def test_shareable_report_carries_no_figure_drawn_from_raw_counts(reports):
    out, full, shareable = reports
    assert shareable.count("data:image/png;base64,") == 1  # the forest plot, redrawn (comparison figures left out)
    for png in sorted((out / "figures").glob("*.png")):
        assert base64.b64encode(png.read_bytes()).decode()[:2000] not in shareable, png.name
    assert "Forest plot of all IV-vs-SC estimates" in shareable
    assert full.count("data:image/png;base64,") == 10


def test_shareable_report_shows_the_disclosed_cohort(reports):
    _, full, shareable = reports
    assert "18 (39%)" in full and "18 (39%)" not in shareable
    assert "20 (44%)" in shareable            # 18 of 46 -> 20 of 45
    assert "counts from 1 to 9 are shown as &lt;10" in shareable
    assert "&lt;10" in shareable
    # no link to the undisclosed outputs beside it
    assert 'href="tables/' not in shareable and 'href="clean/' not in shareable
    assert Path(reports[0] / "report_shareable.html").stat().st_size < Path(reports[0] / "report.html").stat().st_size
