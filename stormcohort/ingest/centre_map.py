"""Centre maps (config/centres/<C>.yaml): how one centre's export maps onto the canonical tables,
and the centre laboratory's upper limits of normal (`lab_uln`).

The JSON schema (stormcohort/schemas/centre.schema.yaml, package data) checks the shape; the
checks here tie the map to stormcohort.canonical (field names per role, vocabularies, lab
tests), so a typo in a map stops the run before any data is read. `load_centre_maps` and
`lab_uln` are what the workflow runs on the configured centres when it parses the Snakefile,
before any job.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Iterable
from importlib.resources import files
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

# The package's JSON schemas (centre maps, and config/config.yaml for the Snakefile).
SCHEMAS = files("stormcohort") / "schemas"

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


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(yaml.safe_load((SCHEMAS / "centre.schema.yaml").read_text(encoding="utf-8")))


def _check_against_canonical(centre_map: dict) -> list[str]:
    """Problems the schema cannot see, each naming the map key."""
    problems = []
    roles = [s["role"] for s in centre_map["sources"]]
    for i, source in enumerate(centre_map["sources"]):
        where = (f"sources[{i}] "
                 f"({source.get('file') or source.get('sheet') or source.get('instrument') or 'admission form'})")
        fields = list(source["columns"].values())
        for name in sorted(set(fields) - ROLE_FIELDS[source["role"]]):
            problems.append(f"{where}.columns: field {name!r} is not a {source['role']} field "
                            f"(expected one of: {', '.join(sorted(ROLE_FIELDS[source['role']]))})")
        for name in sorted({f for f in fields if fields.count(f) > 1}):
            problems.append(f"{where}.columns: field {name!r} is mapped from more than one column")
        for column, spec in source.get("tests", {}).items():
            if spec["test"] not in LAB_UNITS:
                problems.append(f"{where}.tests.{column}: unknown test {spec['test']!r} "
                                f"(expected one of: {', '.join(LAB_UNITS)})")
        if source["role"] in {"anakinra", "labs", "adverse_events"}:
            link = (["patient_id", source["link_by_date"]["date"]] if "link_by_date" in source
                    else centre_map["admission_id"])
            for name in link:
                if name not in fields:
                    problems.append(f"{where}.columns: no column maps to {name!r}, needed to link rows to admissions")
        if source["role"] == "labs" and "tests" not in source and not {"test", "result"} <= set(fields):
            problems.append(f"{where}: a labs source needs either `tests` (wide) "
                            "or columns for `test` and `result` (long)")
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
    for key in ("lab_unit_conversions", "lab_uln"):
        for test in centre_map.get(key, {}):
            if test not in LAB_UNITS:
                problems.append(f"{key}.{test}: unknown test (expected one of: {', '.join(LAB_UNITS)})")
    return problems


def load_centre_map(path: Path | str) -> dict:
    """Read a centre map and validate it against the schema and the canonical vocabularies."""
    path = Path(path)
    if not path.is_file():
        raise ExtractError(f"{path}: centre map not found")
    try:
        # libyaml's safe loader when PyYAML has it: the workflow reads every map at each parse
        centre_map = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise ExtractError(f"{path}: not valid YAML ({error})") from error
    errors = sorted(_validator().iter_errors(centre_map), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        key = "/".join(map(str, first.path)) or "(top level)"
        raise ExtractError(f"{path}: {key}: {first.message}"
                           + (f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""))
    problems = _check_against_canonical(centre_map)
    if problems:
        raise ExtractError(f"{path}: " + "; ".join(problems))
    return centre_map


def load_centre_maps(centres: Iterable[str], centre_dir: Path | str = "config/centres",
                     uln_tests: Iterable[str] = ()) -> dict[str, dict]:
    """The configured centres' maps (`<centre_dir>/<C>.yaml`), each read and validated, in the
    order of `centres`, each with an upper limit of normal (`lab_uln`) for every test in
    `uln_tests` (the config's analyses.hepatotoxicity.tests). The workflow calls this when it
    parses the Snakefile: a missing map, an invalid one, one written for another centre or a
    missing limit stops the run before any job, naming the centre, the file and the key."""
    maps = {}
    for centre in centres:
        path = Path(centre_dir) / f"{centre}.yaml"
        if not path.is_file():
            raise ExtractError(f"centre {centre}: centre map {path} not found (every centre in config `centres` "
                               "needs one)", fix=f"write {path} (config/README.md, 'Adding a centre') or remove "
                               f"{centre} from `centres`")
        centre_map = load_centre_map(path)
        if centre_map["centre"] != centre:
            raise ExtractError(f"{path}: centre: {centre_map['centre']!r}, but the file is the map of {centre}",
                               fix=f"set `centre: {centre}`")
        missing = [t for t in uln_tests if t not in centre_map.get("lab_uln", {})]
        if missing:
            example = ", ".join(f"{t}: <{t.upper()} ULN in {LAB_UNITS[t]}>" for t in uln_tests)
            raise ExtractError(f"{path}: lab_uln: no upper limit of normal for {', '.join(missing)} (centre {centre}; "
                               "config analyses.hepatotoxicity.tests needs one per test)",
                               fix=f"add `lab_uln: {{{example}}}` to {path}, the centre laboratory's limits")
        maps[centre] = centre_map
    return maps


def lab_uln(centre_maps: dict[str, dict], tests: Iterable[str]) -> dict[str, dict[str, float]]:
    """`{centre: {test: upper limit of normal}}` for `tests`, from maps that `load_centre_maps`
    checked for them: the shape the hepatotoxicity analysis reads as its `uln` setting."""
    return {c: {t: m["lab_uln"][t] for t in tests} for c, m in centre_maps.items()}
