"""Table 1: baseline characteristics by route group and overall, as a clinical reviewer
expects it (gtsummary-style): median [IQR] or n (%), missing counts, and standardised
mean differences between the groups (Yang & Dalton 2012 for categorical variables)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

CONTINUOUS = {
    "age_years": "Age, years",
    "weight_kg": "Weight, kg",
    "hscore": "HScore",
    "hlh2004_count": "HLH-2004 criteria met",
    "ferritin_baseline": "Ferritin, ug/L",
    "crp_baseline": "CRP, mg/L",
    "platelets_baseline": "Platelets, 10^9/L",
    "alt_baseline": "ALT, U/L",
    "days_admission_to_anakinra": "Days from admission to anakinra",
    "max_daily_dose_mg": "Maximum daily dose, mg",
    "max_dose_mg_per_kg_day": "Maximum daily dose, mg/kg/day",
}
CATEGORICAL = {
    "centre": "Centre",
    "age_group": "Age group",
    "sex": "Sex",
    "trigger_category": "Trigger",
    "icu": "Intensive care",
    "oedema": "Subcutaneous oedema",
    "cns": "CNS involvement",
    "mas2016": "MAS 2016 classification (sJIA)",
}
COLUMNS = ["variable", "label", "level", "statistic", "overall", "IV", "SC", "missing", "smd"]


def smd_continuous(a: pd.Series, b: pd.Series) -> float:
    """(mean_a - mean_b) / sqrt((var_a + var_b) / 2), sample variances, missing dropped."""
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    if len(a) < 2 or len(b) < 2:
        return np.nan
    pooled = np.sqrt((a.var() + b.var()) / 2)
    return float(abs(a.mean() - b.mean()) / pooled) if pooled > 0 else (0.0 if a.mean() == b.mean() else np.inf)


def smd_categorical(a: pd.Series, b: pd.Series) -> float:
    """Multivariate SMD of level proportions (Yang & Dalton 2012): sqrt(d' S^-1 d), with
    the first level dropped and S the mean of the two multinomial covariance matrices."""
    a, b = a.dropna().astype(str), b.dropna().astype(str)
    levels = sorted(set(a) | set(b))
    if len(a) == 0 or len(b) == 0 or len(levels) < 2:
        return np.nan
    pa = a.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy()[1:]
    pb = b.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy()[1:]
    cov = lambda p: np.diag(p) - np.outer(p, p)  # noqa: E731
    s = (cov(pa) + cov(pb)) / 2
    d = pa - pb
    return float(np.sqrt(d @ np.linalg.pinv(s) @ d))


def _median_iqr(x: pd.Series) -> str:
    x = x.dropna()
    if x.empty:
        return ""
    q1, med, q3 = np.percentile(x.astype(float), [25, 50, 75])
    return f"{med:.1f} [{q1:.1f}, {q3:.1f}]"


def _n_pct(x: pd.Series, level: str) -> str:
    x = x.dropna().astype(str)
    n = int(x.eq(level).sum())
    return f"{n} ({100 * n / len(x):.1f}%)" if len(x) else "0"


def table1(dataset: pd.DataFrame, group: str = "route_group", groups: tuple[str, str] = ("IV", "SC")) -> pd.DataFrame:
    """One row per continuous variable and per level of a categorical variable; the
    first row gives N. Percentages are of the non-missing values."""
    parts = {"overall": dataset, **{g: dataset[dataset[group] == g] for g in groups}}
    rows = [{"variable": "n", "label": "Patients", "level": "", "statistic": "n",
             **{k: str(len(v)) for k, v in parts.items()}, "missing": "", "smd": np.nan}]
    for var, label in CONTINUOUS.items():
        rows.append({
            "variable": var, "label": label, "level": "", "statistic": "median [IQR]",
            **{k: _median_iqr(v[var]) for k, v in parts.items()},
            "missing": str(int(dataset[var].isna().sum())),
            "smd": smd_continuous(parts[groups[0]][var], parts[groups[1]][var]),
        })
    for var, label in CATEGORICAL.items():
        levels = sorted(dataset[var].dropna().astype(str).unique())
        smd = smd_categorical(parts[groups[0]][var], parts[groups[1]][var])
        for i, level in enumerate(levels):
            rows.append({
                "variable": var, "label": label, "level": level, "statistic": "n (%)",
                **{k: _n_pct(v[var], level) for k, v in parts.items()},
                "missing": str(int(dataset[var].isna().sum())) if i == 0 else "",
                "smd": smd if i == 0 else np.nan,
            })
    out = pd.DataFrame(rows)
    out["smd"] = out["smd"].round(3)
    return out[COLUMNS]


def table1_html(table: pd.DataFrame, synthetic: bool) -> str:
    """A small self-contained HTML rendering of Table 1."""
    n = table.iloc[0]
    head = (f"<tr><th>Characteristic</th><th>Overall (N={n['overall']})</th><th>IV (N={n['IV']})</th>"
            f"<th>SC (N={n['SC']})</th><th>Missing</th><th>SMD</th></tr>")
    body = []
    for _, r in table.iloc[1:].iterrows():  # a few dozen display rows, not data rows
        name = r["label"] if not r["level"] else f"{r['label']}: {r['level']}"
        smd = "" if pd.isna(r["smd"]) else f"{r['smd']:.2f}"
        cells = [name, r["overall"], r["IV"], r["SC"], r["missing"], smd]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    banner = ('<p class="synthetic"><strong>SYNTHETIC DATA</strong>: made by the stormcohort generator; '
              'no real patient is described.</p>') if synthetic else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Table 1</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{padding:2px 8px;"
        "border-bottom:1px solid #ddd;text-align:left}.synthetic{background:#fde2e2;padding:4px}</style>"
        f"</head><body>{banner}<table><caption>Table 1. Baseline characteristics by route of anakinra "
        "(median [IQR] or n (%); SMD: standardised mean difference IV vs SC)</caption>"
        f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table></body></html>\n"
    )
