"""Clinical scores for secondary HLH / MAS from one row of baseline values per episode.

Input: a DataFrame, one row per admission/episode, lab columns in the canonical units of
``stormcohort.canonical.LAB_UNITS`` (ferritin ug/L, platelets/wbc/neutrophils 10^9/L, hb g/L,
fibrinogen g/L, triglycerides mmol/L, ast U/L, scd25 U/mL), ``max_temp_c`` in degrees C, and
the flags ``hepatomegaly, splenomegaly, immunosuppression, bm_haemophagocytosis`` (and ``sjia``
for MAS) as nullable booleans.

Censored results: a lab column ``<test>`` may come with ``<test>_qualifier`` ('' plain, '<' the
true value is below ``<test>``, '>' above it; as the canonical labs' ``qualifier``). A missing
qualifier column, or an NA/'' qualifier, means the value is exact, so callers without censored
values pass plain columns. A censored value meets a cut-off only when every value it stands
for does (:func:`meets_cutoff`): ``<500`` ferritin never meets ``>= 500``. Scores and counts
are then lower bounds, and an HScore item whose points could still rise counts in
``hscore_items_missing``.

Missing-data convention, common to every function here: a missing *value* (NaN/NA) means the
item or criterion is not met (0 points). Every item is monotone, so the HScore is then a lower
bound and the HLH-2004 count an undercount; ``hscore_items_missing`` says how far to trust it.
A missing *column* is a structural error and raises ``KeyError`` (a misspelt column name
must not silently score 0 for a whole cohort).

All functions are vectorised (numpy on whole columns) and return results aligned to
``df.index``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Triglycerides: 1 mmol/L = 88.57 mg/dL (molar mass of triolein ~885.7 g/mol).
TG_MG_DL_PER_MMOL_L = 88.57

HSCORE_COLUMNS = (
    "immunosuppression", "max_temp_c", "hepatomegaly", "splenomegaly", "hb", "platelets",
    "wbc", "ferritin", "triglycerides", "fibrinogen", "ast", "bm_haemophagocytosis",
)
HLH2004_COLUMNS = (
    "max_temp_c", "splenomegaly", "hb", "platelets", "neutrophils", "triglycerides",
    "fibrinogen", "bm_haemophagocytosis", "ferritin", "scd25",
)
MAS2016_COLUMNS = (
    "sjia", "max_temp_c", "ferritin", "platelets", "ast", "triglycerides", "fibrinogen",
)


def _require(df: pd.DataFrame, columns: tuple[str, ...]) -> None:
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise KeyError(f"missing required column(s): {absent}")


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    """Column as float64 ndarray, NA -> NaN (works for float64, Float64 and object columns)."""
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}


def meets_cutoff(value: np.ndarray, qualifier: np.ndarray, op: str, cut: float, possible: bool = False) -> np.ndarray:
    """Whether ``value op cut`` holds for every value a result stands for (``possible``: for some).

    ``qualifier`` '' is an exact value; '<x' stands for the values below x, '>x' above it. Every
    value of '<x' meets ``<= cut``/``< cut`` iff x <= cut, and never ``>= cut``/``> cut`` (some
    does iff x > cut); '>x' mirrors it. A missing value meets nothing (possibly: anything).
    """
    upper = op.startswith("<")
    exact = _OPS[op](value, cut)
    toward = qualifier == ("<" if upper else ">")  # censored in the cut-off's own direction
    away = qualifier == (">" if upper else "<")
    if possible:
        # toward: some value is beyond any cut; away: only when the bound is strictly inside.
        inside = value < cut if upper else value > cut
        return np.isnan(value) | np.where(toward, True, np.where(away, inside, exact))
    bound = value <= cut if upper else value >= cut
    return np.where(toward, bound, np.where(away, False, exact))


def _lab(df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(value, qualifier) of a column; no ``<col>_qualifier`` column (or NA in it) means exact."""
    value = _num(df, col)
    qual = f"{col}_qualifier"
    if qual not in df.columns:
        return value, np.full(len(df), "", dtype=object)
    return value, df[qual].astype(object).where(df[qual].notna(), "").to_numpy(dtype=object)


def _cutoffs(df: pd.DataFrame, possible: bool = False):
    """``meets(col, op, cut)`` for this frame's columns, qualifiers read once per column."""
    cache = {}

    def meets(col: str, op: str, cut: float) -> np.ndarray:
        if col not in cache:
            cache[col] = _lab(df, col)
        return meets_cutoff(*cache[col], op, cut, possible)
    return meets


def _flag(df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(present-and-True, missing) ndarrays for a nullable boolean flag."""
    s = df[col].astype("boolean")
    missing = s.isna().to_numpy()
    return s.fillna(False).to_numpy(dtype=bool), missing


def _hscore_points(df: pd.DataFrame, possible: bool) -> dict[str, np.ndarray]:
    """Points per HScore item that every value reaches (``possible``: the most any value could)."""
    meets = _cutoffs(df, possible)
    imm, imm_na = _flag(df, "immunosuppression")
    hep, hep_na = _flag(df, "hepatomegaly")
    spl, spl_na = _flag(df, "splenomegaly")
    bm, bm_na = _flag(df, "bm_haemophagocytosis")
    if possible:  # an unrecorded flag could be yes
        imm, hep, spl, bm = imm | imm_na, hep | hep_na, spl | spl_na, bm | bm_na
    n_cyto = (meets("hb", "<=", 92).astype(int) + meets("platelets", "<=", 110).astype(int)
              + meets("wbc", "<=", 5.0).astype(int))
    n_organ = hep.astype(int) + spl.astype(int)
    return {
        "immunosuppression": np.where(imm, 18, 0),
        # 38.4-39.4 is closed on both ends: <38.4 -> 0, >39.4 -> 49.
        "temperature": np.select([meets("max_temp_c", ">", 39.4), meets("max_temp_c", ">=", 38.4)], [49, 33], 0),
        "organomegaly": np.select([n_organ == 2, n_organ == 1], [38, 23], 0),
        # 0 or 1 lineage -> 0 points.
        "cytopenias": np.select([n_cyto == 3, n_cyto == 2], [34, 24], 0),
        "ferritin": np.select([meets("ferritin", ">", 6000), meets("ferritin", ">=", 2000)], [50, 35], 0),
        "triglycerides": np.select([meets("triglycerides", ">", 4.0), meets("triglycerides", ">=", 1.5)], [64, 44], 0),
        "fibrinogen": np.where(meets("fibrinogen", "<=", 2.5), 30, 0),
        "ast": np.where(meets("ast", ">=", 30), 19, 0),
        "bm_haemophagocytosis": np.where(bm, 35, 0),
    }


def hscore_components(df: pd.DataFrame) -> pd.DataFrame:
    """Points per HScore item (9 columns) plus ``hscore_items_missing``.

    See :func:`hscore` for the cut-offs. An item counts as missing when *any* of its
    inputs is missing (organomegaly: either flag; cytopenias: any of Hb/platelets/WBC), or
    when a censored value leaves its points open (``>3000`` ferritin: 35, could be 50),
    because its points could then still rise; so ``hscore_items_missing == 0`` exactly
    when the HScore is fully ascertained, and otherwise the score is a lower bound.
    """
    _require(df, HSCORE_COLUMNS)
    # A missing value or a censored one meets a cut-off only when certain: the lower band.
    pts = _hscore_points(df, possible=False)
    most = _hscore_points(df, possible=True)
    # Missing or censored, an item is not ascertained when its points could still rise (an
    # unrecorded flag or value always could), and cytopenias whenever a lineage is unrecorded.
    missing = {k: most[k] > v for k, v in pts.items()}
    missing["cytopenias"] |= np.isnan(_num(df, "hb")) | np.isnan(_num(df, "platelets")) | np.isnan(_num(df, "wbc"))
    out = pd.DataFrame({f"hscore_{k}": v.astype(float) for k, v in pts.items()}, index=df.index)
    out["hscore_items_missing"] = np.sum(list(missing.values()), axis=0).astype("int64")
    return out


def hscore(df: pd.DataFrame) -> pd.Series:
    """HScore (Fardet et al., Arthritis Rheumatol 2014;66:2613), range 0-337.

    Points, with boundaries as in the paper's table / MDCalc:
      known underlying immunosuppression: no 0, yes 18;
      temperature: <38.4 C 0, 38.4-39.4 (inclusive) 33, >39.4 49;
      organomegaly: none 0, hepatomegaly or splenomegaly 23, both 38;
      cytopenias (Hb <=92 g/L, platelets <=110 x10^9/L, WBC <=5.0 x10^9/L):
        0-1 lineage 0, 2 lineages 24, 3 lineages 34;
      ferritin: <2000 ug/L 0, 2000-6000 (inclusive) 35, >6000 50;
      triglycerides: <1.5 mmol/L 0, 1.5-4.0 (inclusive) 44, >4.0 64;
      fibrinogen: >2.5 g/L 0, <=2.5 30;
      AST: <30 U/L 0, >=30 19;
      haemophagocytosis on bone-marrow aspirate: no 0, yes 35.
    Missing items score 0, so the result is a lower bound; see :func:`hscore_items_missing`.
    """
    comp = hscore_components(df)
    return comp.drop(columns="hscore_items_missing").sum(axis=1).rename("hscore")


def hscore_items_missing(df: pd.DataFrame) -> pd.Series:
    """Number (0-9) of HScore items not fully ascertained; see :func:`hscore_components`."""
    return hscore_components(df)["hscore_items_missing"]


def hlh2004_count(df: pd.DataFrame) -> pd.Series:
    """Number of HLH-2004 diagnostic criteria met (Henter et al., Pediatr Blood Cancer 2007;48:124).

    Criteria (0-8; >=5 fulfils the clinical arm of HLH-2004):
      1 fever: max_temp_c >=38.5 C;
      2 splenomegaly;
      3 cytopenias in >=2 of 3 lineages: Hb <90 g/L, platelets <100 x10^9/L,
        neutrophils <1.0 x10^9/L (the neonatal Hb <100 g/L cut-off is not applied);
      4 fasting triglycerides >=3.0 mmol/L and/or fibrinogen <=1.5 g/L (counted once);
      5 haemophagocytosis: only bone marrow is recorded here (spleen/node not captured);
      6 low/absent NK-cell activity: never available in this cohort, always 0;
      7 ferritin >=500 ug/L;
      8 soluble CD25 >=2400 U/mL.
    The molecular-diagnosis arm of HLH-2004 is not assessed. Missing = criterion not met, and a
    censored value meets a criterion only when every value it stands for does (``<500`` ferritin
    does not meet 7), so the count is a lower bound.
    """
    _require(df, HLH2004_COLUMNS)
    meets = _cutoffs(df)
    spl, _ = _flag(df, "splenomegaly")
    bm, _ = _flag(df, "bm_haemophagocytosis")
    n_cyto = (meets("hb", "<", 90).astype(int) + meets("platelets", "<", 100).astype(int)
              + meets("neutrophils", "<", 1.0).astype(int))
    criteria = [
        meets("max_temp_c", ">=", 38.5),
        spl,
        n_cyto >= 2,
        meets("triglycerides", ">=", 3.0) | meets("fibrinogen", "<=", 1.5),
        bm,
        np.zeros(len(df), dtype=bool),  # NK-cell activity: not measured
        meets("ferritin", ">=", 500),
        meets("scd25", ">=", 2400),
    ]
    return pd.Series(np.sum(criteria, axis=0).astype("int64"), index=df.index, name="hlh2004_count")


def mas2016(df: pd.DataFrame) -> pd.Series:
    """2016 EULAR/ACR/PRINTO classification of MAS in sJIA (Ravelli et al., Ann Rheum Dis 2016;75:481).

    A febrile patient with known or suspected sJIA (``sjia`` True) is classified as MAS if
    ferritin >684 ug/L (= ng/mL) and at least 2 of:
      platelets <=181 x10^9/L; AST >48 U/L;
      triglycerides >156 mg/dL (= >156/88.57 ~ 1.761 mmol/L);
      fibrinogen <=360 mg/dL (= <=3.6 g/L).
    The criteria say only "febrile"; fever is taken here as max_temp_c >=38.0 C.
    Returns a ``boolean`` Series with no NA: ``sjia`` False or missing -> False; missing
    temperature or labs -> that criterion not met; a censored value meets a criterion only when
    every value it stands for does.
    """
    _require(df, MAS2016_COLUMNS)
    meets = _cutoffs(df)
    sjia, _ = _flag(df, "sjia")
    tg, tg_qualifier = _lab(df, "triglycerides")
    # Compare triglycerides in mg/dL so the published cut-off 156 is applied literally (a
    # positive factor keeps the qualifier's direction).
    n_other = (
        meets("platelets", "<=", 181).astype(int)
        + meets("ast", ">", 48).astype(int)
        + meets_cutoff(tg * TG_MG_DL_PER_MMOL_L, tg_qualifier, ">", 156).astype(int)
        + meets("fibrinogen", "<=", 3.6).astype(int)
    )
    result = sjia & meets("max_temp_c", ">=", 38.0) & meets("ferritin", ">", 684) & (n_other >= 2)
    return pd.Series(result, index=df.index, name="mas2016", dtype="boolean")


def meets_shlh_definition(
    df: pd.DataFrame,
    hlh2004_min: int = 5,
    hscore_min: float = 169,
    use_mas2016: bool = True,
) -> pd.DataFrame:
    """Scores plus the cohort's case definition.

    ``meets_definition`` = HLH-2004 count >= ``hlh2004_min`` (Henter 2007: 5 of 8)
    OR HScore >= ``hscore_min`` (Fardet 2014: best cut-off 169)
    OR (``use_mas2016`` and MAS-2016 classified). Missing data can only lower the scores
    (see module docstring), so a False here may be a false negative; check
    ``hscore_items_missing``.
    Columns: hscore, hscore_items_missing, hlh2004_count, mas2016, meets_definition.
    """
    comp = hscore_components(df)
    out = pd.DataFrame(index=df.index)
    out["hscore"] = comp.drop(columns="hscore_items_missing").sum(axis=1)
    out["hscore_items_missing"] = comp["hscore_items_missing"]
    out["hlh2004_count"] = hlh2004_count(df)
    out["mas2016"] = mas2016(df)
    meets = (out["hlh2004_count"] >= hlh2004_min) | (out["hscore"] >= hscore_min)
    if use_mas2016:
        meets = meets | out["mas2016"]
    out["meets_definition"] = meets.astype("boolean")
    return out
