"""Statistical disclosure control for a report shared outside the care team: the policy, and the
estimates recomputed from disclosed counts (the ``disclose`` rule; the report only formats them).

Off by default (``Policy()`` shows every count as it is). With ``disclosure: {min_count: N,
round_to: M}`` in the config: a count from 1 to N-1 is shown as ``<N``; any other count is
rounded to the nearest multiple of M (halves up), and never shown below N (a count of at least
N rounds to at least the first multiple of M that is N or more, so no shown number is a
"small count"). Zero stays zero. Percentages, rates and their intervals are then computed from
the disclosed counts, so no unrounded count can be recovered from them; a quantity built on a
suppressed count is not shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stormcohort.labels import PRIMARY_COUNTERPART_NOTE, ROUTES

SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class Policy:
    min_count: int | None = None
    round_to: int | None = None

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> Policy:
        cfg = dict(cfg or {})
        return cls(cfg.get("min_count"), cfg.get("round_to"))

    @property
    def active(self) -> bool:
        return bool(self.min_count or self.round_to)

    @property
    def small_label(self) -> str:
        return f"<{self.min_count}"

    def count(self, n) -> int | str | None:
        """A count as it may be shown: the int, ``SUPPRESSED`` or None (missing)."""
        if n is None or (isinstance(n, float) and math.isnan(n)):
            return None
        n = int(round(float(n)))
        if not self.active or n == 0:
            return n
        if self.min_count and 0 < n < self.min_count:
            return SUPPRESSED
        m = self.round_to or 1
        shown = m * math.floor(n / m + 0.5)
        floor = m * math.ceil((self.min_count or 0) / m)
        return max(shown, floor)

    def describe(self) -> str:
        if not self.active:
            return "none: every count is shown as counted"
        parts = []
        if self.min_count:
            parts.append(f"counts from 1 to {self.min_count - 1} are shown as <{self.min_count}")
        if self.round_to:
            parts.append(f"other counts are rounded to the nearest multiple of {self.round_to}"
                         + (f" (and to at least {self.count(self.min_count)})" if self.min_count else ""))
        parts.append("percentages, rates and their intervals are computed from the rounded counts; "
                     "a quantity built on a suppressed count is not shown")
        return "; ".join(parts)


# ----------------------------------------------------------------------------- disclosed estimates
def _disclosed(values, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Counts as shown (float; NaN when missing or suppressed) and whether each was suppressed."""
    shown = [policy.count(v) for v in values]
    suppressed = np.array([s == SUPPRESSED for s in shown], dtype=bool)
    return np.array([np.nan if s is None or s == SUPPRESSED else float(s) for s in shown]), suppressed


def disclosed_rates(rates: pd.DataFrame, policy: Policy, per: float, conf_level: float) -> pd.DataFrame:
    """``tables/safety_rates.csv`` as the shareable report shows it: events and patient-days
    disclosed, the rate and its exact Poisson interval recomputed from them, ``withheld`` where
    either count is suppressed."""
    from stormcohort.stats import poisson_rate_ci

    out = rates.copy()
    events, small_e = _disclosed(out["events"], policy)
    days, small_d = _disclosed(out["patient_days"], policy)
    out["patients"] = _disclosed(out["patients"], policy)[0]
    out["events"], out["patient_days"], out["withheld"] = events, days, small_e | small_d
    rate_cols = ["rate_per_100pd", "rate_lcl", "rate_ucl"]
    out[rate_cols] = np.nan
    ok = ~out["withheld"] & np.isfinite(events) & np.isfinite(days)
    if ok.any():
        ci = poisson_rate_ci(events[ok], days[ok], per=per, conf_level=conf_level)
        out.loc[ok, rate_cols] = ci[["rate", "rate_lcl", "rate_ucl"]].to_numpy()
    return out


def disclosed_ratios(ratios: pd.DataFrame, policy: Policy, conf_level: float) -> pd.DataFrame:
    """``tables/rate_ratios.csv`` with the exact conditional rate ratio recomputed from the disclosed
    counts; ``withheld`` where a count it rests on is suppressed. The patient-clustered ratio
    (``irr_robust``, when the table has it) is the same crude ratio, so it is recomputed from the
    disclosed counts too, its Wald interval and p recentred on it with the undisclosed standard
    error of the log ratio (``robust_se``: a spread of events between patients, not a count)."""
    from scipy import special

    from stormcohort.stats import rate_ratio

    out = ratios.copy()
    count_cols = ["events_iv", "patient_days_iv", "events_sc", "patient_days_sc"]
    suppressed = np.zeros(len(out), dtype=bool)
    for c in count_cols:
        out[c], small = _disclosed(out[c], policy)
        suppressed |= small
    out["withheld"] = suppressed
    est = ["irr", "irr_lcl", "irr_ucl", "p"]
    out[est] = np.nan
    for i in np.flatnonzero(~suppressed & out[count_cols].notna().all(axis=1).to_numpy()):  # a few outcomes
        rr = rate_ratio(*out.iloc[i][count_cols], conf_level=conf_level)
        if rr.estimable:
            out.iloc[i, [out.columns.get_loc(c) for c in est]] = [rr.rate_ratio, rr.lcl, rr.ucl, rr.p]
    if "robust_se" in out:
        robust = ["irr_robust", "robust_lcl", "robust_ucl", "robust_p"]
        se = pd.to_numeric(out["robust_se"], errors="coerce").to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.log(out["irr"].to_numpy(dtype=float))
        ok = np.isfinite(b) & np.isfinite(se) & (se > 0)
        z = special.ndtri(1 - (1 - conf_level) / 2)
        out[robust] = np.nan
        out.loc[ok, robust] = np.column_stack([np.exp(b), np.exp(b - z * se), np.exp(b + z * se),
                                               2 * special.ndtr(-np.abs(b / se))])[ok]
    return out


def disclosed_forest(forest: pd.DataFrame, ratios: pd.DataFrame, counts: pd.DataFrame, km: pd.DataFrame,
                     policy: Policy) -> pd.DataFrame:
    """``tables/forest.csv`` for the shareable forest plot: rate ratios from :func:`disclosed_ratios`
    (``ratios``), and every estimate whose group event counts include a suppressed one withheld (its
    Holm-adjusted p too; the family and the other members' Holm p, from the undisclosed p values, stay)."""
    out = forest.copy()
    rr = ratios.set_index("outcome")
    by_group = counts.set_index(["outcome", "group"])["events"]
    km_events = km.set_index("group")["events"]
    small = lambda *counts: any(policy.count(c) == SUPPRESSED for c in counts)  # noqa: E731
    est = ["estimate", "lcl", "ucl", "p"]
    for i, r in out.iterrows():  # one row per estimate in the plot
        if r["section"] == "rate" and r["outcome"] in rr.index:
            x = rr.loc[r["outcome"]]
            withheld = bool(x["withheld"])
            out.loc[i, est] = [x["irr"], x["irr_lcl"], x["irr_ucl"], x["p"]]
        elif r["section"] == "logistic":
            withheld = small(*[by_group.get((r["outcome"], g)) for g in ROUTES])
        else:
            withheld = small(*[km_events.get(g) for g in ROUTES])
        if withheld:
            out.loc[i, [*est, "p_holm"]] = np.nan
            out.loc[i, ["plotted", "estimable"]] = False
            withheld_note = f"withheld: a group has {policy.small_label} events"
            out.loc[i, "note"] = (f"{withheld_note}; {PRIMARY_COUNTERPART_NOTE}"
                                  if PRIMARY_COUNTERPART_NOTE in str(r["note"]) else withheld_note)
    return out


def disclosed_estimates(rates: pd.DataFrame, ratios: pd.DataFrame, forest: pd.DataFrame, counts: pd.DataFrame,
                        km: pd.DataFrame, policy: Policy, *, per: float, conf_level: float, synthetic: bool = False):
    """The ``disclose`` rule: rates, rate ratios and forest estimates from the disclosed counts, and
    the forest plot redrawn from them, as an :class:`~stormcohort.analyses.result.AnalysisResult`."""
    from stormcohort.analyses.result import AnalysisResult

    ratios = disclosed_ratios(ratios, policy, conf_level)
    forest = disclosed_forest(forest, ratios, counts, km, policy)
    withheld = int(forest["note"].astype(str).str.startswith("withheld").sum())

    def figure():
        from stormcohort.plots.forest import forest_figure

        return forest_figure(forest, synthetic=synthetic)

    return AnalysisResult(tables={"rates": disclosed_rates(rates, policy, per, conf_level), "ratios": ratios,
                                  "forest": forest},
                          figures={"forest": figure},
                          notes=(f"{withheld} of {len(forest)} forest estimates withheld",) if withheld else ())
