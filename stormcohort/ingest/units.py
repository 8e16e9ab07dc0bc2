"""Lab units as labs print them: one spelling per unit, and the factor to each test's canonical unit.

`normalise_unit` folds the ways one unit is written (case, spaces, `µ`/`μ`/`mc` for micro,
`×10⁹`, `x10^9`, `10*9`, `10e9`); `KNOWN_UNITS` gives, per canonical test, every unit a lab
may print that converts by a fixed factor (a physical or molar equivalence, the same at every
centre), as a conversion spec for `clean.convert`. A centre map's `lab_unit_conversions` adds
to or overrides these. A unit outside both cannot be converted: the result leaves the ledger
as `unknown_unit`.
"""

from __future__ import annotations

import pandas as pd

SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def _normalise(u: pd.Series) -> pd.Series:
    u = u.astype(str).str.replace("10([⁰¹²³⁴⁵⁶⁷⁸⁹]+)", lambda m: "10^" + m.group(1), regex=True)
    u = u.str.translate(SUPERSCRIPTS).str.casefold()
    u = u.str.replace(r"\s", "", regex=True).str.replace("µ", "u").str.replace("μ", "u")
    u = u.str.replace(r"^mc(?=[gm])", "u", regex=True).str.replace(r"(?<=/)mc(?=[gl])", "u", regex=True)
    u = u.str.replace("×", "x").str.replace(r"^x(?=10)", "", regex=True)
    return u.str.replace(r"10(?:\^|\*\*|\*|e)(\d)", r"10^\1", regex=True)


def normalise_unit(units: pd.Series) -> pd.Series:
    """Lab units compared without case, spaces or the spelling of micro and powers of ten
    (worked out once per distinct spelling); NA stays NA."""
    distinct = pd.Series(units.dropna().unique(), dtype=object)
    return units.map(dict(zip(distinct, _normalise(distinct)))).astype(object)


_PER_L_1E9 = {"10^9/l": {}, "/nl": {}, "10^3/ul": {}, "k/ul": {}, "thou/ul": {}}
# canonical test -> {normalised unit: conversion to the canonical unit ({} = the same quantity)}
KNOWN_UNITS: dict[str, dict[str, dict]] = {
    "ferritin": {"ug/l": {}, "ng/ml": {}},
    "crp": {"mg/l": {}, "ug/ml": {}, "mg/dl": {"multiply": 10}},
    "platelets": dict(_PER_L_1E9),
    "hb": {"g/l": {}, "g/dl": {"multiply": 10}, "mg/ml": {}},
    "wbc": dict(_PER_L_1E9),
    "neutrophils": dict(_PER_L_1E9),
    "fibrinogen": {"g/l": {}, "mg/ml": {}, "mg/dl": {"divide": 100}},
    "triglycerides": {"mmol/l": {}, "mg/dl": {"divide": 88.57}},
    "alt": {"u/l": {}, "iu/l": {}},
    "ast": {"u/l": {}, "iu/l": {}},
    "bilirubin": {"umol/l": {}, "mg/dl": {"multiply": 17.1}},
    "creatinine": {"umol/l": {}, "mg/dl": {"multiply": 88.4}, "mmol/l": {"multiply": 1000}},
    "scd25": {"u/ml": {}, "iu/ml": {}},
}


def unit_table(centre_conversions: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """Every (test, normalised unit) that converts, with its spec: the known units, then the map's."""
    rows = {(test, unit): spec for test, units in KNOWN_UNITS.items() for unit, spec in units.items()}
    for test, units in centre_conversions.items():
        for printed, spec in units.items():
            rows[(test, normalise_unit(pd.Series([printed])).iloc[0])] = spec
    return pd.DataFrame([(t, u, s) for (t, u), s in rows.items()], columns=["test", "unit", "spec"])
