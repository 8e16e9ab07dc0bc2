"""Centre maps (config/centres/<C>.yaml): how one centre's export maps onto the canonical tables.

The JSON schema (workflow/schemas/centre.schema.yaml) checks the shape; the checks here tie
the map to stormcohort.canonical (field names per role, vocabularies, lab tests), so a typo
in a map stops the run before any data is read.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import jsonschema
import yaml

from stormcohort.canonical import (
    AE_TERMS,
    DIAGNOSES,
    FREQUENCIES,
    LAB_UNITS,
    ROUTES,
    SEX,
    TRIGGERS,
)
from stormcohort.errors import ExtractError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "centre.schema.yaml"

PERSON_FIELDS = {"patient_id", "nhs_number", "surname", "forename", "full_name", "dob", "sex", "postcode"}
# Fields that join a dosing / lab / adverse-event row to its admission.
LINK_FIELDS = {"admission_id", "patient_id", "admit_date"}
ADMISSION_FLAGS = ("hepatomegaly", "splenomegaly", "immunosuppression", "bm_haemophagocytosis", "icu", "oedema", "cns")
ROLE_FIELDS = {
    "patients": PERSON_FIELDS,
    "admissions": PERSON_FIELDS | {
        "admission_id", "admit_date", "discharge_date", "diagnosis", "trigger_category", "trigger_detail",
        "weight_kg", "max_temp_c", *ADMISSION_FLAGS, "icu_days", "died", "death_date", "last_seen_date",
        "fever_resolution_date",
    },
    "anakinra": LINK_FIELDS | {"start", "stop", "route", "dose", "frequency", "rate", "rate_per_kg"},
    "labs": LINK_FIELDS | {"sample_time", "test", "result", "unit"},
    "adverse_events": LINK_FIELDS | {"event_date", "term", "grade", "serious"},
}
# Canonical values each code map may produce.
CODE_VALUES = {
    "sex": set(SEX),
    "flags": {True, False, None},
    "died": {True, False, None},
    "diagnosis": set(DIAGNOSES),
    "trigger_category": set(TRIGGERS),
    "route": set(ROUTES),
    "frequency": set(FREQUENCIES),
    "lab_test": set(LAB_UNITS),
    "term": set(AE_TERMS),
}
PATTERN_VALUES = {"diagnosis": set(DIAGNOSES), "term": set(AE_TERMS)}


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def _check_against_canonical(centre_map: dict) -> list[str]:
    """Problems the schema cannot see, each naming the map key."""
    problems = []
    roles = [s["role"] for s in centre_map["sources"]]
    for i, source in enumerate(centre_map["sources"]):
        where = f"sources[{i}] ({source.get('file') or source.get('sheet') or source.get('instrument') or 'admission form'})"
        fields = list(source["columns"].values())
        for name in sorted(set(fields) - ROLE_FIELDS[source["role"]]):
            problems.append(f"{where}.columns: field {name!r} is not a {source['role']} field "
                            f"(expected one of: {', '.join(sorted(ROLE_FIELDS[source['role']]))})")
        for name in sorted({f for f in fields if fields.count(f) > 1}):
            problems.append(f"{where}.columns: field {name!r} is mapped from more than one column")
        for column, spec in source.get("tests", {}).items():
            if spec["test"] not in LAB_UNITS:
                problems.append(f"{where}.tests.{column}: unknown test {spec['test']!r} (expected one of: {', '.join(LAB_UNITS)})")
        if source["role"] in {"anakinra", "labs", "adverse_events"}:
            link = ["patient_id", source["link_by_date"]["date"]] if "link_by_date" in source else centre_map["admission_id"]
            for name in link:
                if name not in fields:
                    problems.append(f"{where}.columns: no column maps to {name!r}, needed to link rows to admissions")
        if source["role"] == "labs" and "tests" not in source and not {"test", "result"} <= set(fields):
            problems.append(f"{where}: a labs source needs either `tests` (wide) or columns for `test` and `result` (long)")
    admission_sources = [s for s in centre_map["sources"] if s["role"] == "admissions"]
    if roles.count("admissions") != 1 or roles.count("patients") > 1:
        problems.append("sources: expected exactly one admissions source and at most one patients source")
    for role in ("anakinra", "labs", "adverse_events"):
        if role not in roles:
            problems.append(f"sources: no {role} source (every canonical table needs one)")
    else:
        missing = set(centre_map["admission_id"]) - set(admission_sources[0]["columns"].values())
        if missing:
            problems.append(f"admission_id: {', '.join(sorted(missing))} not mapped in the admissions source")
    for group, mapping in centre_map["codes"].items():
        if group == "continuous_routes":
            continue
        for raw, value in mapping.items():
            if value not in CODE_VALUES[group]:
                problems.append(f"codes.{group}.{raw}: {value!r} is not canonical (expected one of: "
                                f"{', '.join(map(str, sorted(CODE_VALUES[group], key=str)))})")
    for group, spec in centre_map.get("patterns", {}).items():
        for j, rule in enumerate(spec["rules"]):
            try:
                re.compile(rule["pattern"])
            except re.error as error:
                problems.append(f"patterns.{group}.rules[{j}]: invalid regular expression ({error})")
            if rule["value"] not in PATTERN_VALUES[group]:
                problems.append(f"patterns.{group}.rules[{j}]: {rule['value']!r} is not canonical")
        if spec["default"] not in PATTERN_VALUES[group]:
            problems.append(f"patterns.{group}.default: {spec['default']!r} is not canonical")
    for key in ("encoding", "fallback_encoding"):
        if key in centre_map:
            try:
                codecs.lookup(centre_map[key])
            except LookupError:
                problems.append(f"{key}: unknown text encoding {centre_map[key]!r} (e.g. utf-8-sig, utf-8, cp1252)")
    if centre_map.get("delimiter") == '"':
        problems.append("delimiter: the quote character cannot separate fields")
    for test in centre_map.get("lab_unit_conversions", {}):
        if test not in LAB_UNITS:
            problems.append(f"lab_unit_conversions.{test}: unknown test (expected one of: {', '.join(LAB_UNITS)})")
    return problems


def load_centre_map(path: Path | str) -> dict:
    """Read a centre map and validate it against the schema and the canonical vocabularies."""
    path = Path(path)
    if not path.is_file():
        raise ExtractError(f"{path}: centre map not found")
    try:
        centre_map = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ExtractError(f"{path}: not valid YAML ({error})") from error
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(centre_map), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        key = "/".join(map(str, first.path)) or "(top level)"
        raise ExtractError(f"{path}: {key}: {first.message}" + (f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""))
    problems = _check_against_canonical(centre_map)
    if problems:
        raise ExtractError(f"{path}: " + "; ".join(problems))
    return centre_map
