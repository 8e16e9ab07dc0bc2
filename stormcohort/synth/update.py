"""An updated delivery derived from an existing one: the centres' next full extract.

    python -m stormcohort.synth --update-from DIR --seed S --out NEWDIR [--extract-date YYYY-MM-DD] [--new-patients K]

``DIR`` is a delivery this generator made (it needs ``DIR/synth_manifest.json`` to know which
admissions are cohort patients and where its dirty values sit). Compared with ``DIR``, the new
delivery has

- ``K`` (default 3) new cohort patients, one per centre in turn (LDN, SHF, BHM), simulated by
  the generator's clinical model and rendered in each centre's export format, appended after
  the existing rows; the LDN one has its weight typed in grams (one new ledger entry);
- three corrected values on existing cohort patients: a weight (LDN), a CRP result of a late
  sample (SHF Bloods) and a date of death (BHM if it has a suitable patient, else LDN or SHF),
  with the discharge and last-seen dates that were recorded as that same day;
- a patient who withdrew consent (LDN, preferably one whose rows carry dirt the ledger lists):
  every row of theirs removed from every file;
- a new column ``Ward`` in LDN ``admissions.csv`` (after ``Discharge_Date``) that the readers
  must ignore;
- the new extract date (default: 92 days after the old one) in ``delivery.yaml`` and in the SHF
  workbook's title lines.

Every other row keeps its bytes. ``NEWDIR/synth_changes.json`` lists the changes by centre and
local admission id (the manifest's ``local_id``: the new delivery's for added and corrected
admissions, the old delivery's for the withdrawn one), with the ledger entries expected to
appear and disappear and the expected cohort counts; never an identifier or a patient key.
The same arguments give the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import yaml

from stormcohort.synth import centres, writers
from stormcohort.synth.clinical import CENTRES, rng, simulate
from stormcohort.synth.formats import text_numbers

CHANGES_FILE = "synth_changes.json"
LDN_FILES = ("patients.csv", "admissions.csv", "anakinra.csv", "labs.csv", "adverse_events.csv")
SHF_BOOK = "SHF_HLH_registry.xlsx"
SHF_SHEETS = ("Patients", "Dosing", "Bloods", "Adverse events")
SHF_FIRST_ROW = 4  # two title lines and the header above the first data row
BHM_DATA, BHM_DICTIONARY = "BHM_HLH_DATA.csv", "BHM_HLH_DataDictionary.csv"
CSV_FORMAT = {"LDN": ("utf-8-sig", "\r\n"), "BHM": ("utf-8", "\n")}
NEW_COLUMN = {"centre": "LDN", "file": "admissions.csv", "column": "Ward", "after": "Discharge_Date"}
WARDS = ("AMU", "Ward 7B", "Ward 9", "Ward 12", "HDU", "ICU")
SHF_CRP = "CRP (mg/L)"
# Where each centre keeps an admission's dates (file, sheet, columns); text date format or None for Excel date cells.
ADMISSION_DATES = {
    "LDN": ("admissions.csv", None, {"admit": "Admit_Date", "death": "Date_of_Death", "discharge": "Discharge_Date",
                                     "last_seen": "Last_Seen_Date"}, "%d/%m/%Y"),
    "SHF": (SHF_BOOK, "Patients", {"admit": "Admission date", "death": "Date of death", "discharge": "Discharge date",
                                   "last_seen": "Date last seen"}, None),
    "BHM": (BHM_DATA, None, {"admit": "adm_date", "death": "death_date", "discharge": "dc_date",
                             "last_seen": "last_fu_date"}, "%Y-%m-%d"),
}
DEATH_CENTRE_ORDER = ("BHM", "LDN", "SHF")


@dataclass
class Extract:
    """One delivery's files as cells: text for the CSVs, typed cells for the workbook. Row labels
    are kept through deletions, so a changed row can be found again and numbered at the end."""
    ldn: dict[str, pd.DataFrame]
    shf: dict[str, pd.DataFrame]
    bhm: pd.DataFrame
    bhm_dictionary: bytes

    def frame(self, centre: str, file: str, sheet: str | None = None) -> pd.DataFrame:
        return {"LDN": lambda: self.ldn[file], "SHF": lambda: self.shf[sheet], "BHM": lambda: self.bhm}[centre]()

    def set_frame(self, centre: str, file: str, sheet: str | None, frame: pd.DataFrame) -> None:
        if centre == "LDN":
            self.ldn[file] = frame
        elif centre == "SHF":
            self.shf[sheet] = frame
        else:
            self.bhm = frame


def read_extract(folder: Path) -> Extract:
    folder = Path(folder)
    read = lambda centre, name: pd.read_csv(folder / centre / name, dtype=str, keep_default_na=False,  # noqa: E731
                                            encoding=CSV_FORMAT[centre][0])
    book = openpyxl.load_workbook(folder / "SHF" / SHF_BOOK)
    shf = {}
    for sheet in SHF_SHEETS:
        rows = list(book[sheet].iter_rows(values_only=True))
        cells = [[pd.Timestamp(v) if isinstance(v, datetime) else v for v in row] for row in rows[SHF_FIRST_ROW - 1:]]
        shf[sheet] = pd.DataFrame(cells, columns=list(rows[SHF_FIRST_ROW - 2]), dtype=object)
    return Extract({name: read("LDN", name) for name in LDN_FILES}, shf, read("BHM", BHM_DATA),
                   (folder / "BHM" / BHM_DICTIONARY).read_bytes())


def write_extract(extract: Extract, folder: Path, extract_date: pd.Timestamp) -> None:
    folder = Path(folder)
    for centre in CENTRES:
        (folder / centre).mkdir(parents=True, exist_ok=True)
    for centre, files in (("LDN", extract.ldn), ("BHM", {BHM_DATA: extract.bhm})):
        encoding, newline = CSV_FORMAT[centre]
        for name, frame in files.items():
            text = frame.to_csv(index=False, lineterminator=newline)
            (folder / centre / name).write_bytes(text.encode(encoding))
    (folder / "BHM" / BHM_DICTIONARY).write_bytes(extract.bhm_dictionary)
    tables = [centres.Table("SHF", SHF_BOOK, extract.shf[s].reset_index(drop=True).assign(
        _key=np.arange(len(extract.shf[s]), dtype=float)), sheet=s, first_row=SHF_FIRST_ROW) for s in SHF_SHEETS]
    writers.write_workbook(tables, folder / "SHF" / SHF_BOOK, extract_date.to_pydatetime())


# ----------------------------------------------------------------------------- who is who (in memory only)
def _nhs(values: pd.Series) -> pd.Series:
    text = values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    return text.str.replace(r"\.0$", "", regex=True).str.replace(r"\s", "", regex=True)


def _dates(values: pd.Series, fmt: str | None) -> pd.Series:
    """Dates of text cells (fmt) or Excel date cells (fmt None); NaT where missing or typed otherwise."""
    if fmt is not None:
        return pd.to_datetime(values, format=fmt, errors="coerce")
    return pd.to_datetime(values.map(lambda v: v if isinstance(v, pd.Timestamp) else None))


def admissions(extract: Extract) -> pd.DataFrame:
    """One row per admission: centre, local_id (as the manifest names it), the row label in the
    centre's admission table, the patient's local id, a person identity that links the UK
    centres, and the admission date. Identifiers stay in memory: nothing here is written."""
    ldn = extract.ldn["admissions.csv"]
    nhs = extract.ldn["patients.csv"].drop_duplicates("MRN").set_index("MRN")["NHS_Number"]
    parts = [pd.DataFrame({"centre": "LDN", "local_id": ldn["Admission_ID"], "label": ldn.index,
                           "patient": ldn["MRN"], "person": "nhs:" + _nhs(ldn["MRN"].map(nhs)),
                           "admit": _dates(ldn["Admit_Date"], "%d/%m/%Y")})]
    shf = extract.shf["Patients"]
    position = np.arange(len(shf)) + SHF_FIRST_ROW
    parts.append(pd.DataFrame({"centre": "SHF", "local_id": [f"Patients row {p}" for p in position], "label": shf.index,
                               "patient": shf["Hospital number"].astype(str), "person": "nhs:" + _nhs(shf["NHS no."]),
                               "admit": _dates(shf["Admission date"], None)}))
    bhm = extract.bhm[extract.bhm["redcap_repeat_instrument"].eq("")]
    parts.append(pd.DataFrame({"centre": "BHM", "local_id": "record_id " + bhm["record_id"], "label": bhm.index,
                               "patient": bhm["record_id"], "person": "bhm:" + bhm["mrn"],
                               "admit": _dates(bhm["adm_date"], "%Y-%m-%d")}))
    out = pd.concat(parts, ignore_index=True)
    out["admissions_of_person"] = out.groupby("person")["local_id"].transform("size")
    return out


def rows_of(extract: Extract, adm: pd.Series) -> dict[tuple[str, str | None], pd.Index]:
    """Row labels of every row belonging to one admission of a person admitted once, by (file, sheet)."""
    if adm["centre"] == "LDN":
        out = {("patients.csv", None): _where(extract.ldn["patients.csv"], "MRN", adm["patient"])}
        for name in LDN_FILES[1:]:
            out[(name, None)] = _where(extract.ldn[name], "Admission_ID", adm["local_id"])
        return out
    if adm["centre"] == "SHF":
        return {(SHF_BOOK, s): _where(extract.shf[s], "Hospital number", adm["patient"], text=True) for s in SHF_SHEETS}
    return {(BHM_DATA, None): _where(extract.bhm, "record_id", adm["patient"])}


def _where(frame: pd.DataFrame, column: str, value, text: bool = False) -> pd.Index:
    values = frame[column].astype(str) if text else frame[column]
    return frame.index[values.eq(value).to_numpy()]


def _first_row(centre: str) -> int:
    return SHF_FIRST_ROW if centre == "SHF" else 2


def human_rows(extract: Extract, centre: str, file: str, sheet: str | None, labels) -> list[int]:
    """Row numbers a human sees (CSV line with the header as line 1; workbook sheet row) of row labels."""
    frame = extract.frame(centre, file, sheet)
    return (frame.index.get_indexer(pd.Index(labels)) + _first_row(centre)).tolist()


def _dirt(manifest: dict) -> pd.DataFrame:
    dirt = pd.DataFrame(manifest["dirty_values"], columns=centres.DIRT_COLUMNS)
    dirt["sheet"] = dirt["sheet"].where(dirt["sheet"].notna(), None)
    return dirt


def _dirty_labels(dirt: pd.DataFrame, centre: str, file: str, sheet: str | None) -> pd.Index:
    """Row labels (0-based data rows of the old delivery) carrying dirt; a duplicate also marks its original."""
    mine = dirt[(dirt["centre"] == centre) & (dirt["file"] == file) & (dirt["sheet"].fillna("") == (sheet or ""))]
    rows = mine["row"].to_numpy() - _first_row(centre)
    originals = mine.loc[mine["rule"].eq("duplicate_row"), "row"].to_numpy() - _first_row(centre) - 1
    return pd.Index(np.unique(np.concatenate([rows, originals]).astype(int)))


# ----------------------------------------------------------------------------- the changes
def derive_update(source: Path | str, out_dir: Path | str, seed: int, extract_date: str | None = None,
                  new_patients: int = 3) -> dict:
    """Write an updated delivery of `source` into out_dir; return the list of changes (also in synth_changes.json)."""
    source, out = Path(source), Path(out_dir)
    meta_path, manifest_path = source / "delivery.yaml", source / "synth_manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"--update-from {source}: {manifest_path.name} not found (expected a delivery made by "
                         "this generator)")
    if new_patients < 0:
        raise ValueError(f"--new-patients {new_patients}: expected 0 or more")
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    old_extract = pd.Timestamp(str(meta["extract_date"]))
    try:
        new_extract = old_extract + pd.Timedelta(days=92) if extract_date is None else \
            pd.Timestamp(datetime.strptime(extract_date, "%Y-%m-%d"))
    except ValueError:
        raise ValueError(f"--extract-date {extract_date!r}: expected a date as YYYY-MM-DD") from None
    if new_extract < old_extract:
        raise ValueError(f"--extract-date {new_extract.date()}: an update cannot be exported before the delivery it "
                         f"updates ({old_extract.date()})")
    if out.resolve() == source.resolve():
        raise ValueError(f"--out {out}: must differ from --update-from (the old delivery stays as it was)")

    extract = read_extract(source)
    listing = pd.DataFrame(manifest["admission_list"])
    adm = admissions(extract).merge(listing, on=["centre", "local_id"], how="left", validate="one_to_one")
    single = adm[adm["category"].eq("cohort") & adm["admissions_of_person"].eq(1)]
    dirt = _dirt(manifest)
    changes = {"added": [], "removed": [], "changed": []}
    ledger = {"added": [], "removed": []}

    withdrawn = _withdraw(extract, single, dirt, seed, changes, ledger)
    single = single[single["local_id"] != withdrawn]
    corrected = _correct_weight(extract, single, dirt, seed)
    single = single[single["local_id"] != corrected["local_id"]]
    crp = _correct_crp(extract, single, dirt, seed)
    single = single[single["local_id"] != crp["local_id"]]
    death = _correct_death(extract, single, dirt, seed, old_extract)
    added = _add_patients(extract, new_patients, seed, new_extract, ledger)
    _add_column(extract, seed)

    # Local ids and rows are those of the new delivery, numbered once every row is in place.
    for change in (corrected, crp, death):
        label, kind = change.pop("_label"), change.pop("_row_of")
        change["row"] = human_rows(extract, change["centre"], *kind, [label])[0]
        if change["centre"] == "SHF":
            change["local_id"] = _shf_local_id(extract, change.pop("_admission"))
        else:
            change.pop("_admission")
        changes["changed"].append(change)
    for new in added:
        if new["centre"] == "SHF":
            new["local_id"] = _shf_local_id(extract, new.pop("_admission"))
        else:
            new.pop("_admission")
        changes["added"].append(new)
    for key in changes:
        changes[key].sort(key=lambda c: (CENTRES.index(c["centre"]), c["local_id"]))

    write_extract(extract, out, new_extract)
    cohort = dict(manifest["cohort"])
    routes = {"IV": cohort["IV"], "SC": cohort["SC"]}
    for c in changes["added"]:
        routes[c["route_group"]] += 1
    for c in changes["removed"]:
        routes[c["route_group"]] -= 1
    result = {
        "synthetic": True,
        "generator": {"name": "stormcohort.synth", "version": meta.get("generator", {}).get("version"),
                      "update_seed": seed, "new_patients": new_patients},
        "updated_from": {"extract_date": str(old_extract.date()), "generator": meta.get("generator")},
        "extract_date": str(new_extract.date()),
        "patients": changes,
        "ledger": ledger,
        "columns_added": [{k: NEW_COLUMN[k] for k in ("centre", "file", "column")}
                          | {"expected": "ignored by the reader"}],
        "cohort": {"patients": routes["IV"] + routes["SC"], **routes},
    }
    (out / CHANGES_FILE).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    generator = dict(meta.get("generator") or {})
    block = "".join(f"  {k}: {v!r}\n" if isinstance(v, str) else f"  {k}: {v}\n" for k, v in generator.items())
    (out / "delivery.yaml").write_text(
        f"extract_date: {new_extract.date()}\nsynthetic: true\ngenerator:\n{block}"
        f"  update_seed: {seed}\n  updated_from_extract_date: {old_extract.date()}\n", encoding="utf-8")
    return result


def _shf_local_id(extract: Extract, label) -> str:
    return f"Patients row {extract.shf['Patients'].index.get_loc(label) + SHF_FIRST_ROW}"


def _pick(candidates: pd.DataFrame, r: np.random.Generator, what: str) -> pd.Series:
    if candidates.empty:
        raise ValueError(f"--update-from: no cohort patient suitable for {what} (the delivery is too small)")
    return candidates.iloc[int(r.integers(len(candidates)))]


def _withdraw(extract: Extract, single: pd.DataFrame, dirt: pd.DataFrame, seed: int, changes: dict,
              ledger: dict) -> str:
    """An LDN patient withdraws consent: every row of theirs goes. Prefer one whose rows carry
    dirt the ledger lists, so the ledger changes too."""
    pool = single[single["centre"].eq("LDN")].sort_values("local_id")
    listed = dirt[dirt["centre"].eq("LDN") & dirt["rule"].notna()].copy()
    admission_of_patient = extract.ldn["admissions.csv"].drop_duplicates("MRN").set_index("MRN")["Admission_ID"]
    listed["owner"] = None
    for file, rows in listed.groupby("file"):  # five files at most
        frame = extract.ldn[file].loc[rows["row"] - _first_row("LDN")]
        owner = frame["MRN"].map(admission_of_patient) if file == "patients.csv" else frame["Admission_ID"]
        listed.loc[rows.index, "owner"] = owner.to_numpy()
    with_dirt = pool[pool["local_id"].isin(listed["owner"])]
    adm = _pick(with_dirt if len(with_dirt) else pool, rng(seed, 110), "a withdrawal")
    entries = [{"centre": "LDN", "file": e["file"], "column": e["column"], "rule": e["rule"], "scope": e["scope"]}
               for e in listed[listed["owner"].eq(adm["local_id"])].to_dict(orient="records")]
    counts = {}
    for (file, sheet), labels in rows_of(extract, adm).items():
        extract.set_frame("LDN", file, sheet, extract.frame("LDN", file, sheet).drop(labels))
        counts[file] = len(labels)
    changes["removed"].append({
        "centre": "LDN", "local_id": adm["local_id"], "category": "cohort", "route_group": adm["route_group"],
        "description": "patient withdrew consent: all their rows removed ("
                       + ", ".join(f"{f} {n}" for f, n in counts.items()) + ")"})
    ledger["removed"] += entries
    return adm["local_id"]


def _correct_weight(extract: Extract, single: pd.DataFrame, dirt: pd.DataFrame, seed: int) -> dict:
    """A weight typed wrongly, corrected by 3-8 kg (LDN, mg doses: nothing else follows from it)."""
    r = rng(seed, 120)
    frame = extract.ldn["admissions.csv"]
    dirty = _dirty_labels(dirt, "LDN", "admissions.csv", None)
    pool = single[single["centre"].eq("LDN") & ~single["label"].isin(dirty)].sort_values("local_id")
    pool = pool[pd.to_numeric(frame.loc[pool["label"], "Weight_kg"], errors="coerce").notna().to_numpy()]
    adm = _pick(pool, r, "a weight correction")
    old = float(frame.at[adm["label"], "Weight_kg"])
    step = round(float(r.uniform(3, 8)), 1) * (1 if r.random() < 0.5 or old < 20 else -1)
    new = text_numbers([old + step], 1)[0]
    frame.at[adm["label"], "Weight_kg"] = new
    return {"centre": "LDN", "local_id": adm["local_id"], "_admission": adm["label"], "_label": adm["label"],
            "_row_of": ("admissions.csv", None), "file": "admissions.csv", "sheet": None, "column": "Weight_kg",
            "field": "weight_kg", "description": f"weight corrected: {text_numbers([old], 1)[0]} -> {new} kg"}


def _correct_crp(extract: Extract, single: pd.DataFrame, dirt: pd.DataFrame, seed: int) -> dict:
    """A CRP result of a late sample (6 or more days after admission, so never a baseline one)
    mistyped and corrected (SHF Bloods)."""
    r = rng(seed, 130)
    bloods = extract.shf["Bloods"]
    dirty = _dirty_labels(dirt, "SHF", SHF_BOOK, "Bloods").union(bloods.index[bloods.duplicated(keep=False)])
    pool = single[single["centre"].eq("SHF")].sort_values("local_id")
    crp = pd.to_numeric(bloods[SHF_CRP].map(lambda v: v if isinstance(v, (int, float)) else None), errors="coerce")
    samples = pd.DataFrame({"patient": bloods["Hospital number"].astype(str), "when": _dates(bloods["Date"], None),
                            "crp": crp, "row_label": bloods.index})
    samples = samples[samples["crp"].notna() & ~samples["row_label"].isin(dirty)]
    samples = samples.merge(pool[["patient", "admit", "local_id", "label"]], on="patient", how="inner")
    samples = samples[(samples["when"] - samples["admit"]).dt.days >= 6]
    latest = samples.sort_values(["local_id", "when"]).groupby("local_id").tail(1)
    chosen = _pick(latest, r, "a lab correction")
    label = chosen["row_label"]
    old = float(chosen["crp"])
    new = round(old + max(5.0, old * float(r.uniform(0.4, 0.8))), 1)
    bloods.at[label, SHF_CRP] = new
    return {"centre": "SHF", "local_id": None, "_admission": chosen["label"], "_label": label,
            "_row_of": (SHF_BOOK, "Bloods"), "file": SHF_BOOK, "sheet": "Bloods", "column": SHF_CRP,
            "field": "labs:crp",
            "description": f"CRP result corrected: {old:g} -> {new:g} mg/L "
                           f"(sample {int((chosen['when'] - chosen['admit']).days)} days after admission)"}


def _correct_death(extract: Extract, single: pd.DataFrame, dirt: pd.DataFrame, seed: int,
                   extract_date: pd.Timestamp) -> dict:
    """A date of death recorded 1-3 days early, corrected (with the discharge and last-seen dates
    recorded as that same day). Chosen so that death stays within day 30 or beyond day 34 of
    admission and within day 80, so the deaths counted by day 30 and day 90 do not move."""
    r = rng(seed, 140)
    shift = int(r.integers(1, 4))
    for centre in DEATH_CENTRE_ORDER:
        file, sheet, cols, fmt = ADMISSION_DATES[centre]
        frame = extract.frame(centre, file, sheet)
        pool = single[single["centre"].eq(centre)].sort_values("local_id")
        pool = pool[~pool["label"].isin(_dirty_labels(dirt, centre, file, sheet))]
        death = _dates(frame.loc[pool["label"], cols["death"]], fmt).to_numpy()
        lived = (death - pool["admit"].to_numpy()) / np.timedelta64(1, "D")
        ok = ~np.isnan(lived) & (lived <= 80) & ((lived + shift <= 30) | (lived > 34)) \
            & (death + np.timedelta64(shift, "D") <= extract_date.to_datetime64())
        if ok.any():
            break
    adm = _pick(pool[ok], r, "a death-date correction")
    old = _dates(frame.loc[[adm["label"]], cols["death"]], fmt).iloc[0]
    new = old + pd.Timedelta(days=shift)
    moved = []
    for what in ("death", "discharge", "last_seen"):
        cell = _dates(frame.loc[[adm["label"]], cols[what]], fmt).iloc[0]
        if cell == old:
            frame.at[adm["label"], cols[what]] = new.strftime(fmt) if fmt else new
            moved.append(cols[what])
    return {"centre": centre, "local_id": adm["local_id"], "_admission": adm["label"], "_label": adm["label"],
            "_row_of": (file, sheet), "file": file, "sheet": sheet, "column": cols["death"], "field": "death_date",
            "columns_changed": moved,
            "description": f"date of death corrected: {shift} day(s) later (" + ", ".join(moved) + ")"}


def _add_column(extract: Extract, seed: int) -> None:
    frame = extract.ldn[NEW_COLUMN["file"]]
    wards = np.array(WARDS, dtype=object)[rng(seed, 150).integers(0, len(WARDS), len(frame))]
    frame.insert(frame.columns.get_loc(NEW_COLUMN["after"]) + 1, NEW_COLUMN["column"], wards)


# ----------------------------------------------------------------------------- new patients
def _identities(extract: Extract) -> dict[str, set]:
    """Every identifier already in the delivery that a new person must not repeat (in memory only)."""
    ldn, shf, bhm = extract.ldn, extract.shf["Patients"], extract.bhm
    bhm_people = bhm[bhm["redcap_repeat_instrument"].eq("")]
    surname = shf["Name"].astype(str).str.split(", ", n=1).str[0]
    forename = shf["Name"].astype(str).str.split(", ", n=1).str[1]
    return {
        "nhs": set(_nhs(ldn["patients.csv"]["NHS_Number"])) | set(_nhs(shf["NHS no."])),
        "mrn": set(ldn["patients.csv"]["MRN"]) | set(shf["Hospital number"].astype(str)) | set(bhm_people["mrn"]),
        "name": set(zip(ldn["patients.csv"]["Surname"].str.upper(), ldn["patients.csv"]["Forename"]))
                | set(zip(surname, forename)) | set(zip(bhm_people["last_name"].str.upper(), bhm_people["first_name"])),
        "admission_id": set(ldn["admissions.csv"]["Admission_ID"]) | set(ldn["labs.csv"]["Admission_ID"]),
    }


def _add_patients(extract: Extract, k: int, seed: int, extract_date: pd.Timestamp, ledger: dict) -> list[dict]:
    """k new cohort patients, one per centre in turn, appended after each file's existing rows."""
    if k == 0:
        return []
    wanted = [CENTRES[i % len(CENTRES)] for i in range(k)]
    taken = _identities(extract)
    for attempt in range(50):
        sim_seed = 7919 * seed + 104_729 + attempt
        n = max(24, 8 * k)
        sim = simulate(n, int(round(n * 18 / 46)), sim_seed, extract_date, 0)
        chosen = _choose_new(sim, wanted, rng(seed, 160 + attempt), taken)
        if chosen is not None:
            break
    else:  # pragma: no cover - 50 draws without distinct identities would mean a full NHS test range
        raise ValueError("--update-from: could not draw new patients with identifiers distinct from the delivery's")
    dosing = centres.dosing_with_extras(sim, centres.extra_dosing_rows(sim, 0, sim_seed))
    plain = pd.Series(False, index=sim.persons.index)
    rendered = {"LDN": centres.render_ldn(sim, dosing, plain, 0, sim_seed),
                "SHF": centres.render_shf(sim, dosing, plain, 0, sim_seed),
                "BHM": centres.render_bhm(sim, dosing, 0, sim_seed)}
    tables = {c: {(t.file, t.sheet): t.frame.drop(columns="_key") for t in rendered[c].tables} for c in CENTRES}
    out = []
    for episode in chosen.index:
        adm = chosen.loc[episode]
        centre, person = adm["centre"], sim.persons.loc[adm["person"]]
        local = rendered[centre].local_ids[episode]
        entry = {"centre": centre, "local_id": local, "category": "cohort", "route_group": adm["route_group"],
                 "description": f"new admission ({adm['route_group']}), appended to every file of the centre"}
        if centre == "LDN":
            mrn = person["mrn_LDN"]
            for (file, _), frame in tables["LDN"].items():
                rows = frame[frame["MRN"].eq(mrn)] if file == "patients.csv" else frame[frame["Admission_ID"].eq(local)]
                if file == "admissions.csv":  # the weight typed in grams: the ledger gains one entry
                    rows = rows.assign(Weight_kg=str(int(round(float(adm["weight_kg"]) * 1000))))
                    ledger["added"].append({"centre": "LDN", "file": "admissions.csv", "column": "Weight_kg",
                                            "rule": "implausible_value", "scope": "value"})
                    entry["description"] += "; weight typed in grams"
                _append(extract, "LDN", file, None, rows)
            entry["_admission"] = None
        elif centre == "SHF":
            mrn = person["mrn_SHF"]
            for sheet in SHF_SHEETS:
                frame = tables["SHF"][(SHF_BOOK, sheet)]
                labels = _append(extract, "SHF", SHF_BOOK, sheet, frame[frame["Hospital number"].astype(str).eq(mrn)])
                if sheet == "Patients":
                    entry["_admission"] = labels[0]
        else:
            frame = tables["BHM"][(BHM_DATA, None)]
            record = str(int(pd.to_numeric(extract.bhm["record_id"]).max()) + 1)
            rows = frame[frame["record_id"].eq(local.removeprefix("record_id "))].assign(record_id=record)
            _append(extract, "BHM", BHM_DATA, None, rows)
            entry["local_id"], entry["_admission"] = f"record_id {record}", None
        out.append(entry)
    return out


def _choose_new(sim, wanted: list[str], r: np.random.Generator, taken: dict[str, set]) -> pd.DataFrame | None:
    """One cohort admission per wanted centre, of people admitted once, whose identifiers are new."""
    adm = sim.admissions
    once = adm.groupby("person")["episode"].transform("size").eq(1)
    people = sim.persons
    fresh = ~people["nhs"].isin(taken["nhs"]) & ~pd.Series(
        list(zip(people["surname"].str.upper(), people["forename"])), index=people.index).isin(taken["name"])
    for centre in CENTRES:
        fresh &= ~people[f"mrn_{centre}"].isin(taken["mrn"])
    pool = adm[adm["kind"].eq("cohort") & once & adm["person"].map(fresh).to_numpy()]
    picked = []
    for i, centre in enumerate(wanted):  # every second new patient IV, when the centre has one to give
        options = pool[pool["centre"].eq(centre) & ~pool.index.isin(picked)]
        route = options[options["route_group"].eq("IV" if i % 2 else "SC")]
        options = route if len(route) else options
        if options.empty:
            return None
        picked.append(options.index[int(r.integers(len(options)))])
    return adm.loc[picked]


def _append(extract: Extract, centre: str, file: str, sheet: str | None, rows: pd.DataFrame) -> pd.Index:
    frame = extract.frame(centre, file, sheet)
    start = int(frame.index.max()) + 1 if len(frame) else 0
    labels = pd.RangeIndex(start, start + len(rows))
    rows = rows.reindex(columns=frame.columns).set_axis(labels)
    if centre != "SHF":
        rows = rows.astype(str)
    extract.set_frame(centre, file, sheet, pd.concat([frame, rows]))
    return labels


def changes_summary(result: dict) -> str:
    p = result["patients"]
    return (f"{len(p['added'])} patients added, {len(p['removed'])} withdrawn, {len(p['changed'])} values corrected, "
            f"{len(result['columns_added'])} column added; cohort {result['cohort']['patients']} "
            f"({result['cohort']['IV']} IV, {result['cohort']['SC']} SC)")
