"""Pandera schemas of the canonical tables (names and vocabularies in :mod:`stormcohort.canonical`).

Ingest validates every cleaned table against these before writing it. They live apart from the
vocabularies because pandera costs 0.3 s to import and only ingest needs it.
"""

from __future__ import annotations

import pandera.pandas as pa

from stormcohort.canonical import (
    AE_TERMS,
    DIAGNOSES,
    FLAGS,
    FREQUENCIES,
    LAB_UNITS,
    PLAUSIBLE,
    ROUTES,
    SEX,
    TRIGGERS,
)


def _key(prefix: str) -> pa.Column:
    return pa.Column(str, pa.Check.str_matches(rf"^{prefix}[0-9a-f]{{12}}$"))


def _num(name: str, nullable: bool = True) -> pa.Column:
    lo, hi = PLAUSIBLE[name]
    return pa.Column(float, pa.Check.in_range(lo, hi), nullable=nullable)


def _date(nullable: bool = True) -> pa.Column:
    return pa.Column("datetime64[ns]", nullable=nullable)


# any configured centre: its code is three capital letters (config `centres`)
_centre = pa.Column(str, pa.Check.str_matches(r"^[A-Z]{3}$"))
_flag = pa.Column("boolean", nullable=True)

SCHEMAS = {
    "patients": pa.DataFrameSchema(
        {"person_key": _key("P"), "centre": _centre, "sex": pa.Column(str, pa.Check.isin(SEX), nullable=True)},
        unique=["person_key", "centre"],
        strict=True, ordered=True,
    ),
    "admissions": pa.DataFrameSchema(
        {
            "admission_key": _key("A"),
            "person_key": _key("P"),
            "centre": _centre,
            "admit_date": _date(nullable=False),
            "discharge_date": _date(),
            "age_years": _num("age_years"),
            "diagnosis": pa.Column(str, pa.Check.isin(DIAGNOSES)),
            "diagnosis_text": pa.Column(str, nullable=True),
            "trigger_category": pa.Column(str, pa.Check.isin(TRIGGERS), nullable=True),
            "trigger_detail": pa.Column(str, nullable=True),
            "weight_kg": _num("weight_kg"),
            "max_temp_c": _num("max_temp_c"),
            **{f: _flag for f in FLAGS if f != "died"},
            "icu_days": _num("icu_days"),
            "died": _flag,
            "death_date": _date(),
            "last_seen_date": _date(),
            "fever_resolution_date": _date(),
        },
        unique=["admission_key"],
        strict=True, ordered=True,
    ),
    "anakinra": pa.DataFrameSchema(
        {
            "admission_key": _key("A"),
            "centre": _centre,
            "start": _date(nullable=False),
            "stop": _date(),
            "route": pa.Column(str, pa.Check.isin(ROUTES)),
            "continuous": pa.Column(bool),
            "dose_mg": _num("dose_mg"),
            "frequency": pa.Column(str, pa.Check.isin(FREQUENCIES)),
            "rate_mg_per_h": _num("rate_mg_per_h"),
            "daily_dose_mg": pa.Column(float, pa.Check.ge(0), nullable=True),
        },
        checks=pa.Check(lambda d: ~(d["stop"] < d["start"]), error="stop before start"),
        strict=True, ordered=True,
    ),
    "labs": pa.DataFrameSchema(
        {
            "admission_key": _key("A"),
            "centre": _centre,
            "sample_time": _date(nullable=False),
            "test": pa.Column(str, pa.Check.isin(list(LAB_UNITS))),
            "value": pa.Column(float, pa.Check.ge(0)),
            "qualifier": pa.Column(str, pa.Check.isin(["", "<", ">"])),
            "unit": pa.Column(str, pa.Check.isin(sorted(set(LAB_UNITS.values())))),
        },
        strict=True, ordered=True,
    ),
    "adverse_events": pa.DataFrameSchema(
        {
            "admission_key": _key("A"),
            "centre": _centre,
            "event_date": _date(nullable=False),
            "term": pa.Column(str, pa.Check.isin(AE_TERMS)),
            "term_text": pa.Column(str, nullable=True),
            "grade": pa.Column("Int64", pa.Check.in_range(1, 5)),
            "serious": pa.Column("boolean", nullable=True),
        },
        strict=True, ordered=True,
    ),
}
