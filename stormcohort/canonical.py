"""The canonical tables: column names, types, vocabularies and units, defined once.

Every centre's extract is cleaned into these five tables (``results/<run>/clean/<C>/``).
Direct identifiers never appear here: ingest replaces them with keyed-hash pseudonyms
(``person_key``, ``admission_key``) and derives ``age_years`` before anything is written.
"""

from __future__ import annotations

SEX = ("M", "F")
DIAGNOSES = ("shlh", "mas", "fhlh", "other")
TRIGGERS = ("infection", "rheumatic", "malignancy", "idiopathic")
ROUTES = ("IV", "SC")
FREQUENCIES = ("OD", "BD", "TDS", "QDS", "CONT")
DOSES_PER_DAY = {"OD": 1, "BD": 2, "TDS": 3, "QDS": 4}

# Canonical lab tests and their units (UK conventions).
LAB_UNITS = {
    "ferritin": "ug/L",
    "crp": "mg/L",
    "platelets": "10^9/L",
    "hb": "g/L",
    "wbc": "10^9/L",
    "neutrophils": "10^9/L",
    "fibrinogen": "g/L",
    "triglycerides": "mmol/L",
    "alt": "U/L",
    "ast": "U/L",
    "bilirubin": "umol/L",
    "creatinine": "umol/L",
    "scd25": "U/mL",
}
# The direction in which each test is worse in sHLH/MAS (cohort.baseline.pick = worst): the
# highest value, or the lowest (cytopenias, falling fibrinogen).
LAB_WORSE = {
    "ferritin": "high",
    "crp": "high",
    "platelets": "low",
    "hb": "low",
    "wbc": "low",
    "neutrophils": "low",
    "fibrinogen": "low",
    "triglycerides": "high",
    "alt": "high",
    "ast": "high",
    "bilirubin": "high",
    "creatinine": "high",
    "scd25": "high",
}
# Values outside these limits (canonical units) are impossible, not merely abnormal.
LAB_PLAUSIBLE = {
    "ferritin": (0, 500_000),
    "crp": (0, 1_000),
    "platelets": (0, 2_000),
    "hb": (10, 250),
    "wbc": (0, 500),
    "neutrophils": (0, 300),
    "fibrinogen": (0, 20),
    "triglycerides": (0, 100),
    "alt": (0, 20_000),
    "ast": (0, 40_000),
    "bilirubin": (0, 1_500),
    "creatinine": (0, 3_000),
    "scd25": (0, 200_000),
}
PLAUSIBLE = {
    "weight_kg": (2, 250),
    "max_temp_c": (34, 44),
    "age_years": (0, 110),
    "icu_days": (0, 365),
    "dose_mg": (1, 2_000),  # a single anakinra dose
    "rate_mg_per_h": (0.1, 200),
    "grade": (1, 5),
}

AE_TERMS = (
    "alt_ast_increased",
    "bacterial_infection",
    "fungal_infection",
    "viral_infection",
    "injection_site_reaction",
    "infusion_reaction",
    "neutropenia",
    "thrombocytopenia",
    "dress_eosinophilia",
    "anaphylaxis",
    "other",
)
INFECTION_TERMS = ("bacterial_infection", "fungal_infection", "viral_infection")

# Flags held as nullable booleans: missing means not recorded (or, for marrow, not done).
FLAGS = (
    "hepatomegaly",
    "splenomegaly",
    "immunosuppression",
    "bm_haemophagocytosis",
    "icu",
    "oedema",
    "cns",
    "died",
)

# Column order of each canonical table, as written to Parquet.
COLUMNS = {
    "patients": ["person_key", "centre", "sex"],
    "admissions": [
        "admission_key", "person_key", "centre", "admit_date", "discharge_date",
        "age_years", "diagnosis", "diagnosis_text", "trigger_category", "trigger_detail",
        "weight_kg", "max_temp_c", *FLAGS[:-1], "icu_days", "died", "death_date",
        "last_seen_date", "fever_resolution_date",
    ],
    "anakinra": [
        "admission_key", "centre", "start", "stop", "route", "continuous", "dose_mg",
        "frequency", "rate_mg_per_h", "daily_dose_mg",
    ],
    "labs": ["admission_key", "centre", "sample_time", "test", "value", "qualifier", "unit"],
    "adverse_events": [
        "admission_key", "centre", "event_date", "term", "term_text", "grade", "serious",
    ],
}
TABLES = tuple(COLUMNS)

LEDGER_COLUMNS = ["centre", "file", "row", "column", "value", "rule", "reason", "scope"]
ACCOUNTING_COLUMNS = ["centre", "file", "rows_in", "rows_kept", "rows_excluded"]
