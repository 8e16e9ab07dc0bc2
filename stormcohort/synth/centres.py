"""The three centres' export formats (registry-extracts.md), and the dirt each one carries.

Each renderer returns ``Table`` objects whose frames are already in the final row order and
hold the final cell values, plus one dirt record per injected dirty value. A dirt record
points at its row through the table's ``_key`` column (a float that orders the rows, so a
duplicated row can be slotted in right after its original at ``key + 0.5``); the row number a
human sees is worked out once the table is final (``finalise``).

Expected ingest behaviour per dirt record, following the shared cleaning policy:
``row_excluded`` (with rule, scope=row), ``value_missing`` (rule, scope=value),
``kept_with_note`` (the value read and kept; rule, scope=value), ``kept_with_qualifier``,
``parsed`` and ``missing`` (an empty cell a planted case left: read as missing) with no ledger
entry. A planted case's records carry its name in ``case`` (synth/cases.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stormcohort.canonical import AE_TERMS, LAB_UNITS
from stormcohort.synth import formats
from stormcohort.synth.clinical import TESTS, Simulation, rng
from stormcohort.synth.identities import with_spaces

LDN_CODES = {"ferritin": "FERR", "crp": "CRP", "platelets": "PLT", "hb": "HB", "wbc": "WBC", "neutrophils": "NEUT",
             "fibrinogen": "FIB", "triglycerides": "TRIG", "alt": "ALT", "ast": "AST", "bilirubin": "BILI",
             "creatinine": "CREAT", "scd25": "SCD25"}
UK_DECIMALS = {"ferritin": 0, "crp": 0, "platelets": 0, "hb": 0, "wbc": 1, "neutrophils": 2, "fibrinogen": 2,
               "triglycerides": 2, "alt": 0, "ast": 0, "bilirubin": 0, "creatinine": 0, "scd25": 0}
SHF_BLOODS = {"ferritin": "Ferritin (ug/L)", "crp": "CRP (mg/L)", "platelets": "Platelets (10^9/L)", "hb": "Hb (g/L)",
              "wbc": "WBC (10^9/L)", "neutrophils": "Neutrophils (10^9/L)", "fibrinogen": "Fibrinogen (g/L)",
              "triglycerides": "Triglycerides (mmol/L)", "alt": "ALT (U/L)", "ast": "AST (U/L)",
              "bilirubin": "Bilirubin (umol/L)", "creatinine": "Creatinine (umol/L)", "scd25": "sCD25 (U/mL)"}
# BHM (US units): field, factor from canonical units, decimals.
BHM_LABS = {"ferritin": ("ferritin_ngml", 1, 0), "crp": ("crp_mgdl", 0.1, 2), "platelets": ("plt_kul", 1, 0),
            "hb": ("hgb_gdl", 0.1, 1), "wbc": ("wbc_kul", 1, 1), "neutrophils": ("anc_kul", 1, 2),
            "fibrinogen": ("fibrinogen_mgdl", 100, 0), "triglycerides": ("tg_mgdl", 88.57, 0),
            "alt": ("alt_ul", 1, 0), "ast": ("ast_ul", 1, 0), "bilirubin": ("tbili_mgdl", 1 / 17.1, 1),
            "creatinine": ("creat_mgdl", 1 / 88.4, 2), "scd25": ("scd25_uml", 1, 0)}

DIAGNOSIS_TEXT = {
    "LDN": {"shlh": "Secondary HLH", "mas": "Macrophage activation syndrome", "fhlh": "Familial HLH", "other": "Sepsis"},
    "SHF": {"shlh": "Secondary HLH", "mas": "MAS", "fhlh": "Familial HLH", "other": "Sepsis"},
}
BHM_CODES = {
    "sex": {"M": 1, "F": 2}, "dx": {"shlh": 1, "mas": 2, "fhlh": 3, "other": 4},
    "trigger": {"infection": 1, "rheumatic": 2, "malignancy": 3, "idiopathic": 4},
    "freq": {"OD": 1, "BD": 2, "TDS": 3, "QDS": 4, "CONT": 5}, "bm": {"no": 0, "yes": 1, "not_done": 2},
}
AE_TEXT = {
    "LDN": {"alt_ast_increased": ("Transaminitis",), "bacterial_infection": ("Line infection", "Pneumonia", "Cellulitis",
            "Urinary tract infection"), "fungal_infection": ("Candidaemia", "Invasive aspergillosis"),
            "viral_infection": ("CMV reactivation", "Herpes zoster"), "injection_site_reaction": ("Injection site reaction",),
            "infusion_reaction": ("Infusion reaction",), "neutropenia": ("Neutropenia",),
            "thrombocytopenia": ("Thrombocytopenia",), "dress_eosinophilia": ("DRESS",)},
    "SHF": {"alt_ast_increased": ("Raised transaminases", "Transaminitis"), "bacterial_infection": ("Chest infection",
            "Line infection", "Urinary tract infection"), "fungal_infection": ("Candidaemia",),
            "viral_infection": ("CMV reactivation", "Herpes zoster"), "injection_site_reaction": ("Injection-site reaction",),
            "infusion_reaction": ("Infusion reaction",), "neutropenia": ("Neutropenia",),
            "thrombocytopenia": ("Thrombocytopenia",), "dress_eosinophilia": ("DRESS syndrome",)},
}
FATAL_INFECTION_TEXT = "Pneumonia"
UNKNOWN_ROUTE = {"LDN": "IM", "SHF": "intramuscular", "BHM": "4"}  # codes no map knows
SHF_TITLE = "SHF secondary HLH / MAS registry"


@dataclass
class Table:
    centre: str
    file: str
    frame: pd.DataFrame           # final cell values plus the ordering column `_key`
    sheet: str | None = None
    first_row: int = 2            # row number of the first data row (header = 1; SHF titles push it to 4)
    encoding: str = "utf-8"
    newline: str = "\n"


@dataclass
class Rendered:
    tables: list[Table] = field(default_factory=list)
    dirt: list[pd.DataFrame] = field(default_factory=list)
    local_ids: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))  # admission row -> local id

    def note(self, table: Table, keys, column: str | None, values, expected: str, rule: str | None = None,
             scope: str | None = None, identifier: bool = False, case: str | None = None) -> None:
        keys = np.asarray(keys, dtype=float)
        cells = pd.Series(list(values), dtype=object)
        text = cells.astype(str).where(cells.notna(), "")
        values = ["<redacted>"] * len(keys) if identifier else text.tolist()
        self.dirt.append(pd.DataFrame({"centre": table.centre, "file": table.file, "sheet": table.sheet, "_key": keys,
                                       "column": column, "value": values, "expected": expected, "rule": rule,
                                       "scope": scope, "case": case}, index=range(len(keys))))


DIRT_COLUMNS = ["centre", "file", "sheet", "row", "column", "value", "expected", "rule", "scope", "case"]

# The cells each planted case changes: (table, field, expected, rule); fields by centre below.
CASE_CELLS = {
    "dose_per_kg_without_weight": (("admissions", "weight_kg", "missing", None),
                                   ("dosing", "dose", "value_missing", "dose_per_kg_without_weight")),
    "death_flag_without_date": (("admissions", "death_date", "missing", None),),
    "death_date_without_flag": (("admissions", "died", "missing", None),),
    "no_follow_up_dates": (("admissions", "discharge", "missing", None), ("admissions", "last_seen", "missing", None),
                           ("dosing", "stop", "missing", None)),
    "fever_resolved_before_index": (("admissions", "fever_resolution", "parsed", None),),
    "transfer_discharge_missing": (("admissions", "discharge", "missing", None),
                                   ("admissions", "last_seen", "missing", None)),
    "iso_admission_date": (("admissions", "admit", "kept_with_note", "date_format_differs"),),
}
CASE_FIELDS = {
    "LDN": {"admit": "Admit_Date", "discharge": "Discharge_Date", "weight_kg": "Weight_kg", "died": "Outcome",
            "death_date": "Date_of_Death", "last_seen": "Last_Seen_Date", "fever_resolution": "Fever_Resolution_Date",
            "stop": "Stop_Date"},
    "SHF": {"admit": "Admission date", "discharge": "Discharge date", "weight_kg": "Weight (kg)", "died": "Status",
            "death_date": "Date of death", "last_seen": "Date last seen", "fever_resolution": "Afebrile date",
            "stop": "To", "dose": "Dose"},
    "BHM": {"admit": "adm_date", "discharge": "dc_date", "weight_kg": "weight_kg", "died": "died",
            "death_date": "death_date", "last_seen": "last_fu_date", "fever_resolution": "afebrile_date",
            "stop": "ana_stop"},
}


def note_cases(out: Rendered, table: Table, case: np.ndarray, role: str, fields: tuple[str, ...] | None = None) -> None:
    """Note the cells planted cases changed in one table; `case` names each row's case ('' for none)."""
    columns = CASE_FIELDS[table.centre]
    case = np.asarray(case, dtype=object)
    for name, cells in CASE_CELLS.items():
        keys = np.flatnonzero(case == name)
        for where, name_of_field, expected, rule in cells:
            if where == role and name_of_field in columns and (fields is None or name_of_field in fields) and len(keys):
                column = columns[name_of_field]
                out.note(table, keys.astype(float), column, table.frame.loc[keys, column], expected, rule,
                         "value" if rule else None, case=name)


def keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as objects (so a date cell can later be overwritten by text), plus the row order."""
    return frame.astype(object).reset_index(drop=True).assign(_key=np.arange(len(frame), dtype=float))


def duplicate_rows(out: Rendered, table: Table, n: int, r: np.random.Generator, avoid: np.ndarray) -> None:
    """Repeat n rows right after themselves (an export that joined twice)."""
    frame = table.frame
    choices = frame.index[~frame["_key"].isin(avoid)]
    picked = frame.loc[np.sort(r.choice(choices, size=min(n, len(choices)), replace=False))]
    copies = picked.assign(_key=picked["_key"] + 0.5)
    table.frame = pd.concat([frame, copies]).sort_values("_key", kind="stable").reset_index(drop=True)
    out.note(table, copies["_key"], None, [""] * len(copies), "row_excluded", "duplicate_row", "row")


def dirty_keys(out: Rendered, table: Table) -> np.ndarray:
    dirt = pd.concat(out.dirt, ignore_index=True) if out.dirt else pd.DataFrame(columns=["file", "sheet", "_key"])
    return dirt.loc[(dirt["file"] == table.file) & (dirt["sheet"].fillna("") == (table.sheet or "")), "_key"].to_numpy()


def finalise(out: Rendered) -> pd.DataFrame:
    """The dirt records with each `_key` replaced by the row number a human sees."""
    dirt = pd.concat(out.dirt, ignore_index=True)
    dirt["row"] = 0
    for t in out.tables:  # frames are sorted by _key
        mine = (dirt["file"] == t.file) & (dirt["sheet"].fillna("") == (t.sheet or ""))
        dirt.loc[mine, "row"] = np.searchsorted(t.frame["_key"].to_numpy(), dirt.loc[mine, "_key"].to_numpy()) + t.first_row
    return dirt[DIRT_COLUMNS]


def ae_text(centre: str, terms: pd.Series, grade: pd.Series, r: np.random.Generator) -> np.ndarray:
    """The centre's free text for each event, varied among its usual wordings."""
    terms, variant = np.asarray(terms), r.integers(0, 12, len(terms))
    text = np.full(len(terms), "", dtype=object)
    for term, wordings in AE_TEXT[centre].items():
        mine = terms == term
        text[mine] = np.array(wordings, dtype=object)[variant[mine] % len(wordings)]
    return np.where(np.asarray(grade) == 5, FATAL_INFECTION_TEXT, text)


# ----------------------------------------------------------------------------- extra dosing rows
def extra_dosing_rows(sim: Simulation, n: int, seed: int) -> pd.DataFrame:
    """Rows a clerk added by mistake: a stop date typed with last year's year (stop before
    start) and a route code nobody maps. Both belong to cohort admissions and start after the
    first dose, so their loss leaves index dates and route groups unchanged; the unknown-route
    rows go to IV patients, so even a reader that guessed the code could not move them. Never
    a planted case's admission (a stop date would spoil the one without follow-up dates)."""
    r = rng(seed, 20)
    adm = sim.admissions
    first = sim.dosing.drop_duplicates("adm").set_index("adm")
    cohort = adm.index[adm["kind"].eq("cohort") & adm["case"].eq("") & adm.index.isin(first.index)]
    parts = []
    for kind, order, pool in (("stop_before_start", ("LDN", "SHF", "BHM"), cohort),
                              ("unknown_route", ("BHM", "LDN", "SHF"), cohort[adm.loc[cohort, "route_group"].eq("IV")])):
        # Round robin over the centres in `order`, a centre without candidates simply skipped.
        pool = pd.DataFrame({"adm": r.permutation(pool)})
        pool["centre"] = adm.loc[pool["adm"], "centre"].to_numpy()
        pool["turn"] = pool.groupby("centre").cumcount()
        pool["preference"] = pool["centre"].map({c: i for i, c in enumerate(order)})
        chosen = pool.sort_values(["turn", "preference"], kind="stable")["adm"].head(n).to_numpy()
        rows = first.loc[chosen].reset_index()
        rows["start"] = rows["start"] + pd.Timedelta(days=1 if kind == "unknown_route" else 2)
        rows["stop"] = rows["start"] + pd.Timedelta(days=1) if kind == "unknown_route" else \
            rows["start"] + pd.Timedelta(days=3) - pd.DateOffset(years=1)
        parts.append(rows.assign(dirt=kind))
    return pd.concat(parts, ignore_index=True)


def dosing_with_extras(sim: Simulation, extras: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([sim.dosing.assign(dirt=""), extras], ignore_index=True) \
        .sort_values(["adm", "dirt", "start"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- LDN
def render_ldn(sim: Simulation, dosing: pd.DataFrame, nhs_spaced: pd.Series, n_dirt: int, seed: int) -> Rendered:
    r = rng(seed, 21)
    out = Rendered()
    adm = sim.admissions[sim.admissions["centre"].eq("LDN")].copy()
    ids = r.choice(9_000_000, size=len(adm) + n_dirt, replace=False) + 1_000_000
    adm["local"] = np.char.add("ADM", ids[: len(adm)].astype(str))
    out.local_ids = adm["local"]
    persons = sim.persons.loc[adm["person"].unique()].sort_values("mrn_LDN")

    nhs = np.where(nhs_spaced.reindex(persons.index, fill_value=False), with_spaces(persons["nhs"]), persons["nhs"])
    patients = Table("LDN", "patients.csv", keyed(pd.DataFrame({
        "MRN": persons["mrn_LDN"].to_numpy(), "NHS_Number": nhs, "Surname": persons["surname"].to_numpy(),
        "Forename": persons["forename"].to_numpy(), "DOB": formats.text_dates(persons["dob"], "%d/%m/%Y"),
        "Sex": persons["sex"].to_numpy(), "Postcode": persons["postcode"].to_numpy()})))
    spaced = patients.frame["NHS_Number"].str.contains(" ")
    out.note(patients, patients.frame.loc[spaced, "_key"], "NHS_Number", [None] * spaced.sum(), "parsed", identifier=True)

    adm = adm.sort_values(["admit", "local"], kind="stable")
    yn = lambda col: formats.flags(adm[col], "Y", "N")  # noqa: E731
    frame = pd.DataFrame({
        "MRN": sim.persons.loc[adm["person"], "mrn_LDN"].to_numpy(), "Admission_ID": adm["local"].to_numpy(),
        "Admit_Date": np.where(adm["case"].eq("iso_admission_date"), formats.text_dates(adm["admit"], "%Y-%m-%d"),
                               formats.text_dates(adm["admit"], "%d/%m/%Y")),
        "Discharge_Date": formats.text_dates(adm["discharge"], "%d/%m/%Y"),
        "Primary_Diagnosis": adm["diagnosis"].map(DIAGNOSIS_TEXT["LDN"]).to_numpy(),
        "Trigger_Category": adm["trigger_category"].str.capitalize().to_numpy(),
        "Trigger_Detail": adm["trigger_detail"].to_numpy(),
        "Weight_kg": formats.text_numbers(adm["weight_kg"], 1), "Max_Temp_C": formats.text_numbers(adm["max_temp_c"], 1),
        "Hepatomegaly": yn("hepatomegaly"), "Splenomegaly": yn("splenomegaly"),
        "Known_Immunosuppression": yn("immunosuppression"),
        "BM_Haemophagocytosis": adm["bm_haemophagocytosis"].map({"yes": "Y", "no": "N", "not_done": "Not done"}).to_numpy(),
        "ICU_Admission": yn("icu"), "ICU_Days": formats.text_numbers(adm["icu_days"], 0),
        "SC_Oedema": yn("oedema"), "Neuro_Involvement": yn("cns"),
        "Outcome": np.where(adm["outcome_recorded"], np.where(adm["died"], "Died", "Alive"), ""),
        "Date_of_Death": formats.text_dates(adm["death_date"], "%d/%m/%Y"),
        "Last_Seen_Date": formats.text_dates(adm["last_seen"], "%d/%m/%Y"),
        "Fever_Resolution_Date": formats.text_dates(adm["fever_resolution"], "%d/%m/%Y"),
    })
    admissions = Table("LDN", "admissions.csv", keyed(frame))
    # A weight typed in grams.
    grams = r.choice(len(frame), size=min(n_dirt, len(frame)), replace=False)
    admissions.frame.loc[grams, "Weight_kg"] = (adm["weight_kg"].to_numpy()[grams] * 1000).round().astype(int).astype(str)
    out.note(admissions, grams.astype(float), "Weight_kg", admissions.frame.loc[grams, "Weight_kg"], "value_missing",
             "implausible_value", "value")
    note_cases(out, admissions, adm["case"].to_numpy(), "admissions")

    order = adm.index  # child files follow the admissions' order
    rank = pd.Series(np.arange(len(order)), index=order)
    dose = dosing[dosing["adm"].isin(order)].copy()
    dose = dose.assign(_rank=dose["adm"].map(rank)).sort_values(["_rank", "dirt", "start"], kind="stable")
    cont = dose["continuous"].to_numpy()
    frequency = np.where(dose["route"].eq("IV") & dose["frequency"].eq("QDS"), "6-hourly",
                         dose["frequency"].replace({"CONT": "Continuous"}))
    route = np.where(dose["dirt"].eq("unknown_route"), UNKNOWN_ROUTE["LDN"], dose["route"])
    frame = pd.DataFrame({
        "Admission_ID": dose["adm"].map(out.local_ids).to_numpy(),
        "Start_Date": formats.text_dates(dose["start"], "%d/%m/%Y"), "Stop_Date": formats.text_dates(dose["stop"], "%d/%m/%Y"),
        "Route": route, "Dose_mg": np.where(cont, "", formats.text_numbers(dose["dose_mg"], 1)), "Frequency": frequency,
        "Infusion_Rate_mg_per_h": formats.text_numbers(dose["rate_mg_per_h"], 1),
    })
    anakinra = Table("LDN", "anakinra.csv", keyed(frame))
    _note_extras(out, anakinra, dose["dirt"].to_numpy(), "Route", "Stop_Date")
    note_cases(out, anakinra, dose["adm"].map(adm["case"]).to_numpy(), "dosing")
    # Doses typed with their unit: '100 mg', '100mg' (parsed, no ledger entry).
    plain = np.flatnonzero(~cont & dose["dirt"].eq("").to_numpy())
    typed = np.sort(r.choice(plain, size=max(n_dirt, len(plain) // 7), replace=False))
    unit = np.where(r.random(len(typed)) < 0.5, " mg", "mg")
    anakinra.frame.loc[typed, "Dose_mg"] = anakinra.frame.loc[typed, "Dose_mg"] + unit
    out.note(anakinra, typed.astype(float), "Dose_mg", anakinra.frame.loc[typed, "Dose_mg"], "parsed")
    duplicate_rows(out, anakinra, n_dirt, r, dirty_keys(out, anakinra))

    labs = sim.labs[sim.labs["adm"].isin(order)]
    labs = labs.assign(_rank=labs["adm"].map(rank)).sort_values(["_rank", "sample_time", "test"], kind="stable")
    value = labs["value"].to_numpy().copy()
    is_crp, is_ferr = labs["test"].eq("crp").to_numpy(), labs["test"].eq("ferritin").to_numpy()
    # The lab prints results beyond its assay's range as '<5' (CRP) and '>100000' (ferritin);
    # at least n_dirt late CRPs of recovering patients are below 5.
    late_crp = np.flatnonzero(is_crp & ~labs["near_baseline"].to_numpy() & (labs["day"].to_numpy() >= 7))
    short = max(0, n_dirt - int((value[is_crp] < 5).sum()))
    low = r.choice(late_crp, size=min(short, len(late_crp)), replace=False)
    value[low] = r.uniform(1, 4.6, len(low))
    decimals = labs["test"].map(UK_DECIMALS).to_numpy()
    result = np.where(decimals == 0, formats.text_numbers(value, 0), np.where(decimals == 1, formats.text_numbers(value, 1),
                                                                                formats.text_numbers(value, 2)))
    below, above = is_crp & (value < 5), is_ferr & (value > 100_000)
    result = np.where(below, "<5", np.where(above, ">100000", result))
    # The ferritin_below_500 case: the diagnostic sample's ferritin printed '<500'.
    under_500 = is_ferr & labs["adm"].map(adm["case"]).eq("ferritin_below_500").to_numpy() & (labs["day"].to_numpy() == -1)
    result = np.where(under_500, "<500", result)
    frame = pd.DataFrame({
        "Admission_ID": labs["adm"].map(out.local_ids).to_numpy(),
        "Sample_Time": formats.text_dates(labs["sample_time"], "%d/%m/%Y %H:%M"),
        "Test": labs["test"].map(LDN_CODES).to_numpy(), "Result": result, "Units": labs["test"].map(LAB_UNITS).to_numpy(),
    })
    # A haemolysed sample, never one that could be the baseline.
    late = np.flatnonzero(~labs["near_baseline"].to_numpy() & labs["test"].isin(["ast", "alt"]).to_numpy())
    haem = np.sort(r.choice(late, size=min(n_dirt, len(late)), replace=False))
    frame.loc[haem, "Result"] = "haemolysed"
    # A result filed under an admission number that is not in the extract.
    orphan_ids = np.char.add("ADM", ids[len(adm):].astype(str))
    orphans = frame.iloc[r.choice(len(frame), size=n_dirt)].assign(Admission_ID=orphan_ids, Test="CRP", Units="mg/L",
                                                                  Result=formats.text_numbers(r.uniform(20, 200, n_dirt), 0))
    frame = pd.concat([frame, orphans], ignore_index=True)
    lab_table = Table("LDN", "labs.csv", keyed(frame))
    n = len(frame)
    out.note(lab_table, np.flatnonzero(below).astype(float), "Result", ["<5"] * below.sum(), "kept_with_qualifier")
    out.note(lab_table, np.flatnonzero(above).astype(float), "Result", [">100000"] * above.sum(), "kept_with_qualifier")
    out.note(lab_table, np.flatnonzero(under_500).astype(float), "Result", ["<500"] * under_500.sum(),
             "kept_with_qualifier", case="ferritin_below_500")
    out.note(lab_table, haem.astype(float), "Result", ["haemolysed"] * len(haem), "row_excluded", "unparseable_value", "row")
    out.note(lab_table, np.arange(n - n_dirt, n, dtype=float), "Admission_ID", orphan_ids, "row_excluded", "orphan", "row")
    duplicate_rows(out, lab_table, n_dirt, r, dirty_keys(out, lab_table))

    ae = sim.adverse_events[sim.adverse_events["adm"].isin(order)]
    ae = ae.assign(_rank=ae["adm"].map(rank)).sort_values(["_rank", "event_date"], kind="stable")
    events = Table("LDN", "adverse_events.csv", keyed(pd.DataFrame({
        "Admission_ID": ae["adm"].map(out.local_ids).to_numpy(), "Event_Date": formats.text_dates(ae["event_date"], "%d/%m/%Y"),
        "Event": ae_text("LDN", ae["term"], ae["grade"], r), "CTCAE_Grade": ae["grade"].astype(str).to_numpy(),
        "Serious": formats.flags(ae["serious"], "Y", "N")})))
    out.tables += [patients, admissions, anakinra, lab_table, events]
    for t in out.tables:
        t.encoding, t.newline = "utf-8-sig", "\r\n"
    return out


def _note_extras(out: Rendered, table: Table, dirt: np.ndarray, route_col: str, stop_col: str) -> None:
    unknown, backwards = np.flatnonzero(dirt == "unknown_route"), np.flatnonzero(dirt == "stop_before_start")
    out.note(table, unknown.astype(float), route_col, table.frame.loc[unknown, route_col], "row_excluded", "unknown_code", "row")
    out.note(table, backwards.astype(float), stop_col, table.frame.loc[backwards, stop_col], "row_excluded",
             "stop_before_start", "row")


# ----------------------------------------------------------------------------- SHF
SHF_FREQUENCY = {"OD": "once daily", "BD": "twice daily", "TDS": "three times daily", "QDS": "6 hourly", "CONT": "continuous"}


def _missing_as_na(values: np.ndarray, r: np.random.Generator, p_na: float = 0.6) -> np.ndarray:
    """The SHF clerks write 'NA' in most empty cells and leave the rest blank."""
    values = pd.Series(values, dtype=object).to_numpy()  # datetimes stay Timestamps
    empty = pd.isna(values) | (values == "")
    values[empty] = np.where(r.random(empty.sum()) < p_na, "NA", None)
    return values


def render_shf(sim: Simulation, dosing: pd.DataFrame, nhs_spaced: pd.Series, n_dirt: int, seed: int) -> Rendered:
    r = rng(seed, 22)
    out = Rendered()
    adm = sim.admissions[sim.admissions["centre"].eq("SHF")].copy()
    adm["mrn"] = sim.persons.loc[adm["person"], "mrn_SHF"].to_numpy()
    adm = adm.sort_values(["admit", "mrn"], kind="stable")
    out.local_ids = pd.Series("Patients row " + pd.Series(np.arange(len(adm)) + 4).astype(str).to_numpy(), index=adm.index)
    who = sim.persons.loc[adm["person"]]
    spaced = nhs_spaced.reindex(adm["person"], fill_value=False).to_numpy()
    nhs = np.where(spaced, with_spaces(who["nhs"]), who["nhs"].astype("int64")).astype(object)
    yes_no = lambda col: formats.flags(adm[col], "Yes", "No")  # noqa: E731
    frame = pd.DataFrame({
        "Hospital number": adm["mrn"].to_numpy(), "NHS no.": nhs,
        "Name": (who["surname"].str.upper() + ", " + who["forename"]).to_numpy(),
        "Date of birth": formats.excel_dates(who["dob"]), "Gender": who["sex"].map({"M": "Male", "F": "Female"}).to_numpy(),
        "Admission date": formats.excel_dates(adm["admit"]), "Discharge date": formats.excel_dates(adm["discharge"]),
        "Diagnosis": adm["diagnosis"].map(DIAGNOSIS_TEXT["SHF"]).to_numpy(),
        "Trigger": adm["trigger_category"].str.capitalize().to_numpy(),
        "Trigger detail": _missing_as_na(adm["trigger_detail"].to_numpy(), r),
        "Weight (kg)": _missing_as_na(formats.excel_numbers(adm["weight_kg"], 1), r),
        "Peak temperature (°C)": formats.excel_numbers(adm["max_temp_c"], 1),
        "Liver enlarged": yes_no("hepatomegaly"), "Spleen enlarged": yes_no("splenomegaly"),
        "Immunosuppressed": yes_no("immunosuppression"),
        "Marrow haemophagocytosis": adm["bm_haemophagocytosis"].map({"yes": "Yes", "no": "No", "not_done": "NA"}).to_numpy(),
        "Critical care": yes_no("icu"), "Critical care days": _missing_as_na(formats.excel_numbers(adm["icu_days"], 0), r),
        "Oedema": yes_no("oedema"), "CNS involvement": yes_no("cns"),
        "Status": _missing_as_na(np.where(adm["outcome_recorded"], np.where(adm["died"], "Deceased", "Alive"), ""), r),
        "Date of death": _missing_as_na(formats.excel_dates(adm["death_date"]), r),
        "Date last seen": _missing_as_na(formats.excel_dates(adm["last_seen"]), r),
        "Afebrile date": _missing_as_na(formats.excel_dates(adm["fever_resolution"]), r),
    })
    frame["Discharge date"] = _missing_as_na(frame["Discharge date"].to_numpy(), r)
    patients = Table("SHF", "SHF_HLH_registry.xlsx", keyed(frame), sheet="Patients", first_row=4)
    out.note(patients, np.flatnonzero(spaced).astype(float), "NHS no.", [None] * spaced.sum(), "parsed", identifier=True)
    note_cases(out, patients, adm["case"].to_numpy(), "admissions")
    # Discharge dates a clerk typed as text ('03-Feb-2019').
    typed = np.flatnonzero(adm["kind"].eq("cohort").to_numpy() & adm["discharge"].notna().to_numpy())
    typed = np.sort(r.choice(typed, size=min(n_dirt, len(typed)), replace=False))
    patients.frame.loc[typed, "Discharge date"] = formats.clerk_date(adm["discharge"].to_numpy()[typed])
    out.note(patients, typed.astype(float), "Discharge date", patients.frame.loc[typed, "Discharge date"], "parsed")

    rank = pd.Series(np.arange(len(adm)), index=adm.index)
    dose = dosing[dosing["adm"].isin(adm.index)]
    dose = dose.assign(_rank=dose["adm"].map(rank)).sort_values(["_rank", "dirt", "start"], kind="stable")
    iv, cont = dose["route"].eq("IV").to_numpy(), dose["continuous"].to_numpy()
    route = np.where(cont, "i.v. infusion", np.where(iv, "intravenous", np.where(r.random(len(dose)) < 0.3, "s/c", "subcutaneous")))
    route = np.where(dose["dirt"].eq("unknown_route"), UNKNOWN_ROUTE["SHF"], route)
    # Infusions are prescribed as the amount per 24 hours.
    amount = np.where(cont, np.round(dose["rate_mg_per_h"].to_numpy() * 24), dose["dose_mg"].to_numpy())
    per_kg = dose["dose_per_kg"].notna().to_numpy()
    dose_text = np.where(per_kg, "2mg/kg", np.char.add(formats.text_numbers(amount, 1).astype(str), "mg"))
    frame = pd.DataFrame({
        "Hospital number": adm.loc[dose["adm"], "mrn"].to_numpy(), "Admission date": formats.excel_dates(adm.loc[dose["adm"], "admit"]),
        "Route": route, "Dose": dose_text, "Frequency": dose["frequency"].map(SHF_FREQUENCY).to_numpy(),
        "From": formats.excel_dates(dose["start"]), "To": _missing_as_na(formats.excel_dates(dose["stop"]), r),
    })
    dosing_sheet = Table("SHF", "SHF_HLH_registry.xlsx", keyed(frame), sheet="Dosing", first_row=4)
    _note_extras(out, dosing_sheet, dose["dirt"].to_numpy(), "Route", "To")
    case = dose["adm"].map(adm["case"]).to_numpy()
    note_cases(out, dosing_sheet, case, "dosing", fields=("stop",))
    # '2mg/kg' with the weight recorded is parsed; the case without a weight leaves the mg dose missing.
    note_cases(out, dosing_sheet, np.where(per_kg, case, ""), "dosing", fields=("dose",))
    weighed = per_kg & (case != "dose_per_kg_without_weight")
    out.note(dosing_sheet, np.flatnonzero(weighed).astype(float), "Dose", ["2mg/kg"] * weighed.sum(), "parsed")
    # A later dose's start typed as text (never an admission's first dose).
    later = np.flatnonzero(dose["adm"].duplicated().to_numpy() & dose["dirt"].eq("").to_numpy() & ~per_kg)
    typed = np.sort(r.choice(later, size=min(n_dirt, len(later)), replace=False))
    dosing_sheet.frame.loc[typed, "From"] = formats.clerk_date(dose["start"].to_numpy()[typed])
    out.note(dosing_sheet, typed.astype(float), "From", dosing_sheet.frame.loc[typed, "From"], "parsed")

    labs = sim.labs[sim.labs["adm"].isin(adm.index)].assign(date=lambda d: d["sample_time"].dt.normalize())
    wide = labs.set_index(["adm", "date", "test"])["value"].unstack("test").reindex(columns=list(TESTS))
    near = labs.groupby(["adm", "date"])["near_baseline"].any().reindex(wide.index)
    order = np.lexsort((wide.index.get_level_values("date"), wide.index.get_level_values("adm").map(rank)))
    wide, near = wide.iloc[order], near.iloc[order].to_numpy()
    adm_of_row = wide.index.get_level_values("adm")
    frame = pd.DataFrame({"Hospital number": adm.loc[adm_of_row, "mrn"].to_numpy(),
                          "Date": formats.excel_dates(wide.index.get_level_values("date"))})
    for test in TESTS:
        frame[SHF_BLOODS[test]] = _missing_as_na(formats.excel_numbers(wide[test], UK_DECIMALS[test] + (test == "crp")), r, 0.05)
    bloods = Table("SHF", "SHF_HLH_registry.xlsx", keyed(frame), sheet="Bloods", first_row=4)
    # A haemolysed AST: one cell of a sample that is not a baseline one (the rest of the row stays).
    candidates = np.flatnonzero(~near & wide["ast"].notna().to_numpy())
    haem = np.sort(r.choice(candidates, size=min(n_dirt, len(candidates)), replace=False))
    bloods.frame.loc[haem, SHF_BLOODS["ast"]] = "haemolysed"
    out.note(bloods, haem.astype(float), SHF_BLOODS["ast"], ["haemolysed"] * len(haem), "value_missing",
             "unparseable_value", "value")
    duplicate_rows(out, bloods, n_dirt, r, dirty_keys(out, bloods))

    ae = sim.adverse_events[sim.adverse_events["adm"].isin(adm.index)]
    ae = ae.assign(_rank=ae["adm"].map(rank)).sort_values(["_rank", "event_date"], kind="stable")
    events = Table("SHF", "SHF_HLH_registry.xlsx", keyed(pd.DataFrame({
        "Hospital number": adm.loc[ae["adm"], "mrn"].to_numpy(), "Date": formats.excel_dates(ae["event_date"]),
        "Event": ae_text("SHF", ae["term"], ae["grade"], r), "Grade": ae["grade"].to_numpy().astype(object),
        "Serious": formats.flags(ae["serious"], "Yes", "No")})), sheet="Adverse events", first_row=4)
    out.tables += [patients, dosing_sheet, bloods, events]
    return out


# ----------------------------------------------------------------------------- BHM (REDCap)
FORMS = ("admission", "anakinra_dosing", "labs", "adverse_event")
# Data dictionary: field, form, type, label, choices, validation, identifier, required.
BHM_FIELDS = (
    ("record_id", "admission", "text", "Record ID", "", "", "", ""),
    ("mrn", "admission", "text", "Medical record number", "", "", "y", "y"),
    ("first_name", "admission", "text", "First name", "", "", "y", ""),
    ("last_name", "admission", "text", "Last name", "", "", "y", ""),
    ("dob", "admission", "text", "Date of birth", "", "date_ymd", "y", "y"),
    ("sex", "admission", "radio", "Sex", "1, Male | 2, Female", "", "", ""),
    ("zip", "admission", "text", "ZIP code", "", "zipcode", "y", ""),
    ("adm_date", "admission", "text", "Admission date", "", "date_ymd", "", "y"),
    ("dc_date", "admission", "text", "Discharge date", "", "date_ymd", "", ""),
    ("dx", "admission", "radio", "Diagnosis", "1, sHLH | 2, MAS | 3, familial HLH | 4, other", "", "", "y"),
    ("trigger", "admission", "radio", "Trigger", "1, infection | 2, rheumatic | 3, malignancy | 4, idiopathic", "", "", ""),
    ("trigger_detail", "admission", "text", "Trigger detail", "", "", "", ""),
    ("weight_kg", "admission", "text", "Weight (kg)", "", "number", "", ""),
    ("tmax_f", "admission", "text", "Maximum temperature (F)", "", "number", "", ""),
    ("hepatomegaly", "admission", "yesno", "Hepatomegaly", "", "", "", ""),
    ("splenomegaly", "admission", "yesno", "Splenomegaly", "", "", "", ""),
    ("immunosupp", "admission", "yesno", "Known immunosuppression", "", "", "", ""),
    ("bm_hemophagocytosis", "admission", "radio", "Hemophagocytosis on bone marrow", "0, No | 1, Yes | 2, Not done", "", "", ""),
    ("picu", "admission", "yesno", "PICU admission", "", "", "", ""),
    ("picu_days", "admission", "text", "PICU days", "", "integer", "", ""),
    ("edema", "admission", "yesno", "Edema", "", "", "", ""),
    ("cns", "admission", "yesno", "CNS involvement", "", "", "", ""),
    ("died", "admission", "yesno", "Died", "", "", "", ""),
    ("death_date", "admission", "text", "Date of death", "", "date_ymd", "", ""),
    ("last_fu_date", "admission", "text", "Date of last follow-up", "", "date_ymd", "", ""),
    ("afebrile_date", "admission", "text", "Date afebrile", "", "date_ymd", "", ""),
    ("ana_start", "anakinra_dosing", "text", "Start date", "", "date_ymd", "", "y"),
    ("ana_stop", "anakinra_dosing", "text", "Stop date", "", "date_ymd", "", ""),
    ("ana_route", "anakinra_dosing", "radio", "Route", "1, IV push | 2, IV continuous | 3, SubQ", "", "", "y"),
    ("ana_dose_mg", "anakinra_dosing", "text", "Dose (mg)", "", "number", "", ""),
    ("ana_freq", "anakinra_dosing", "radio", "Frequency", "1, daily | 2, q12h | 3, q8h | 4, q6h | 5, continuous", "", "", ""),
    ("ana_rate_mgkgh", "anakinra_dosing", "text", "Infusion rate (mg/kg/h)", "", "number", "", ""),
    ("lab_date", "labs", "text", "Sample date", "", "date_ymd", "", "y"),
    *((f, "labs", "text", label, "", "number", "", "") for f, label in (
        ("ferritin_ngml", "Ferritin (ng/mL)"), ("crp_mgdl", "CRP (mg/dL)"), ("plt_kul", "Platelets (K/uL)"),
        ("hgb_gdl", "Hemoglobin (g/dL)"), ("wbc_kul", "WBC (K/uL)"), ("anc_kul", "ANC (K/uL)"),
        ("fibrinogen_mgdl", "Fibrinogen (mg/dL)"), ("tg_mgdl", "Triglycerides (mg/dL)"), ("alt_ul", "ALT (U/L)"),
        ("ast_ul", "AST (U/L)"), ("tbili_mgdl", "Total bilirubin (mg/dL)"), ("creat_mgdl", "Creatinine (mg/dL)"),
        ("scd25_uml", "Soluble IL-2 receptor (U/mL)"))),
    ("ae_date", "adverse_event", "text", "Event date", "", "date_ymd", "", "y"),
    ("ae_term", "adverse_event", "dropdown", "Event",
     "1, ALT/AST increased | 2, bacterial infection | 3, fungal infection | 4, viral infection | "
     "5, injection site reaction | 6, infusion reaction | 7, neutropenia | 8, thrombocytopenia | "
     "9, DRESS/eosinophilia | 10, anaphylaxis | 11, other", "", "", "y"),
    ("ae_grade", "adverse_event", "radio", "CTCAE grade", "1, 1 | 2, 2 | 3, 3 | 4, 4 | 5, 5", "", "", "y"),
    ("ae_serious", "adverse_event", "yesno", "Serious", "", "", "", ""),
)
DICTIONARY_COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name", "Matrix Ranking?",
    "Field Annotation",
)


def data_dictionary() -> pd.DataFrame:
    rows = [{"Variable / Field Name": f, "Form Name": form, "Field Type": ftype, "Field Label": label,
             "Choices, Calculations, OR Slider Labels": choices, "Text Validation Type OR Show Slider Number": valid,
             "Identifier?": ident, "Required Field?": req,
             "Branching Logic (Show field only if...)": "[ana_route] = '2'" if f == "ana_rate_mgkgh" else ""}
            for f, form, ftype, label, choices, valid, ident, req in BHM_FIELDS]
    return pd.DataFrame(rows).reindex(columns=list(DICTIONARY_COLUMNS)).fillna("")


def redcap_columns() -> list[str]:
    cols = ["record_id", "redcap_repeat_instrument", "redcap_repeat_instance"]
    for form in FORMS:
        cols += [f for f, fm, *_ in BHM_FIELDS if fm == form and f != "record_id"] + [f"{form}_complete"]
    return cols


def render_bhm(sim: Simulation, dosing: pd.DataFrame, n_dirt: int, seed: int) -> Rendered:
    r = rng(seed, 23)
    out = Rendered()
    adm = sim.admissions[sim.admissions["centre"].eq("BHM")].sort_values("admit", kind="stable")
    record = pd.Series(np.arange(1, len(adm) + 1), index=adm.index)
    out.local_ids = "record_id " + record.astype(str)
    who = sim.persons.loc[adm["person"]]
    ymd = lambda v: formats.text_dates(v, "%Y-%m-%d")  # noqa: E731
    one = lambda col: np.where(adm[col], "1", "0")  # noqa: E731
    admission = pd.DataFrame({
        "record_id": record.to_numpy(), "mrn": who["mrn_BHM"].to_numpy(), "first_name": who["forename"].to_numpy(),
        "last_name": who["surname"].to_numpy(), "dob": ymd(who["dob"]), "sex": who["sex"].map(BHM_CODES["sex"]).astype(str).to_numpy(),
        "zip": who["zip"].to_numpy(), "adm_date": ymd(adm["admit"]), "dc_date": ymd(adm["discharge"]),
        "dx": adm["diagnosis"].map(BHM_CODES["dx"]).astype(str).to_numpy(),
        "trigger": adm["trigger_category"].map(BHM_CODES["trigger"]).astype(str).to_numpy(),
        "trigger_detail": adm["trigger_detail"].to_numpy(), "weight_kg": formats.text_numbers(adm["weight_kg"], 1),
        "tmax_f": formats.text_numbers(adm["max_temp_c"] * 9 / 5 + 32, 1), "hepatomegaly": one("hepatomegaly"),
        "splenomegaly": one("splenomegaly"), "immunosupp": one("immunosuppression"),
        "bm_hemophagocytosis": adm["bm_haemophagocytosis"].map(BHM_CODES["bm"]).astype(str).to_numpy(),
        "picu": one("icu"), "picu_days": formats.text_numbers(adm["icu_days"], 0), "edema": one("oedema"), "cns": one("cns"),
        "died": np.where(adm["outcome_recorded"], one("died"), ""), "death_date": ymd(adm["death_date"]),
        "last_fu_date": ymd(adm["last_seen"]), "afebrile_date": ymd(adm["fever_resolution"]), "_form": 0,
        "_case": adm["case"].to_numpy(),
    })

    dose = dosing[dosing["adm"].isin(adm.index)]
    dose = dose.assign(_rec=dose["adm"].map(record)).sort_values(["_rec", "dirt", "start"], kind="stable")
    cont = dose["continuous"].to_numpy()
    route = np.where(cont, "2", np.where(dose["route"].eq("IV"), "1", "3"))
    dosing_rows = pd.DataFrame({
        "record_id": dose["_rec"].to_numpy(), "ana_start": ymd(dose["start"]), "ana_stop": ymd(dose["stop"]),
        "ana_route": np.where(dose["dirt"].eq("unknown_route"), UNKNOWN_ROUTE["BHM"], route),
        "ana_dose_mg": np.where(cont, "", formats.text_numbers(dose["dose_mg"], 1)),
        "ana_freq": dose["frequency"].map(BHM_CODES["freq"]).astype(str).to_numpy(),
        "ana_rate_mgkgh": formats.text_numbers(dose["rate_mg_per_kg_h"], 2), "_form": 1, "_dirt": dose["dirt"].to_numpy(),
        "_case": dose["adm"].map(adm["case"]).to_numpy(),
    })

    labs = sim.labs[sim.labs["adm"].isin(adm.index)].assign(date=lambda d: d["sample_time"].dt.normalize())
    wide = labs.set_index(["adm", "date", "test"])["value"].unstack("test").reindex(columns=list(TESTS)).reset_index()
    lab_rows = pd.DataFrame({"record_id": wide["adm"].map(record).to_numpy(), "lab_date": ymd(wide["date"]), "_form": 2,
                             "_when": wide["date"].to_numpy()})
    for test, (fieldname, factor, decimals) in BHM_LABS.items():
        lab_rows[fieldname] = formats.text_numbers(wide[test] * factor, decimals)
    lab_rows = lab_rows.sort_values(["record_id", "_when"], kind="stable").drop(columns="_when")

    ae = sim.adverse_events[sim.adverse_events["adm"].isin(adm.index)]
    ae_rows = pd.DataFrame({
        "record_id": ae["adm"].map(record).to_numpy(), "ae_date": ymd(ae["event_date"]),
        "ae_term": (pd.Series(ae["term"]).map({t: i + 1 for i, t in enumerate(AE_TERMS)})).astype(str).to_numpy(),
        "ae_grade": ae["grade"].astype(str).to_numpy(), "ae_serious": np.where(ae["serious"], "1", "0"), "_form": 3,
        "_when": ae["event_date"].to_numpy()}).sort_values(["record_id", "_when"], kind="stable").drop(columns="_when")

    frame = pd.concat([admission, dosing_rows, lab_rows, ae_rows], ignore_index=True)
    frame = frame.sort_values(["record_id", "_form"], kind="stable").reset_index(drop=True)
    repeating = frame["_form"] > 0
    frame["redcap_repeat_instrument"] = np.where(repeating, np.array(FORMS)[frame["_form"]], "")
    frame["redcap_repeat_instance"] = np.where(repeating, (frame.groupby(["record_id", "_form"]).cumcount() + 1).astype(str), "")
    complete = np.where(r.random(len(frame)) < 0.93, "2", "1")  # a few instruments left 'unverified'
    for i, form in enumerate(FORMS):
        frame[f"{form}_complete"] = np.where(frame["_form"] == i, complete, "")
    frame["record_id"] = frame["record_id"].astype(str)
    dirt = frame["_dirt"].fillna("").to_numpy()
    table = Table("BHM", "BHM_HLH_DATA.csv", keyed(frame[redcap_columns()].fillna("")))
    _note_extras(out, table, dirt, "ana_route", "ana_stop")
    case, form = frame["_case"].fillna("").to_numpy(), frame["_form"].to_numpy()
    note_cases(out, table, np.where(form == 0, case, ""), "admissions")
    note_cases(out, table, np.where(form == 1, case, ""), "dosing")
    out.tables.append(table)
    out.tables.append(Table("BHM", "BHM_HLH_DataDictionary.csv", keyed(data_dictionary())))
    return out
