"""Small hand-built canonical tables for tests of linking and cohort rules."""

from __future__ import annotations

import hashlib

import pandas as pd

from stormcohort.canonical import COLUMNS, FLAGS

HIGH_LABS = {"ferritin": 12000.0, "triglycerides": 4.2, "fibrinogen": 1.2, "ast": 150.0, "hb": 80.0,
             "platelets": 45.0, "wbc": 2.0, "neutrophils": 0.8, "scd25": 6000.0, "crp": 150.0, "alt": 90.0}
LOW_LABS = {"ferritin": 300.0, "triglycerides": 1.0, "fibrinogen": 4.0, "ast": 20.0, "hb": 130.0,
            "platelets": 250.0, "wbc": 8.0, "neutrophils": 5.0, "scd25": 800.0, "crp": 20.0, "alt": 20.0}


def key(prefix: str, text: str) -> str:
    return prefix + hashlib.sha256(text.encode()).hexdigest()[:12]


class World:
    """Collects admissions with their doses, labs and adverse events."""

    def __init__(self):
        self.rows = {name: [] for name in COLUMNS}

    def admission(self, person, centre, admit, discharge, *, sick=True, diagnosis="shlh", doses=(),
                  died=False, death=None, last_seen=None, fever_resolved=None, trigger="infection",
                  trigger_detail="EBV", age=40.0, weight=70.0, lab_day=None, icu=False, sex="F"):
        adm_key = key("A", f"{centre}{person}{admit}")
        person_key = key("P", person)
        if not any(r["person_key"] == person_key and r["centre"] == centre for r in self.rows["patients"]):
            self.rows["patients"].append({"person_key": person_key, "centre": centre, "sex": sex})
        flags = {f: sick for f in FLAGS}
        flags.update(icu=icu, died=died, immunosuppression=False)
        self.rows["admissions"].append({
            "admission_key": adm_key, "person_key": person_key, "centre": centre,
            "admit_date": pd.Timestamp(admit), "discharge_date": pd.Timestamp(discharge) if discharge else pd.NaT,
            "age_years": age, "diagnosis": diagnosis, "diagnosis_text": diagnosis, "trigger_category": trigger,
            "trigger_detail": trigger_detail, "weight_kg": weight, "max_temp_c": 39.6 if sick else 37.0,
            **flags, "icu_days": 3.0 if icu else 0.0, "death_date": pd.Timestamp(death) if death else pd.NaT,
            "last_seen_date": pd.Timestamp(last_seen) if last_seen else pd.NaT,
            "fever_resolution_date": pd.Timestamp(fever_resolved) if fever_resolved else pd.NaT,
        })
        for start, stop, route, daily in doses:
            continuous = route == "IV-cont"
            self.rows["anakinra"].append({
                "admission_key": adm_key, "centre": centre, "start": pd.Timestamp(start),
                "stop": pd.Timestamp(stop), "route": "IV" if continuous else route, "continuous": continuous,
                "dose_mg": daily / 4, "frequency": "QDS", "rate_mg_per_h": float("nan"), "daily_dose_mg": daily,
            })
        labs = HIGH_LABS if sick else LOW_LABS
        # Default labs: the day before the first dose (baseline labs are taken before it), or the
        # admission date without anakinra.
        day = pd.Timestamp(lab_day) if lab_day else (
            pd.Timestamp(doses[0][0]).normalize() - pd.Timedelta(days=1) if doses else pd.Timestamp(admit))
        for test, value in labs.items():
            self.lab(adm_key, day, test, value)
        return adm_key

    def lab(self, adm_key, sample_time, test, value, qualifier=""):
        """One more lab result of an admission made by :meth:`admission`."""
        centre = next(r["centre"] for r in self.rows["admissions"] if r["admission_key"] == adm_key)
        self.rows["labs"].append({"admission_key": adm_key, "centre": centre, "sample_time": pd.Timestamp(sample_time),
                                  "test": test, "value": float(value), "qualifier": qualifier, "unit": "x"})

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {}
        for name, cols in COLUMNS.items():
            df = pd.DataFrame(self.rows[name], columns=cols)
            for flag in FLAGS:
                if flag in df:
                    df[flag] = df[flag].astype("boolean")
            for col in ("start", "stop", "sample_time", "event_date", "admit_date", "discharge_date",
                        "death_date", "last_seen_date", "fever_resolution_date"):
                if col in df:
                    df[col] = pd.to_datetime(df[col])
            out[name] = df
        return out
