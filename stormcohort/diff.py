"""What changed between two runs: an older delivery's results and an updated delivery's.

Works on the runs' output tables only, so on pseudonymous keys and derived values, never on an
identifier: patients added, removed and changed (the cohort's analysis dataset, and their rows of
the cohort's long tables), cleaning-ledger entries (each centre's exclusions ledger), attrition
step by step, every Table 1 cell (numbers: counts, percentages, medians, quartiles, missing,
SMD) and every effect estimate (Cox HR, logistic OR, rate ratio IRR) with the change and a flag
where the conclusion moved: the confidence interval excluded 1 and no longer does, or the reverse.

Every path comes from :mod:`stormcohort.outputs` (:func:`reads`). `compare(old, new)` takes two
`RunTables` (`read_run(folder)`) and returns a `RunDiff`; `write_diff` writes it as CSVs,
`summary.json` and a self-contained `diff.html` (template `report/templates/diff.html.j2`). A diff
compares two runs of the same pipeline version: an older run's tables in an older layout are
not read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stormcohort.io import read_as_text
from stormcohort.outputs import output, outputs

KEY = "patient_key"
# What the diff reads of a run, by name: (rule, output) in stormcohort.outputs.
REQUIRED = {"dataset": ("cohort", "dataset"), "attrition": ("cohort", "attrition"), "table1": ("describe", "table1")}
LONG_TABLES = ("anakinra", "labs", "adverse_events")  # outputs of the cohort rule
LEDGER = ("ingest", "ledger")  # one per centre
# Columns of the long tables that describe the patient rather than the row (their changes show in the dataset).
LONG_CONTEXT = (KEY, "centre", "route_group")
# Not `row` (rows renumber), not `reason` (quotes rows).
LEDGER_MATCH = ["centre", "file", "column", "value", "rule", "scope"]
LEDGER_GROUP = ["centre", "file", "rule", "scope"]
# Table 1, tidy: a row per variable, level and group; a cell per row and quantity.
TABLE1_KEYS = ["variable", "level", "group"]
TABLE1_QUANTITIES = ["n", "count", "percent", "median", "q1", "q3", "missing", "smd"]
EFFECT_KEYS = ["source", "outcome", "model", "method", "term"]
EFFECT_SOURCES = {  # source -> (rule, output), measure, estimate, lower, upper column names
    # the target trial's ratios (tables/effect.csv: its analysis is the model, measure and day the method)
    "comparison": (("comparison", "effect"), None, "estimate", "lcl", "ucl"),
    "cox": (("survival", "cox"), "HR", "hr", "hr_lcl", "hr_ucl"),
    "logistic": (("binary_outcomes", "logistic"), "OR", "or", "or_lcl", "or_ucl"),
    "rate_ratios": (("safety", "ratios"), "IRR", "irr", "irr_lcl", "irr_ucl"),
}
IV_VS_SC = "route_group[IV]"
# The diff's tables (its CSV outputs), by name; the rule's other outputs are `summary` and `html`.
OUTPUTS = tuple(name for name, path in outputs("diff").items() if path.endswith(".csv"))


@dataclass
class RunTables:
    """The output tables of one run that the diff reads; a table the run lacks is None."""
    name: str
    dataset: pd.DataFrame
    attrition: pd.DataFrame
    table1: pd.DataFrame
    ledger: pd.DataFrame
    long: dict[str, pd.DataFrame | None] = field(default_factory=dict)
    effects: dict[str, pd.DataFrame | None] = field(default_factory=dict)


@dataclass
class RunDiff:
    old: str
    new: str
    patients: pd.DataFrame
    patient_fields: pd.DataFrame
    patient_rows: pd.DataFrame
    ledger: pd.DataFrame
    ledger_entries: pd.DataFrame
    attrition: pd.DataFrame
    table1: pd.DataFrame
    effects: pd.DataFrame

    def summary(self) -> dict:
        change = self.patients["change"].value_counts()
        iv = self.effects[self.effects["term"].eq(IV_VS_SC)]
        final = self.attrition.set_index("step").reindex(["final_cohort", "route_IV", "route_SC"])
        as_int = lambda v: None if pd.isna(v) else int(v)  # noqa: E731
        return {
            "old_run": self.old, "new_run": self.new,
            "patients": {k: int(change.get(k, 0)) for k in ("added", "removed", "changed")},
            "cohort": {step: {"old": as_int(r["n_remaining_old"]), "new": as_int(r["n_remaining_new"])}
                       for step, r in final.iterrows()},
            "ledger_entries": {k: int(self.ledger_entries["status"].eq(k).sum()) for k in ("added", "removed")},
            "attrition_steps_changed": int(self.attrition["change"].fillna(1).ne(0).sum()),
            "table1_cells_changed": int(self.table1["changed"].sum()),
            "effects": int(len(self.effects)),
            "effects_conclusion_moved": int(self.effects["conclusion_moved"].sum()),
            "iv_vs_sc_conclusion_moved": int(iv["conclusion_moved"].sum()),
        }


# ----------------------------------------------------------------------------- reading a run
def reads(centres=()) -> dict[str, str]:
    """Every file `read_run` reads of a run, by name, relative to ``results/<run>/``: the
    REQUIRED tables, the long tables and effect tables (optional: a run may lack them) and one
    ledger per centre (``ledger_<centre>``)."""
    return {
        **{name: output(*where) for name, where in REQUIRED.items()},
        **{t: output("cohort", t) for t in LONG_TABLES},
        **{source: output(*spec[0]) for source, spec in EFFECT_SOURCES.items()},
        **{f"ledger_{c}": output(*LEDGER, centre=c) for c in centres},
    }


def run_centres(folder: Path | str) -> list[str]:
    """The centres of a finished run, from its folder: those with a cleaning ledger."""
    pattern = Path(output(*LEDGER))
    at = pattern.parts.index("{centre}")
    found = Path(folder).glob(output(*LEDGER, centre="*"))
    return sorted(p.relative_to(folder).parts[at] for p in found if p.is_file())


def read_table1(path: Path | str) -> pd.DataFrame:
    """tables/table1.csv: key columns as text ('' for none), quantities as numbers."""
    return pd.read_csv(path, dtype={c: str for c in TABLE1_KEYS + ["kind"]}, keep_default_na=False,
                       na_values={q: ["", "NA", "NaN", "nan"] for q in TABLE1_QUANTITIES})


def read_run(folder: Path | str, centres=None, *, name: str | None = None) -> RunTables:
    """The tables of a finished run under ``results/<run>/`` (missing optional tables are None).

    ``centres``: whose ledgers to read; None lists them from the folder (`run_centres`)."""
    folder = Path(folder)
    centres = run_centres(folder) if centres is None else list(centres)
    # with no centre found, the ledger a run would have is named as missing
    paths = {k: folder / p for k, p in reads(centres or ["<centre>"]).items()}
    return read_tables({k: p for k, p in paths.items() if p.is_file() or k in REQUIRED or k.startswith("ledger_")},
                       name=name or folder.name, where=str(folder))


def read_tables(paths: Mapping[str, Path | str], *, name: str, where: str = "") -> RunTables:
    """The tables of a run from their paths, named as :func:`reads` names them (the optional long
    and effect tables may be left out; the required tables and at least one ledger may not)."""
    paths = {k: Path(p) for k, p in paths.items()}
    ledgers = [p for k, p in paths.items() if k.startswith("ledger_")]
    missing = [str(paths.get(k, k)) for k in REQUIRED if k not in paths or not paths[k].is_file()]
    missing += [str(p) for p in ledgers if not p.is_file()] + ([] if ledgers else ["a cleaning ledger"])
    if missing:
        raise FileNotFoundError(f"{where or name}: not a finished run ({', '.join(missing)} not found)")
    optional = lambda p, reader: reader(p) if p is not None and p.is_file() else None  # noqa: E731
    text = lambda p: pd.read_csv(p, dtype=str, keep_default_na=False)  # noqa: E731 - exactly as written
    return RunTables(
        name=name,
        dataset=pd.read_csv(paths["dataset"]),
        attrition=pd.read_csv(paths["attrition"]),
        table1=read_table1(paths["table1"]),
        ledger=pd.concat([text(p) for p in ledgers], ignore_index=True),
        long={t: optional(paths.get(t), read_as_text) for t in LONG_TABLES},
        effects={source: optional(paths.get(source), pd.read_csv) for source in EFFECT_SOURCES},
    )


# ----------------------------------------------------------------------------- comparisons
def same(a: pd.Series, b: pd.Series, rtol: float = 1e-9) -> pd.Series:
    """Element-wise equality: missing == missing; numbers equal within rtol; otherwise the text."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    a_missing = a.isna() | a.astype(str).eq("")
    b_missing = b.isna() | b.astype(str).eq("")
    num_a, num_b = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
    numeric = num_a.notna() & num_b.notna()
    close = pd.Series(np.isclose(num_a.fillna(0), num_b.fillna(0), rtol=rtol, atol=1e-12), index=a.index)
    text = a.astype(str).eq(b.astype(str))
    return (a_missing & b_missing) | (~a_missing & ~b_missing & np.where(numeric, close, text))


def _text(values: pd.Series) -> pd.Series:
    """Values as they read in a table: '' for missing, whole floats without '.0'."""
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return ""
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v)
    return values.map(one)


def diff_patients(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients added, removed and changed between two analysis datasets, by `patient_key`.

    Returns (patients, fields): one row per patient with `change` (added | removed | changed),
    centre and route group old and new and `fields_changed` (';'-separated dataset columns), and
    one row per changed field of a changed patient with its old and new value."""
    columns = [c for c in new.columns if c != KEY and c in old.columns]
    merged = old.merge(new, on=KEY, how="outer", suffixes=("_old", "_new"), indicator=True)
    status = merged["_merge"].astype(str).map({"left_only": "removed", "right_only": "added", "both": "both"})
    both = status.eq("both").to_numpy()
    differs = pd.DataFrame({c: ~same(merged[f"{c}_old"], merged[f"{c}_new"]).to_numpy() & both for c in columns})
    long = differs.stack()
    long = long[long]
    at, col = long.index.get_level_values(0), long.index.get_level_values(1)
    fields = pd.DataFrame({
        KEY: merged[KEY].to_numpy()[at], "field": col,
        "old": [merged.at[i, f"{c}_old"] for i, c in zip(at, col)],
        "new": [merged.at[i, f"{c}_new"] for i, c in zip(at, col)],
    })
    fields[["old", "new"]] = fields[["old", "new"]].apply(_text)
    order = {c: i for i, c in enumerate(columns)}
    fields = fields.assign(_o=fields["field"].map(order)).sort_values([KEY, "_o"]).drop(columns="_o")
    changed_fields = fields.groupby(KEY, sort=False)["field"].agg(";".join)
    patients = pd.DataFrame({
        KEY: merged[KEY],
        "change": np.where(both, "changed", status),
        **{f"{c}_{side}": merged.get(f"{c}_{side}") for c in ("centre", "route_group") for side in ("old", "new")},
    })
    patients["fields_changed"] = patients[KEY].map(changed_fields).fillna("")
    patients = patients[patients["change"].ne("changed") | patients["fields_changed"].ne("")]
    return _sort_patients(patients), fields.reset_index(drop=True)


def _sort_patients(patients: pd.DataFrame) -> pd.DataFrame:
    rank = patients["change"].map({"added": 0, "removed": 1, "changed": 2})
    return patients.assign(_r=rank).sort_values(["_r", KEY]).drop(columns="_r").reset_index(drop=True)


def diff_long(old: pd.DataFrame | None, new: pd.DataFrame | None, table: str, keys: pd.Index) -> pd.DataFrame:
    """Rows of one long table (e.g. cohort/labs.parquet, read as text) that differ for patients in both runs.

    Rows are compared whole (everything but the patient's key, centre and route group) as a
    multiset per patient: `status` removed (only in the old run) or added, `n` copies, `row` the
    values as `column=value; ...`."""
    out_columns = [KEY, "table", "status", "n", "row"]
    if old is None or new is None:
        return pd.DataFrame(columns=out_columns)
    values = [c for c in new.columns if c not in LONG_CONTEXT and c in old.columns]

    def counted(frame: pd.DataFrame) -> pd.Series:
        frame = frame[frame[KEY].isin(keys)]
        row = pd.Series("", index=frame.index, dtype=object)
        for i, c in enumerate(values):
            row = row + ("; " if i else "") + c + "=" + frame[c].astype(str)
        return pd.DataFrame({KEY: frame[KEY], "row": row}).groupby([KEY, "row"]).size()

    both = pd.concat([counted(old).rename("old"), counted(new).rename("new")], axis=1).fillna(0)
    delta = (both["new"] - both["old"]).astype(int)
    delta = delta[delta != 0]
    out = delta.rename("delta").reset_index()
    out["table"] = table
    out["status"] = np.where(out["delta"] > 0, "added", "removed")
    out["n"] = out["delta"].abs()
    return out[out_columns].sort_values([KEY, "status", "row"], ascending=[True, False, True]).reset_index(drop=True)


def add_long_changes(patients: pd.DataFrame, rows: pd.DataFrame, both: pd.DataFrame) -> pd.DataFrame:
    """Patients whose long-table rows differ are changed too: the tables are added to fields_changed.
    `both` holds key, centre and route group of the patients present in both runs."""
    if rows.empty:
        return patients
    tables = rows.drop_duplicates([KEY, "table"]).groupby(KEY)["table"].agg(";".join)
    extra = (both[both[KEY].isin(tables.index) & ~both[KEY].isin(patients[KEY])]
             .assign(change="changed", fields_changed=""))
    patients = pd.concat([patients, extra], ignore_index=True)
    more = patients[KEY].map(tables).fillna("")
    joined = patients["fields_changed"].str.cat(more, sep=";").str.strip(";")
    patients["fields_changed"] = joined.where(patients["change"].eq("changed"), patients["fields_changed"])
    return _sort_patients(patients)


def diff_ledger(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cleaning-ledger changes: (counts, entries).

    counts: entries by centre, file, rule and scope in each run, with the change (every group).
    entries: the entries found in one run only (`status` removed | added) with their own row
    number. Rows renumber when rows are added or removed, so entries are matched on centre,
    file, column, value, rule and scope (identical entries pair in order)."""
    old, new = (d.reindex(columns=LEDGER_MATCH + ["row", "reason"]).fillna("").astype(str) for d in (old, new))
    count = lambda d: d.groupby(LEDGER_GROUP).size()  # noqa: E731
    counts = pd.concat([count(old).rename("entries_old"), count(new).rename("entries_new")], axis=1)
    counts = counts.fillna(0).astype(int).reset_index()
    counts["change"] = counts["entries_new"] - counts["entries_old"]
    old = old.assign(_n=old.groupby(LEDGER_MATCH).cumcount())
    new = new.assign(_n=new.groupby(LEDGER_MATCH).cumcount())
    merged = old.merge(new, on=LEDGER_MATCH + ["_n"], how="outer", suffixes=("_old", "_new"), indicator=True)
    only = merged[merged["_merge"].ne("both")].copy()
    removed = only["_merge"].eq("left_only")
    only["status"] = np.where(removed, "removed", "added")
    only["row"] = only["row_old"].where(removed, only["row_new"])
    only["reason"] = only["reason_old"].where(removed, only["reason_new"])
    entries = only[["status", "centre", "file", "row", "column", "value", "rule", "reason", "scope"]]
    entries = entries.assign(_r=pd.to_numeric(entries["row"], errors="coerce")).sort_values(
        ["status", "centre", "file", "_r"], ascending=[False, True, True, True]).drop(columns="_r")
    return counts.sort_values(LEDGER_GROUP).reset_index(drop=True), entries.reset_index(drop=True)


def diff_attrition(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Attrition step by step: remaining and excluded in each run, and the change in remaining."""
    columns = ["step", "description", "n_remaining", "n_excluded"]
    old, new = old.reindex(columns=columns), new.reindex(columns=columns)
    out = new.merge(old, on="step", how="outer", suffixes=("_new", "_old"), sort=False)
    out["description"] = out["description_new"].fillna(out["description_old"])
    order = {s: i for i, s in enumerate(list(new["step"]) + [s for s in old["step"] if s not in set(new["step"])])}
    out = out.assign(_o=out["step"].map(order)).sort_values("_o")
    for c in ("n_remaining", "n_excluded"):
        out[[f"{c}_old", f"{c}_new"]] = out[[f"{c}_old", f"{c}_new"]].astype("Int64")
    out["change"] = out["n_remaining_new"] - out["n_remaining_old"]
    return out[["step", "description", "n_remaining_old", "n_remaining_new", "change", "n_excluded_old",
                "n_excluded_new"]].reset_index(drop=True)


def diff_table1(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Every Table 1 cell, keyed by variable, level, group and quantity (TABLE1_QUANTITIES), old
    and new, with the change (new - old) and `changed` (numbers equal within `same`'s rtol).

    Both tables in the tidy numeric layout (TABLE1_KEYS, `kind`, TABLE1_QUANTITIES); a cell
    empty in both runs is left out. In the new table's row order, then rows only in the old."""
    for side, table in (("old", old), ("new", new)):
        lacking = [c for c in TABLE1_KEYS + ["kind"] + TABLE1_QUANTITIES if c not in table.columns]
        if lacking:
            raise ValueError(f"the {side} run's Table 1 has no {', '.join(lacking)}: not this pipeline version's "
                             "numeric layout (a diff compares two runs of the same pipeline version)")

    def cells(table: pd.DataFrame, first: int) -> pd.DataFrame:
        table = table.reindex(columns=TABLE1_KEYS + ["kind"] + TABLE1_QUANTITIES)
        table[TABLE1_KEYS + ["kind"]] = table[TABLE1_KEYS + ["kind"]].fillna("").astype(str)
        table = table.assign(_o=np.arange(first, first + len(table)))
        out = table.melt(TABLE1_KEYS + ["kind", "_o"], TABLE1_QUANTITIES, var_name="quantity", value_name="value")
        out["value"] = pd.to_numeric(out["value"])  # a formatted cell ('12 (26.1%)') stops here
        return out

    on = TABLE1_KEYS + ["quantity"]
    merged = cells(new, 0).merge(cells(old, len(new)), on=on, how="outer", suffixes=("_new", "_old"))
    merged = merged[merged["value_old"].notna() | merged["value_new"].notna()]
    merged["kind"] = merged["kind_new"].fillna(merged["kind_old"])
    merged["_o"] = merged["_o_new"].fillna(merged["_o_old"])
    merged["_q"] = merged["quantity"].map({q: i for i, q in enumerate(TABLE1_QUANTITIES)})
    merged = merged.sort_values(["_o", "_q"]).rename(columns={"value_old": "old", "value_new": "new"})
    merged["change"] = (merged["new"] - merged["old"]).round(6)
    merged["changed"] = ~same(merged["old"], merged["new"]).to_numpy()
    return merged[["variable", "kind", "level", "group", "quantity", "old", "new", "change", "changed"]].reset_index(
        drop=True)


def effect_estimates(tables: dict[str, pd.DataFrame | None], default_outcome: str | None = None) -> pd.DataFrame:
    """Every effect estimate of one run in one long table (intercepts left out): source, outcome,
    model, method, term, measure, estimate, lcl, ucl, n, events. A table without an `outcome`
    column (cox.csv of a run before it carried one) takes ``default_outcome``."""
    columns = EFFECT_KEYS + ["measure", "estimate", "lcl", "ucl", "n", "events"]
    parts = []
    for source, (_, measure, est, lcl, ucl) in EFFECT_SOURCES.items():
        table = tables.get(source)
        if table is None:
            continue
        table = _comparison_ratios(table) if source == "comparison" else table.copy()
        if "outcome" not in table:
            if default_outcome is None:
                raise ValueError(f"{source}: the table has no `outcome` column and no default_outcome was given")
            table["outcome"] = default_outcome
        if "method" not in table:
            table["method"] = ""
        if "n" not in table:  # rate ratios: patient-days, not patients
            table["n"] = np.nan
        if "events" not in table:
            table["events"] = table[["events_iv", "events_sc"]].sum(axis=1, min_count=1) \
                if {"events_iv", "events_sc"} <= set(table.columns) else np.nan
        parts.append(table.rename(columns={est: "estimate", lcl: "lcl", ucl: "ucl"}).assign(
            source=source, **({"measure": measure} if measure else {})).reindex(columns=columns))
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    out["method"] = out["method"].fillna("")
    return out[out["term"].ne("(Intercept)")].reset_index(drop=True)


RATIOS = {"hazard_ratio": "HR", "risk_ratio": "RR", "odds_ratio": "OR"}


def _comparison_ratios(effect: pd.DataFrame) -> pd.DataFrame:
    """The ratio rows of the target trial's effect.csv in the diff's keys: the analysis as the model,
    the measure (and day) as the method, IV vs SC as the term."""
    e = effect[effect["measure"].isin(RATIOS)].copy()
    day = pd.to_numeric(e["day"], errors="coerce")
    e["method"] = e["measure"] + np.where(day.notna(), " at day " + day.astype("Int64").astype(str), "")
    return e.assign(model=e["analysis"], term=IV_VS_SC, measure=e["measure"].map(RATIOS))


def ci_excludes_one(lcl: pd.Series, ucl: pd.Series) -> pd.Series:
    """True / False where both limits are known, else missing."""
    known = lcl.notna() & ucl.notna()
    return ((lcl > 1) | (ucl < 1)).astype("boolean").where(known, pd.NA)


def diff_effects(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Old vs new estimates, keyed by source, outcome, model, method and term: the ratio new/old,
    whether each CI excludes 1, and `conclusion_moved` where that flipped (both CIs known)."""
    value = ["measure", "estimate", "lcl", "ucl", "n", "events"]
    merged = new.merge(old, on=EFFECT_KEYS, how="outer", suffixes=("_new", "_old"), indicator=True)
    merged["measure"] = merged["measure_new"].fillna(merged["measure_old"])
    merged["status"] = merged["_merge"].astype(str).map({"both": "both", "left_only": "new only",
                                                         "right_only": "old only"})
    for side in ("old", "new"):
        merged[f"ci_excludes_1_{side}"] = ci_excludes_one(merged[f"lcl_{side}"], merged[f"ucl_{side}"])
    est_old, est_new = merged["estimate_old"], merged["estimate_new"]
    merged["ratio_new_to_old"] = (est_new / est_old).where((est_old > 0) & est_new.notna())
    was, now = merged["ci_excludes_1_old"], merged["ci_excludes_1_new"]
    moved = (was.notna() & now.notna() & (was != now)).fillna(False).astype(bool)
    merged["conclusion_moved"] = moved
    merged["conclusion"] = np.select([moved & now.fillna(False).astype(bool), moved], ["CI now excludes 1",
                                                                                      "CI no longer excludes 1"], "")
    merged["iv_vs_sc"] = merged["term"].eq(IV_VS_SC)
    source_rank = merged["source"].map({s: i for i, s in enumerate(EFFECT_SOURCES)})
    merged = merged.assign(_i=~merged["iv_vs_sc"], _s=source_rank).sort_values(["_i", "_s", "outcome", "model",
                                                                                 "method", "term"])
    columns = EFFECT_KEYS + ["measure", "status"] \
        + [f"{v}_{s}" for s in ("old", "new") for v in value if v != "measure"] \
        + ["ratio_new_to_old", "ci_excludes_1_old", "ci_excludes_1_new", "conclusion_moved", "conclusion", "iv_vs_sc"]
    return merged[columns].reset_index(drop=True)


def compare(old: RunTables, new: RunTables, default_outcome: str | None = None) -> RunDiff:
    """Every comparison of two runs. ``default_outcome``: the outcome of an effect table without
    an `outcome` column (see `effect_estimates`)."""
    patients, fields = diff_patients(old.dataset, new.dataset)
    context = [KEY, "centre", "route_group"]
    in_both = new.dataset[context].merge(old.dataset[context], on=KEY, suffixes=("_new", "_old"))
    rows = pd.concat([diff_long(old.long.get(t), new.long.get(t), t, pd.Index(in_both[KEY])) for t in LONG_TABLES],
                     ignore_index=True)
    patients = add_long_changes(patients, rows, in_both)
    ledger, entries = diff_ledger(old.ledger, new.ledger)
    effects = diff_effects(*(effect_estimates(run.effects, default_outcome) for run in (old, new)))
    return RunDiff(old.name, new.name, patients, fields, rows, ledger, entries,
                   diff_attrition(old.attrition, new.attrition), diff_table1(old.table1, new.table1), effects)


# ----------------------------------------------------------------------------- writing
def write_diff(d: RunDiff, paths: dict[str, str | Path], synthetic: bool) -> None:
    """CSVs (fixed float format), summary.json and diff.html, at the paths named by OUTPUTS + summary, html."""
    from stormcohort.io import write_csv

    for name in OUTPUTS:
        write_csv(getattr(d, name), paths[name])
    Path(paths["summary"]).write_text(json.dumps({"synthetic": synthetic, **d.summary()}, indent=1) + "\n",
                                      encoding="utf-8")
    Path(paths["html"]).write_text(diff_html(d, synthetic), encoding="utf-8")


def _fmt(v, digits: int = 3) -> str:
    """A value as the page shows it: '' for missing, whole numbers whole, others to `digits`
    significant digits (large ones to the unit)."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if float(v).is_integer() or abs(v) >= 10 ** digits:
            return f"{v:.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def _ci(est, lcl, ucl) -> str:
    if pd.isna(est):
        return "not estimable"
    return f"{est:.3g} ({_fmt(lcl)} to {_fmt(ucl)})"


def display(frame: pd.DataFrame, columns: dict[str, str], moved=None, empty: str = "none") -> dict:
    """A table for the page: column labels, rows of cells as text (`moved`: which rows to
    highlight, a function of the row), and the sentence shown when there is no row."""
    rows = [{"cells": [_fmt(r[c]) for c in columns], "moved": bool(moved(r)) if moved else False}
            for _, r in frame.iterrows()]  # a report table: tens of rows, not data rows
    return {"columns": list(columns.values()), "rows": rows, "empty": empty}


def page_context(d: RunDiff, synthetic: bool) -> dict:
    """What diff.html.j2 shows: the summary and every table as display rows (text only)."""
    s = d.summary()
    cohort = [(label, _fmt(s["cohort"][step]["old"]), _fmt(s["cohort"][step]["new"]))
              for step, label in (("final_cohort", "Cohort"), ("route_IV", "IV group"), ("route_SC", "SC group"))]
    p = d.patients
    effects = d.effects.copy()
    for side in ("old", "new"):
        effects[side] = [_ci(*v) for v in effects[[f"estimate_{side}", f"lcl_{side}", f"ucl_{side}"]].itertuples(
            index=False)]
    conclusion_moved = lambda r: r["conclusion_moved"]  # noqa: E731
    t1 = d.table1
    smd = t1[t1["quantity"].eq("smd")].drop_duplicates(["variable", "level"])
    attrition_moved = lambda r: not pd.isna(r["change"]) and r["change"] != 0  # noqa: E731
    return {
        "synthetic": synthetic, "old": d.old, "new": d.new, "summary": s, "cohort": cohort,
        "added_removed": display(p[p["change"].ne("changed")], {
            KEY: "Patient key", "change": "Change", "centre_old": "Centre (old)", "centre_new": "Centre (new)",
            "route_group_old": "Route (old)", "route_group_new": "Route (new)"}),
        "changed": display(p[p["change"].eq("changed")], {
            KEY: "Patient key", "centre_new": "Centre", "route_group_old": "Route (old)",
            "route_group_new": "Route (new)", "fields_changed": "Fields changed"}),
        "fields": display(d.patient_fields, {KEY: "Patient key", "field": "Field", "old": "Old", "new": "New"}),
        "rows": display(d.patient_rows, {KEY: "Patient key", "table": "Table", "status": "Row", "n": "n",
                                         "row": "Values"}),
        "ledger": display(d.ledger[d.ledger["change"].ne(0)], {
            "centre": "Centre", "file": "File", "rule": "Rule", "scope": "Scope", "entries_old": "Old",
            "entries_new": "New", "change": "Change"}, empty="no change in the ledger's counts"),
        "ledger_entries": display(d.ledger_entries, {
            "status": "Entry", "centre": "Centre", "file": "File", "row": "Row", "column": "Column",
            "value": "Value", "rule": "Rule", "scope": "Scope"}),
        "attrition": display(d.attrition, {
            "step": "Step", "description": "Description", "n_remaining_old": "Remaining (old)",
            "n_remaining_new": "Remaining (new)", "change": "Change"}, moved=attrition_moved),
        "iv_vs_sc": display(effects[effects["iv_vs_sc"]], {
            "source": "Source", "outcome": "Outcome", "model": "Model", "method": "Method", "measure": "Measure",
            "old": "Old (95% CI)", "new": "New (95% CI)", "ratio_new_to_old": "New / old",
            "conclusion": "Conclusion moved"}, moved=conclusion_moved),
        # labels of Table 1's variables are the report's: the diff names them
        "table1": display(t1[t1["changed"]], {
            "variable": "Variable", "level": "Level", "group": "Group", "quantity": "Quantity", "old": "Old",
            "new": "New", "change": "Change"}),
        "smd": display(smd, {"variable": "Variable", "level": "Level", "old": "SMD (old)", "new": "SMD (new)",
                             "change": "Change"}, moved=lambda r: r["changed"]),
        "other_terms": display(effects[~effects["iv_vs_sc"]], {
            "source": "Source", "outcome": "Outcome", "model": "Model", "method": "Method", "term": "Term",
            "old": "Old (95% CI)", "new": "New (95% CI)", "conclusion": "Conclusion moved"}, moved=conclusion_moved),
    }


def diff_html(d: RunDiff, synthetic: bool) -> str:
    """One self-contained page (no external file, script or font) summarising the diff."""
    from stormcohort.report.pages import render_page

    return render_page("diff.html.j2", **page_context(d, synthetic))
