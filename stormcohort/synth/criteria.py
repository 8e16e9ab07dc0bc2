"""The generator's own, deliberately simple reading of the sHLH/MAS definitions.

The generator must not depend on the code it is meant to test (stormcohort.scores), so it
keeps its own cut-offs here and uses them two ways: every baseline value is pushed at least
``MARGIN`` away from every cut-off of HScore, HLH-2004 and MAS 2016 (so ``<`` versus ``<=``,
unit conversion and rounding cannot flip an item), and whole scores are kept far from the
decision thresholds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Cut-offs in canonical units (Fardet 2014; Henter 2007; Ravelli 2016, TG 156 mg/dL).
CUTOFFS = {
    "ferritin": (500, 684, 2000, 6000),
    "platelets": (100, 110, 181),
    "hb": (90, 92),
    "wbc": (5.0,),
    "neutrophils": (1.0,),
    "fibrinogen": (1.5, 2.5, 3.6),
    "triglycerides": (1.5, 156 / 88.57, 3.0, 4.0),
    "ast": (30, 48),
    "scd25": (2400,),
}
MARGIN = 1.12  # a value must lie outside (cut-off / MARGIN, cut-off * MARGIN)
# Temperatures are drawn from these bands, clear of 38.0, 38.4, 38.5 and 39.4 degC.
TEMP_BANDS = ((38.7, 39.2), (39.7, 41.0))

HSCORE_MIN_CORE = 210  # core sHLH admissions: 169 + 41, more than any single item but TG/ferritin
HSCORE_MAX_NOT_MEETING = 120
HLH2004_MAX_NOT_MEETING = 2


def _forbidden_intervals(cutoffs: tuple[float, ...]) -> list[tuple[float, float]]:
    """Bands around the cut-offs, overlapping bands merged."""
    merged: list[list[float]] = []
    for c in sorted(cutoffs):
        lo, hi = c / MARGIN, c * MARGIN
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = hi
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def clear_of_cutoffs(test: str, values: np.ndarray) -> np.ndarray:
    """Move each value that lies in a band around a cut-off to the band's nearer edge (just outside)."""
    values = np.asarray(values, dtype=float).copy()
    for lo, hi in _forbidden_intervals(CUTOFFS.get(test, ())):
        inside = (values > lo) & (values < hi)
        to_low = (values - lo) < (hi - values)
        values = np.where(inside & to_low, lo * 0.99, np.where(inside, hi * 1.01, values))
    return values


def hscore(f: pd.DataFrame) -> np.ndarray:
    """HScore (Fardet 2014) from a frame of baseline features, canonical units."""
    cyto = (f["hb"] <= 92).astype(int) + (f["platelets"] <= 110) + (f["wbc"] <= 5.0)
    organ = f["hepatomegaly"].astype(int) + f["splenomegaly"].astype(int)
    pts = (
        np.where(f["immunosuppression"], 18, 0)
        + np.select([f["max_temp_c"] > 39.4, f["max_temp_c"] >= 38.4], [49, 33], 0)
        + np.select([organ == 2, organ == 1], [38, 23], 0)
        + np.select([cyto == 3, cyto == 2], [34, 24], 0)
        + np.select([f["ferritin"] > 6000, f["ferritin"] >= 2000], [50, 35], 0)
        + np.select([f["triglycerides"] > 4.0, f["triglycerides"] >= 1.5], [64, 44], 0)
        + np.where(f["fibrinogen"] <= 2.5, 30, 0)
        + np.where(f["ast"] >= 30, 19, 0)
        + np.where(f["bm_haemophagocytosis"] == "yes", 35, 0)
    )
    return np.asarray(pts)


def hlh2004_count(f: pd.DataFrame) -> np.ndarray:
    """HLH-2004 criteria met (NK-cell activity never available); a missing sCD25 counts as not met."""
    cyto = (f["hb"] < 90).astype(int) + (f["platelets"] < 100) + (f["neutrophils"] < 1.0)
    criteria = (
        (f["max_temp_c"] >= 38.5).astype(int)
        + f["splenomegaly"].astype(int)
        + (cyto >= 2)
        + ((f["triglycerides"] >= 3.0) | (f["fibrinogen"] <= 1.5))
        + (f["bm_haemophagocytosis"] == "yes")
        + (f["ferritin"] >= 500)
        + (f["scd25"].fillna(0) >= 2400)
    )
    return np.asarray(criteria)


def mas2016(f: pd.DataFrame, sjia: np.ndarray) -> np.ndarray:
    """2016 EULAR/ACR/PRINTO MAS classification in (suspected) sJIA."""
    others = (
        (f["platelets"] <= 181).astype(int) + (f["ast"] > 48) + (f["triglycerides"] > 156 / 88.57)
        + (f["fibrinogen"] <= 3.6)
    )
    return np.asarray(sjia & (f["max_temp_c"] >= 38.0) & (f["ferritin"] > 684) & (others >= 2))
