"""Clean the rows of one centre's extract into canonical values, one source at a time.

Driven entirely by the centre map: which raw column is which field, the codes, patterns,
date formats and unit conversions. Each rule runs over whole columns. A row failing a rule
on a required field leaves with a `scope=row` ledger entry; a failing optional value is set
to missing with a `scope=value` entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from stormcohort.canonical import DOSES_PER_DAY, LAB_PLAUSIBLE, LAB_UNITS, PLAUSIBLE
from stormcohort.ingest.centre_map import ADMISSION_FLAGS
from stormcohort.ingest.ledger import REDACTED, Ledger
from stormcohort.ingest.scrub import scrub
from stormcohort.ingest.units import normalise_unit, unit_table
from stormcohort.pseudonym import admission_key, normalise_nhs, person_key

NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
LAB_RESULT = rf"^(?P<qualifier>[<>])?\s*(?P<number>{NUMBER})$"
DOSE = rf"^(?P<sign>[-+])?\s*(?P<amount>{NUMBER})\s*(?P<unit>mg(?:\s*/\s*kg)?(?:\s*/\s*(?:h|hr|hour))?)?$"
GRADE = r"^(?:grade\s*)?([1-5])(?:\.0+)?$"
DATE_TOKENS = {"%d": "dd", "%m": "mm", "%Y": "yyyy", "%b": "Mon", "%H": "HH", "%M": "MM", "%S": "SS"}
UNITS = {"weight_kg": "kg", "max_temp_c": "°C", "icu_days": "days", "dose_mg": "mg", "rate_mg_per_h": "mg/h"}
DOSE_FIELDS = {"dose": "dose", "rate": "infusion rate", "rate_per_kg": "infusion rate"}
# Dates of care (admission, dosing, samples, events, discharge, death, follow-up) before this are
# placeholders or typing errors (01/01/1900, Excel's day 0), not events: anakinra was first
# licensed in 2001. Dates of birth are checked through the age at admission instead.
EARLIEST_EVENT_DATE = pd.Timestamp("1990-01-01")
# Dates in another format than the map's that can be read in only one way: the year first with
# dashes (ISO, with or without a time), or the month in letters. `01/02/2019` in an ISO map is not
# one of them (1 February or 2 January?): it stays unparseable.
UNAMBIGUOUS_DATES = {
    "%Y-%m-%d": "yyyy-mm-dd (ISO)", "%Y-%m-%d %H:%M": "yyyy-mm-dd HH:MM (ISO)",
    "%Y-%m-%d %H:%M:%S": "yyyy-mm-dd HH:MM:SS (ISO)", "%Y-%m-%dT%H:%M": "yyyy-mm-ddTHH:MM (ISO)",
    "%Y-%m-%dT%H:%M:%S": "yyyy-mm-ddTHH:MM:SS (ISO)", "%d-%b-%Y": "dd-Mon-yyyy", "%d %b %Y": "dd Mon yyyy",
    "%d-%B-%Y": "dd-Month-yyyy", "%d %B %Y": "dd Month yyyy",
}
# Dates that cannot come before the admission date (set to missing, scope=value, when they do).
AFTER_ADMISSION = {"discharge_date": "discharge date", "death_date": "date of death",
                   "last_seen_date": "date last seen", "fever_resolution_date": "fever resolution date"}


# ---------------------------------------------------------------------------------------------
# Column parsers: Series of raw text in, parsed Series out (NA where the text does not parse).


def describe_formats(formats: list[str]) -> str:
    """`%d/%m/%Y` -> `dd/mm/yyyy`, for messages a clinician can read."""
    shown = []
    for fmt in formats:
        for token, text in DATE_TOKENS.items():
            fmt = fmt.replace(token, text)
        shown.append(fmt)
    return " or ".join(dict.fromkeys(shown))


def parse_dates(text: pd.Series, formats: list[str]) -> pd.Series:
    """Dates from text, trying each format in order; NaT where none fits."""
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = parsed.isna() & text.notna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return parsed


def read_dates(text: pd.Series, formats: list[str]) -> tuple[pd.Series, pd.Series]:
    """Dates from text by the map's formats, then, only for the cells none of them fits, by a format
    that reads a date in exactly one way (`UNAMBIGUOUS_DATES`: ISO, or the month written in letters).

    Returns the dates (NaT where nothing fits) and, per cell read by such a fallback, the format it
    was read as (`yyyy-mm-dd`, `dd Month yyyy`...; NA for cells read by the map or not read)."""
    parsed = parse_dates(text, formats)
    read_as = pd.Series(pd.NA, index=text.index, dtype=object)
    for fmt, shown in UNAMBIGUOUS_DATES.items():
        todo = parsed.isna() & text.notna()
        if not todo.any():
            break
        if fmt in formats:
            continue
        found = pd.to_datetime(text[todo], format=fmt, errors="coerce").dropna()
        parsed[found.index] = found
        read_as[found.index] = shown
    return parsed, read_as


def parse_numbers(text: pd.Series) -> pd.Series:
    return pd.to_numeric(text, errors="coerce").astype(float)


def convert(values: pd.Series, spec: dict | None) -> pd.Series:
    """A unit conversion from the centre map: subtract, then multiply, then divide; never rounded.

    Computed exactly on the decimals as written (`101.3` degF is 38.5 degC, not 38.49999...),
    once per distinct value, so a value exactly at a cut-off stays there; rounding is for display."""
    if not spec:
        return values
    subtract, multiply, divide = (Fraction(repr(float(spec.get(k, d)))) for k, d in
                                  (("subtract", 0), ("multiply", 1), ("divide", 1)))
    distinct = values[np.isfinite(values)].unique()  # inf (`1e309`) has no exact value: left to the range check
    exact = {v: float((Fraction(repr(float(v))) - subtract) * multiply / divide) for v in distinct}
    return values.map(exact).astype(float).fillna(values)


def parse_lab_results(text: pd.Series) -> pd.DataFrame:
    """`12.5`, `<5`, `>100000` -> value and qualifier ('', '<', '>'); value NA when not a number."""
    parts = text.str.extract(LAB_RESULT)
    return pd.DataFrame({"value": parse_numbers(parts["number"]), "qualifier": parts["qualifier"].fillna("")},
                        index=text.index)


def parse_doses(text: pd.Series) -> pd.DataFrame:
    """`100`, `100 mg`, `2mg/kg`, `0.5 mg/kg/h` -> amount, per_kg, per_hour; amount NA when unparseable."""
    parts = text.str.extract(DOSE, flags=re.IGNORECASE)
    unit = parts["unit"].fillna("").str.lower()
    amount = parse_numbers(parts["amount"]).mask(parts["sign"] == "-", -parse_numbers(parts["amount"]))
    return pd.DataFrame({"amount": amount, "per_kg": unit.str.contains("kg"),
                         "per_hour": unit.str.contains("/h")}, index=text.index)


def outside(values: pd.Series, limits: tuple[float, float]) -> pd.Series:
    return values.notna() & ~values.between(*limits)


# ---------------------------------------------------------------------------------------------
# Codes: raw value -> canonical value, by the centre map (and, for REDCap, the data dictionary).


class Codebook:
    """Code lookups per raw column; for REDCap: code -> dictionary label -> canonical value."""

    def __init__(self, centre_map: dict, choices: dict[str, dict[str, str]]):
        codes = centre_map["codes"]
        self.by_label = {group: {str(k).strip().casefold(): v for k, v in mapping.items()}
                         for group, mapping in codes.items() if group != "continuous_routes"}
        self.spellings = {group: [str(k) for k in mapping] for group, mapping in codes.items()}
        self.continuous_labels = {s.strip().casefold() for s in codes.get("continuous_routes", [])}
        self.patterns = centre_map.get("patterns", {})
        self.choices = choices

    def labels(self, column: str) -> dict[str, str]:
        """REDCap code -> label of a coded column (empty for other formats)."""
        return self.choices.get(column, {})

    def lookup(self, group: str, column: str) -> dict:
        """Casefolded raw value -> canonical value."""
        by_label = self.by_label.get(group, {})
        dictionary = self.labels(column)
        if not dictionary:
            return by_label
        return {code.casefold(): by_label[label.casefold()] for code, label in dictionary.items()
                if label.casefold() in by_label}

    def continuous(self, column: str) -> set[str]:
        """Casefolded raw route values meaning an IV continuous infusion."""
        dictionary = self.labels(column)
        if not dictionary:
            return self.continuous_labels
        return {code.casefold() for code, label in dictionary.items() if label.casefold() in self.continuous_labels}

    def expected(self, group: str, column: str) -> str:
        accepted = self.lookup(group, column)
        dictionary = self.labels(column)
        if dictionary:
            shown = [f"{code} ({label})" for code, label in dictionary.items() if code.casefold() in accepted]
        else:
            shown = self.spellings.get(group, [])
        return ", ".join(shown) or "none: the centre map has no codes for it"


# ---------------------------------------------------------------------------------------------
# Rows: one source's kept rows while it is cleaned.


class Rows:
    """The kept rows of one source (index = the row number a human sees) and their cleaned values."""

    def __init__(self, file: str, source: dict, raw: pd.DataFrame, ledger: Ledger):
        self.file = file
        self.source = source
        self.raw = raw
        self.fields = {field: column for column, field in source["columns"].items()}
        self.values = pd.DataFrame(index=raw.index)
        self.ledger = ledger

    def column(self, *fields: str) -> str:
        """The raw column name(s) of fields, as the ledger shows them."""
        return " + ".join(self.fields.get(f, f) for f in fields)

    def text(self, field: str) -> pd.Series:
        column = self.fields.get(field)
        if column is None or column not in self.raw.columns:  # unmapped, or an optional column absent
            return pd.Series(pd.NA, index=self.raw.index, dtype=object)
        return self.raw[column]

    def exclude(self, mask: pd.Series, fields: str | tuple[str, ...], rule: str, reason: str | pd.Series) -> None:
        """The masked rows leave, each with a scope=row ledger entry."""
        fields = (fields,) if isinstance(fields, str) else fields
        mask = mask.reindex(self.raw.index, fill_value=False).astype(bool)
        if not mask.any():
            return
        shown = self.text(fields[0]).fillna("")
        for field in fields[1:]:
            shown = shown.str.cat(self.text(field).fillna(""), sep=" + ")
        reason = reason.reindex(self.raw.index)[mask] if isinstance(reason, pd.Series) else reason
        self.ledger.add(self.file, shown[mask], self.column(*fields), rule, reason, "row")
        self.raw = self.raw[~mask]
        self.values = self.values[~mask]

    def blank(self, mask: pd.Series, field: str, rule: str, reason: str | pd.Series) -> pd.Series:
        """A scope=value ledger entry per masked value; returns the mask (the caller sets them missing,
        or changes them)."""
        mask = mask.reindex(self.raw.index, fill_value=False).astype(bool)
        if mask.any():
            self.ledger.add(self.file, self.text(field)[mask], self.column(field), rule, reason, "value")
        return mask


@dataclass
class Context:
    centre: str
    centre_map: dict
    codebook: Codebook
    key: bytes
    extract_date: pd.Timestamp
    identifiers: set[str] = frozenset()  # the centre's identifier strings, normalised (privacy.identifier_set)


# ---------------------------------------------------------------------------------------------
# Field cleaners: read one field's raw text from `rows`, record problems, store the clean values.


def require(rows: Rows, field: str, what: str) -> None:
    rows.exclude(rows.text(field).isna(), field, "missing_key", f"{what} is empty (required)")


def dates(rows: Rows, field: str, what: str, formats: list[str]) -> pd.Series:
    """A date column read by `read_dates`: a date read in another format than the map's, in the one
    way it can be read, is kept with a scope=value entry (`date_format_differs`) saying how it was read."""
    parsed, read_as = read_dates(rows.text(field), formats)
    differs = read_as.notna()
    if differs.any():
        rows.blank(differs, field, "date_format_differs",
                   f"{what} is not written {describe_formats(formats)}; read as " + read_as[differs].astype(str))
    return parsed


def required_date(rows: Rows, field: str, what: str, ctx: Context, formats_key: str = "date_formats") -> None:
    require(rows, field, what)
    formats = ctx.centre_map[formats_key]
    parsed = dates(rows, field, what, formats)
    rows.exclude(parsed.isna(), field, "unparseable_date",
                 f"{what} is not a date (expected {describe_formats(formats)})")
    rows.exclude(parsed.dt.normalize() > ctx.extract_date, field, "implausible_value",
                 f"{what} is after the extract date")
    rows.exclude(parsed < EARLIEST_EVENT_DATE, field, "implausible_value",
                 f"{what} is before {EARLIEST_EVENT_DATE:%Y-%m-%d} (a placeholder or typing error)")
    rows.values[field] = parsed.reindex(rows.raw.index)


def optional_date(rows: Rows, field: str, what: str, ctx: Context,
                  earliest: pd.Timestamp | None = EARLIEST_EVENT_DATE) -> None:
    text = rows.text(field)
    formats = ctx.centre_map["date_formats"]
    parsed = dates(rows, field, what, formats)
    unparseable = rows.blank(text.notna() & parsed.isna(), field, "unparseable_date",
                             f"{what} is not a date (expected {describe_formats(formats)}); set to missing")
    future = rows.blank(parsed > ctx.extract_date, field, "implausible_value",
                        f"{what} is after the extract date; set to missing")
    if earliest is not None:
        future |= rows.blank(parsed < earliest, field, "implausible_value",
                             f"{what} is before {earliest:%Y-%m-%d} (a placeholder or typing error); set to missing")
    rows.values[field] = parsed.mask(unparseable | future)


def free_text(rows: Rows, field: str, ctx: Context, texts: pd.Series | None = None) -> pd.Series:
    """A free-text field as recorded, with any direct identifier typed into it replaced by
    `[redacted]` (a scope=value ledger entry, value `<redacted>`)."""
    texts = rows.text(field) if texts is None else texts
    cleaned, hit = scrub(texts, ctx.identifiers)
    if hit.any():
        rows.ledger.add(rows.file, pd.Series(REDACTED, index=hit.index[hit.to_numpy()]), rows.column(field),
                        "identifier_in_text", "free text holds a direct identifier (a name, number or date of "
                        "birth); replaced by [redacted], the rest of the text kept", "value")
    return cleaned.astype(object)


def clinical_number(rows: Rows, field: str, what: str, ctx: Context) -> None:
    """A clinical measurement: converted to canonical units; unparseable or implausible values become missing."""
    text = rows.text(field)
    number = parse_numbers(text)
    unparseable = rows.blank(text.notna() & number.isna(), field, "unparseable_value",
                             f"{what} is not a number; set to missing")
    number = convert(number, ctx.centre_map.get("conversions", {}).get(field))
    lo, hi = PLAUSIBLE[field]
    implausible = rows.blank(outside(number, (lo, hi)), field, "implausible_value",
                             f"{what} outside the plausible range {lo}-{hi} {UNITS[field]}; set to missing")
    rows.values[field] = number.mask(unparseable | implausible)


def coded(rows: Rows, field: str, group: str, what: str, ctx: Context, scope: str) -> pd.Series:
    """A coded field mapped to canonical values. An unknown code leaves the row (scope row) or
    becomes missing (scope value); codes the map sends to null are known but missing (no entry)."""
    text = rows.text(field)
    lookup = ctx.codebook.lookup(group, rows.column(field))
    unknown = text.notna() & ~text.str.casefold().isin(list(lookup))
    reason = f"{what}: unknown code (expected one of: {ctx.codebook.expected(group, rows.column(field))})"
    if scope == "row":
        rows.exclude(unknown, field, "unknown_code", reason)
        return rows.text(field).str.casefold().map(lookup)
    unknown = rows.blank(unknown, field, "unknown_code", reason + "; set to missing")
    return text.str.casefold().mask(unknown).map(lookup)


def flag(rows: Rows, field: str, what: str, ctx: Context, group: str = "flags") -> pd.Series:
    return coded(rows, field, group, what, ctx, scope="value").astype("boolean")


def classified(rows: Rows, field: str, group: str, what: str, ctx: Context) -> tuple[pd.Series, pd.Series]:
    """Diagnosis / AE term: exact codes, then the map's free-text patterns, then its default.

    Returns (canonical value, the text as recorded: raw text or REDCap label). Without
    patterns (coded fields) an unknown code leaves the row; an empty value is the default.
    """
    column = rows.column(field)
    patterns = ctx.codebook.patterns.get(group)
    if patterns is None:
        lookup = ctx.codebook.lookup(group, column)
        rows.exclude(rows.text(field).notna() & ~rows.text(field).str.casefold().isin(list(lookup)), field,
                     "unknown_code", f"{what}: unknown code (expected one of: {ctx.codebook.expected(group, column)})")
    text = rows.text(field)
    value = text.str.casefold().map(ctx.codebook.lookup(group, column))
    for rule in (patterns or {}).get("rules", []):
        value = value.mask(value.isna() & text.str.contains(rule["pattern"], case=False, regex=True, na=False),
                           rule["value"])
    labels = ctx.codebook.labels(column)
    recorded = text.map(labels).fillna(text) if labels else text
    default = patterns["default"] if patterns else "other"
    return value.fillna(default).astype(object), recorded.astype(object)


def local_admission_id(rows: Rows, ctx: Context) -> pd.Series:
    """The centre's own admission identity, e.g. `A0001` or `S123|2019-02-03` (dates as ISO)."""
    parts = [rows.values[f].dt.strftime("%Y-%m-%d") if f == "admit_date" else rows.text(f).astype(str)
             for f in ctx.centre_map["admission_id"]]
    return parts[0].str.cat(parts[1:], sep="|") if len(parts) > 1 else parts[0]


# ---------------------------------------------------------------------------------------------
# Patients and admissions.


def person_identity(rows: Rows, ctx: Context) -> None:
    """person_key, sex and date of birth, for rows describing a person."""
    require(rows, "patient_id", "patient id")
    nhs_text = rows.text("nhs_number")
    nhs = normalise_nhs(nhs_text)
    rows.blank(nhs_text.notna() & nhs.isna(), "nhs_number", "unparseable_value",
               "NHS number is not 10 digits; the person key comes from the local patient id")
    rows.values["person_key"] = person_key(nhs, ctx.centre, rows.text("patient_id"), ctx.key)
    rows.values["sex"] = coded(rows, "sex", "sex", "sex", ctx, scope="value").astype(object)
    optional_date(rows, "dob", "date of birth", ctx, earliest=None)
    rows.values["dob_file"], rows.values["dob_row"], rows.values["dob_column"] = (rows.file, rows.values.index,
                                                                                  rows.column("dob"))


def clean_patients(rows: Rows, ctx: Context) -> None:
    """A separate patients file (LDN): one row per local patient id."""
    require(rows, "patient_id", "patient id")
    rows.exclude(rows.text("patient_id").duplicated(), "patient_id", "duplicate_key",
                 "patient id already given by an earlier row (first kept)")
    person_identity(rows, ctx)


def clean_admissions(rows: Rows, ctx: Context, patients: Rows | None) -> None:
    """Admissions; person fields come from their own rows, or from `patients` joined on the patient id."""
    for field in ctx.centre_map["admission_id"]:
        if field != "admit_date":
            require(rows, field, field.replace("_", " "))
    required_date(rows, "admit_date", "admission date", ctx)
    rows.values["local_id"] = local_admission_id(rows, ctx)
    rows.exclude(rows.values["local_id"].duplicated(), tuple(ctx.centre_map["admission_id"]), "duplicate_key",
                 "admission already given by an earlier row (first kept)")
    if patients is None:
        person_identity(rows, ctx)
    else:
        require(rows, "patient_id", "patient id")
        people = patients.values[["person_key", "dob", "dob_file", "dob_row", "dob_column"]].assign(
            patient_id=patients.text("patient_id"))
        joined = rows.text("patient_id").rename("patient_id").to_frame().merge(
            people, on="patient_id", how="left").set_axis(rows.raw.index)
        rows.exclude(joined["person_key"].isna(), "patient_id", "orphan", f"patient id not found in {patients.file}")
        rows.values = rows.values.join(joined.drop(columns="patient_id"))
    rows.values["patient_id"] = rows.text("patient_id")
    rows.values["admission_key"] = admission_key(ctx.centre, rows.values["local_id"], ctx.key)
    for field, what in AFTER_ADMISSION.items():
        optional_date(rows, field, what, ctx)
        handled = "kept as a death at an unknown date" if field == "death_date" else "set to missing"
        before = rows.blank(rows.values[field].dt.normalize() < rows.values["admit_date"].dt.normalize(), field,
                            "implausible_value", f"{what} is before the admission date; {handled}")
        rows.values[field] = rows.values[field].mask(before)
        if field == "death_date":
            rows.values["death_recorded"] = before
    rows.values["diagnosis"], recorded = classified(rows, "diagnosis", "diagnosis", "diagnosis", ctx)
    rows.values["diagnosis_text"] = free_text(rows, "diagnosis", ctx, recorded)
    rows.values["trigger_category"] = coded(rows, "trigger_category", "trigger_category", "trigger", ctx,
                                            "value").astype(object)
    rows.values["trigger_detail"] = free_text(rows, "trigger_detail", ctx)
    for field, what in [("weight_kg", "weight"), ("max_temp_c", "maximum temperature"), ("icu_days", "ICU days")]:
        clinical_number(rows, field, what, ctx)
    for field in ADMISSION_FLAGS:
        rows.values[field] = flag(rows, field, field.replace("_", " "), ctx)
    rows.values["died"] = deaths(rows, flag(rows, "died", "outcome", ctx, group="died"))
    rows.values["age_years"] = age_at_admission(rows)


def deaths(rows: Rows, died: pd.Series) -> pd.Series:
    """A recorded death is never lost: a date of death is a death whatever the outcome says (a
    conflicting `alive` is ledgered as `death_conflict`, a blank one as `death_flag_missing`), and so
    is a date of death set to missing for coming before the admission. A death flag without a date
    stays a death at an unknown date (the cohort lists it among its data conflicts)."""
    dated = rows.values["death_date"].notna() | rows.values.pop("death_recorded")
    rows.blank(dated & died.eq(False).fillna(False), "died", "death_conflict",
               "outcome says alive but a date of death is recorded; counted as a death")
    rows.blank(dated & died.isna(), "died", "death_flag_missing",
               "outcome blank but a date of death is recorded; counted as a death")
    return died.mask(dated, True).astype("boolean")


def age_at_admission(rows: Rows) -> pd.Series:
    """Years from date of birth to admission (days / 365.25, 2 decimals); implausible ages become missing,
    with a scope=value entry on the row holding the date of birth."""
    v = rows.values
    age = ((v["admit_date"] - v["dob"]).dt.days / 365.25).round(2)
    implausible = outside(age, PLAUSIBLE["age_years"])
    lo, hi = PLAUSIBLE["age_years"]
    for (file, column), bad in v[implausible].groupby(["dob_file", "dob_column"]):  # one batch per file
        where = pd.Index(bad["dob_row"].astype("int64").unique())
        rows.ledger.add(file, pd.Series("", index=where, dtype=object), column, "implausible_value",
                        f"age at admission outside {lo}-{hi} years; set to missing", "value")
    return age.mask(implausible)


# ---------------------------------------------------------------------------------------------
# Rows that hang off an admission: dosing, labs, adverse events.


def link_to_admissions(rows: Rows, ctx: Context, admissions: pd.DataFrame) -> None:
    """admission_key and weight of each row's admission; rows without one leave as orphans.

    By default rows carry the centre's admission id. With `link_by_date` (SHF bloods and adverse
    events carry only a patient and a date) a row joins the patient's latest admission starting on
    or before its date, else one starting at most `days_before_admission` days after it.
    """
    link = rows.source.get("link_by_date")
    if link is None:
        fields = tuple(ctx.centre_map["admission_id"])
        for field in fields:
            if field == "admit_date":
                required_date(rows, field, "admission date", ctx)
            else:
                require(rows, field, field.replace("_", " "))
        by_id = admissions.set_index("local_id")
        matched = local_admission_id(rows, ctx).map(by_id["admission_key"])
        reason = "no admission with this id in the centre's admissions (or that admission was excluded)"
    else:
        fields = ("patient_id", link["date"])
        require(rows, "patient_id", "patient id")
        left = pd.DataFrame({"patient_id": rows.text("patient_id"), "when": rows.values[link["date"]]})
        left = left.rename_axis("row").reset_index().sort_values("when", kind="mergesort")
        right = admissions[["patient_id", "admit_date", "discharge_date", "admission_key"]]
        right = right.rename(columns={"admit_date": "when"}).sort_values("when", kind="mergesort")
        before = pd.merge_asof(left, right, on="when", by="patient_id", direction="backward")
        after = pd.merge_asof(left, right, on="when", by="patient_id", direction="forward",
                              tolerance=pd.Timedelta(days=link["days_before_admission"]))
        # A date after the earlier stay ended and shortly before the next admission belongs to the next.
        after_stay = before["discharge_date"].notna() & (before["when"].dt.normalize() > before["discharge_date"])
        use_next = after["admission_key"].notna() & (before["admission_key"].isna() | after_stay)
        matched = before["admission_key"].mask(use_next, after["admission_key"]).set_axis(before["row"])
        matched = matched.reindex(rows.raw.index)
        reason = (f"no admission of this patient starting on or before this date (or up to "
                  f"{link['days_before_admission']} days after it)")
    rows.exclude(matched.isna(), fields, "orphan", reason)
    rows.values["admission_key"] = matched.reindex(rows.raw.index)
    rows.values["weight_kg"] = rows.values["admission_key"].map(admissions.set_index("admission_key")["weight_kg"])


def clean_anakinra(rows: Rows, ctx: Context, admissions: pd.DataFrame) -> None:
    required_date(rows, "start", "dose start date", ctx)
    require(rows, "route", "route")
    rows.values["route"] = coded(rows, "route", "route", "route", ctx, scope="row")
    infusion_route = rows.text("route").str.casefold().isin(ctx.codebook.continuous(rows.column("route")))
    rows.exclude(rows.text("frequency").isna() & ~infusion_route, "frequency", "missing_key",
                 "frequency is empty (required unless the route is a continuous infusion)")
    rows.values["frequency"] = coded(rows, "frequency", "frequency", "frequency", ctx, scope="row")
    rows.values["continuous"] = (infusion_route.reindex(rows.raw.index)
                                 | (rows.values["frequency"] == "CONT")).astype(bool)
    rows.values["frequency"] = rows.values["frequency"].mask(rows.values["continuous"], "CONT")
    link_to_admissions(rows, ctx, admissions)
    optional_date(rows, "stop", "dose stop date", ctx)
    rows.exclude(rows.values["stop"] < rows.values["start"], "stop", "stop_before_start",
                 "stop date is before the start date")
    dose_amounts(rows)
    v = rows.values
    per_day = v["frequency"].map(DOSES_PER_DAY).astype(float)
    v["daily_dose_mg"] = np.where(v["continuous"], v["rate_mg_per_h"] * 24, v["dose_mg"] * per_day)


def dose_amounts(rows: Rows) -> None:
    """dose_mg per dose and rate_mg_per_h from the dose fields; mg/kg and mg/kg/h use the admission weight.

    With `infusion_dose_per_24h` in the map, a plain mg dose of a continuous infusion is the
    amount given over 24 hours (SHF prescribes infusions so), i.e. a rate of dose / 24 mg/h.
    A dose that does not parse or is implausible leaves the row; a per-kg dose of an admission
    without a weight keeps the row (route and dates are known) with its mg dose and rate missing.
    """
    rows.values["dose_mg"] = np.nan
    rows.values["rate_mg_per_h"] = np.nan
    per_24h = rows.source.get("infusion_dose_per_24h", False)
    for field, what in DOSE_FIELDS.items():
        text = rows.text(field)
        parsed = parse_doses(text)
        rows.exclude(text.notna() & parsed["amount"].isna(), field, "unparseable_value",
                     f"{what} is not a dose (expected e.g. 100, 100 mg, 2 mg/kg, 1 mg/kg/h)")
        parsed = parsed.reindex(rows.raw.index)
        per_kg = parsed["per_kg"].astype(bool) | (field == "rate_per_kg")
        per_hour = parsed["per_hour"].astype(bool) | (field != "dose")
        # Route, start and stop are known: the row stays, its mg dose is missing (not evaluable).
        rows.blank(per_kg & parsed["amount"].notna() & rows.values["weight_kg"].isna(), field,
                   "dose_per_kg_without_weight", f"{what} is per kg but the admission has no weight; "
                   "the row is kept with its mg dose missing")
        parsed, per_kg, per_hour = (x.reindex(rows.raw.index) for x in (parsed, per_kg, per_hour))
        over_24h = ~per_hour & rows.values["continuous"] & per_24h
        mg = parsed["amount"] * rows.values["weight_kg"].where(per_kg, 1.0) / np.where(over_24h, 24.0, 1.0)
        per_hour = per_hour | over_24h
        for target, is_target in (("dose_mg", ~per_hour), ("rate_mg_per_h", per_hour)):
            lo, hi = PLAUSIBLE[target]
            rows.exclude(outside(mg.where(is_target), (lo, hi)), field, "implausible_value",
                         f"{what} outside the plausible range {lo}-{hi} {UNITS[target]}")
            rows.values[target] = rows.values[target].fillna(mg.where(is_target).reindex(rows.raw.index))


def clean_labs(rows: Rows, ctx: Context, admissions: pd.DataFrame) -> pd.DataFrame:
    """Long lab rows (one result per row), or a wide sheet (one result per cell; `tests` in the map).

    Returns one row per result: source row, admission_key, sample_time, test, value, qualifier.
    """
    required_date(rows, "sample_time", "sample date/time", ctx, "datetime_formats")
    if "tests" in rows.source:
        link_to_admissions(rows, ctx, admissions)
        return wide_lab_results(rows)
    require(rows, "test", "lab test")
    rows.values["test"] = coded(rows, "test", "lab_test", "lab test", ctx, scope="row")
    require(rows, "result", "result")
    link_to_admissions(rows, ctx, admissions)
    parsed = parse_lab_results(rows.text("result"))
    rows.exclude(parsed["value"].isna(), "result", "unparseable_value",
                 "result is not a number (expected e.g. 12.5, <5, >100000)")
    rows.values["qualifier"] = parsed["qualifier"].reindex(rows.raw.index)  # not parsed's rows: all may have left
    rows.values["value"] = lab_units(rows, ctx, parsed["value"])
    tests = rows.values["test"]
    limits = {t: f"result outside the plausible range {lo}-{hi} {LAB_UNITS[t]}"
              for t, (lo, hi) in LAB_PLAUSIBLE.items()}
    lo = tests.map({t: lo for t, (lo, _) in LAB_PLAUSIBLE.items()})
    hi = tests.map({t: hi for t, (_, hi) in LAB_PLAUSIBLE.items()})
    value = rows.values["value"]
    rows.exclude(~value.between(lo, hi), "result", "implausible_value", tests.map(limits))
    return rows.values[["admission_key", "sample_time", "test", "value", "qualifier"]].rename_axis("row").reset_index()


def lab_units(rows: Rows, ctx: Context, value: pd.Series) -> pd.Series:
    """Check each long-format result's printed unit against its test and convert it to the canonical unit.

    Units are compared after `units.normalise_unit` (case, spaces, micro and power-of-ten
    spellings); a unit the test may be printed in (`units.KNOWN_UNITS`, plus the map's
    `lab_unit_conversions`) converts; an empty unit means the canonical one; any other unit
    cannot be converted, so the row leaves (`unknown_unit`)."""
    tests = rows.values["test"]
    table = unit_table(ctx.centre_map.get("lab_unit_conversions", {}))
    keys = table["test"] + "|" + table["unit"]
    pair = tests + "|" + normalise_unit(rows.text("unit")).fillna("")
    accepted = {test: ", ".join(sorted(group["unit"])) for test, group in table.groupby("test")}
    reason = ("unit cannot be converted to the canonical " + tests.map(LAB_UNITS) + " (units known for this test: "
              + tests.map(accepted).fillna("none") + ")")
    rows.exclude(rows.text("unit").notna() & ~pair.isin(list(keys)), "unit", "unknown_unit", reason)
    value, pair = value.reindex(rows.raw.index), pair.reindex(rows.raw.index)
    specs = dict(zip(keys, table["spec"]))
    for key in pair[pair.isin([k for k, spec in specs.items() if spec])].unique():  # one pass per unit present
        hit = pair == key
        value[hit] = convert(value[hit], specs[key])
    return value


def wide_lab_results(rows: Rows) -> pd.DataFrame:
    """One result per non-empty cell of the `tests` columns; a bad cell is a scope=value entry."""
    batches = []
    for column, spec in rows.source["tests"].items():  # one pass per test column (a fixed, small number)
        if column not in rows.raw.columns:
            continue
        text = rows.raw[column].dropna()
        test = spec["test"]
        lo, hi = LAB_PLAUSIBLE[test]
        parsed = parse_lab_results(text)
        value = convert(parsed["value"], spec)
        unparseable = parsed["value"].isna()
        implausible = outside(value, (lo, hi))
        rows.ledger.add(rows.file, text[unparseable], column, "unparseable_value",
                        "result is not a number (expected e.g. 12.5, <5, >100000); cell ignored", "value")
        rows.ledger.add(rows.file, text[implausible], column, "implausible_value",
                        f"result outside the plausible range {lo}-{hi} {LAB_UNITS[test]}; cell ignored", "value")
        keep = ~unparseable & ~implausible
        batches.append(pd.DataFrame({"row": text.index[keep], "test": test, "value": value[keep].to_numpy(),
                                     "qualifier": parsed["qualifier"][keep].to_numpy()}))
    results = (pd.concat(batches, ignore_index=True) if batches
               else pd.DataFrame(columns=["row", "test", "value", "qualifier"]))
    results = results.astype({"row": "int64", "value": float})
    return results.join(rows.values[["admission_key", "sample_time"]], on="row")


def clean_adverse_events(rows: Rows, ctx: Context, admissions: pd.DataFrame) -> None:
    required_date(rows, "event_date", "event date", ctx)
    require(rows, "grade", "CTCAE grade")
    grade_text = rows.text("grade")
    grade = pd.to_numeric(grade_text.str.extract(GRADE, flags=re.IGNORECASE)[0], errors="coerce")
    choices = ctx.codebook.labels(rows.column("grade"))
    if choices:  # REDCap: the code must also be one the data dictionary lists
        grade = grade.where(grade_text.isin(list(choices)))
    rows.exclude(grade.isna(), "grade", "unknown_code", "CTCAE grade is not one of 1-5")
    rows.values["grade"] = grade.reindex(rows.raw.index).astype("Int64")
    rows.values["term"], recorded = classified(rows, "term", "term", "adverse event", ctx)
    rows.values["term_text"] = free_text(rows, "term", ctx, recorded)
    link_to_admissions(rows, ctx, admissions)
    rows.values["serious"] = flag(rows, "serious", "serious", ctx)
