"""What changed between two runs: an older delivery's results and an updated delivery's.

Works on the runs' output tables only, so on pseudonymous keys and derived values, never on an
identifier: patients added, removed and changed (`cohort/analysis_dataset.csv`, and their rows
of the cohort's long tables), cleaning-ledger entries (`clean/<C>/exclusions.csv`), attrition
step by step, every Table 1 cell and SMD, and every effect estimate (Cox HR, logistic OR, rate
ratio IRR) with the change and a flag where the conclusion moved: the confidence interval
excluded 1 and no longer does, or the reverse.

`compare(old, new)` takes two `RunTables` (`read_run(folder)`) and returns a `RunDiff`;
`write_diff` writes it as CSVs, `summary.json` and a self-contained `diff.html`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stormcohort.io import read_as_text

KEY = "patient_key"
LONG_TABLES = ("anakinra", "labs", "adverse_events")
# Columns of the long tables that describe the patient rather than the row (their changes show in the dataset).
LONG_CONTEXT = (KEY, "centre", "route_group")
LEDGER_MATCH = ["centre", "file", "column", "value", "rule", "scope"]  # not `row` (rows renumber), not `reason` (quotes rows)
LEDGER_GROUP = ["centre", "file", "rule", "scope"]
TABLE1_CELLS = ["overall", "IV", "SC", "missing", "smd"]
EFFECT_KEYS = ["source", "outcome", "model", "method", "term"]
EFFECT_SOURCES = {  # table -> measure, estimate, lower, upper column names
    "cox": ("HR", "hr", "hr_lcl", "hr_ucl"),
    "logistic": ("OR", "or", "or_lcl", "or_ucl"),
    "rate_ratios": ("IRR", "irr", "irr_lcl", "irr_ucl"),
}
IV_VS_SC = "route_group[IV]"
OUTPUTS = ("patients", "patient_fields", "patient_rows", "ledger", "ledger_entries", "attrition", "table1", "effects")


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
def long_table(folder: Path, table: str) -> Path:
    """cohort/<table>.parquet (labs) or .csv; a run made before labs moved to Parquet has the CSV."""
    parquet = folder / "cohort" / f"{table}.parquet"
    return parquet if parquet.is_file() else folder / "cohort" / f"{table}.csv"


def read_run(folder: Path | str, name: str | None = None) -> RunTables:
    """The tables of a finished run under results/<run>/ (missing optional tables are None)."""
    folder = Path(folder)
    text = lambda p: pd.read_csv(p, dtype=str, keep_default_na=False)  # noqa: E731 - exactly as written
    optional = lambda p, reader: reader(p) if p.is_file() else None  # noqa: E731
    required = [folder / "cohort" / "analysis_dataset.csv", folder / "cohort" / "attrition.csv",
                folder / "tables" / "table1.csv"]
    missing = [str(p) for p in required if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not a finished run ({', '.join(missing)} not found)")
    ledgers = sorted((folder / "clean").glob("*/exclusions.csv"))
    ledger = pd.concat([text(p) for p in ledgers], ignore_index=True) if ledgers else \
        pd.DataFrame(columns=LEDGER_MATCH + ["row", "reason"])
    return RunTables(
        name=name or folder.name,
        dataset=pd.read_csv(required[0]),
        attrition=pd.read_csv(required[1]),
        table1=text(required[2]),
        ledger=ledger,
        long={t: optional(long_table(folder, t), read_as_text) for t in LONG_TABLES},
        effects={t: optional(folder / "tables" / f"{t}.csv", pd.read_csv) for t in EFFECT_SOURCES},
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
    extra = both[both[KEY].isin(tables.index) & ~both[KEY].isin(patients[KEY])].assign(change="changed", fields_changed="")
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
    """Every Table 1 cell (overall, IV, SC, missing, smd) old and new, read as text, with `changed`
    and, where both are numbers (counts, missing, SMD), the numeric change."""
    keys = ["variable", "level"]
    described = ["label", "statistic"]

    def long(d: pd.DataFrame) -> pd.DataFrame:
        d = d.reindex(columns=keys + described + TABLE1_CELLS).fillna("").astype(str)
        d = d.assign(_o=np.arange(len(d)))
        return d.melt(keys + described + ["_o"], TABLE1_CELLS, var_name="column")

    merged = long(new).merge(long(old), on=keys + ["column"], how="outer", suffixes=("_new", "_old"))
    for c in described:
        merged[c] = merged[f"{c}_new"].fillna(merged[f"{c}_old"])
    merged["_o"] = merged["_o_new"].fillna(merged["_o_old"] + 10_000)
    merged["changed"] = ~same(merged["value_old"], merged["value_new"]).to_numpy()
    num_old = pd.to_numeric(merged["value_old"], errors="coerce")
    num_new = pd.to_numeric(merged["value_new"], errors="coerce")
    merged["change"] = (num_new - num_old).round(6)
    merged["_c"] = merged["column"].map({c: i for i, c in enumerate(TABLE1_CELLS)})
    merged = merged.sort_values(["_o", "_c"])
    merged = merged.rename(columns={"value_old": "old", "value_new": "new"})
    return merged[keys + described + ["column", "old", "new", "change", "changed"]].reset_index(drop=True)


def effect_estimates(tables: dict[str, pd.DataFrame | None], cox_outcome: str = "death_90d") -> pd.DataFrame:
    """Every effect estimate of one run in one long table (intercepts left out): source, outcome,
    model, method, term, measure, estimate, lcl, ucl, n, events."""
    columns = EFFECT_KEYS + ["measure", "estimate", "lcl", "ucl", "n", "events"]
    parts = []
    for source, (measure, est, lcl, ucl) in EFFECT_SOURCES.items():
        table = tables.get(source)
        if table is None:
            continue
        table = table.copy()
        if "outcome" not in table:
            table["outcome"] = cox_outcome
        if "method" not in table:
            table["method"] = ""
        if "n" not in table:  # rate ratios: patient-days, not patients
            table["n"] = np.nan
        if "events" not in table:
            table["events"] = table[["events_iv", "events_sc"]].sum(axis=1, min_count=1) \
                if {"events_iv", "events_sc"} <= set(table.columns) else np.nan
        parts.append(table.rename(columns={est: "estimate", lcl: "lcl", ucl: "ucl"}).assign(
            source=source, measure=measure).reindex(columns=columns))
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    out["method"] = out["method"].fillna("")
    return out[out["term"].ne("(Intercept)")].reset_index(drop=True)


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
    merged["status"] = merged["_merge"].astype(str).map({"both": "both", "left_only": "new only", "right_only": "old only"})
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
    columns = EFFECT_KEYS + ["measure", "status"] + [f"{v}_{s}" for s in ("old", "new") for v in value if v != "measure"] \
        + ["ratio_new_to_old", "ci_excludes_1_old", "ci_excludes_1_new", "conclusion_moved", "conclusion", "iv_vs_sc"]
    return merged[columns].reset_index(drop=True)


def compare(old: RunTables, new: RunTables, cox_outcome: str = "death_90d") -> RunDiff:
    """Every comparison of two runs."""
    patients, fields = diff_patients(old.dataset, new.dataset)
    context = [KEY, "centre", "route_group"]
    in_both = new.dataset[context].merge(old.dataset[context], on=KEY, suffixes=("_new", "_old"))
    rows = pd.concat([diff_long(old.long.get(t), new.long.get(t), t, pd.Index(in_both[KEY])) for t in LONG_TABLES],
                     ignore_index=True)
    patients = add_long_changes(patients, rows, in_both)
    ledger, entries = diff_ledger(old.ledger, new.ledger)
    effects = diff_effects(effect_estimates(old.effects, cox_outcome), effect_estimates(new.effects, cox_outcome))
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
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}g}"
    return str(v)


def _table(frame: pd.DataFrame, columns: dict[str, str], row_class=None, empty: str = "none") -> str:
    if frame.empty:
        return f'<p class="none">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(label)}</th>" for label in columns.values())
    body = []
    for _, r in frame.iterrows():  # a report table: tens of rows, not data rows
        cls = row_class(r) if row_class else ""
        cells = "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in columns)
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _ci(est, lcl, ucl) -> str:
    if pd.isna(est):
        return "not estimable"
    return f"{est:.3g} ({_fmt(lcl)} to {_fmt(ucl)})"


def diff_html(d: RunDiff, synthetic: bool) -> str:
    """One self-contained page (no external file, script or font) summarising the diff."""
    s = d.summary()
    e = html.escape
    banner = ('<p class="synthetic"><strong>SYNTHETIC DATA</strong>: made by the stormcohort generator; '
              'no real patient is described.</p>') if synthetic else ""
    p = d.patients
    cohort = s["cohort"]
    lines = [f"<li>Patients: {s['patients']['added']} added, {s['patients']['removed']} removed, "
             f"{s['patients']['changed']} changed.</li>"]
    for step, label in (("final_cohort", "Cohort"), ("route_IV", "IV group"), ("route_SC", "SC group")):
        lines.append(f"<li>{label}: {_fmt(cohort[step]['old'])} &rarr; {_fmt(cohort[step]['new'])}</li>")
    lines.append(f"<li>Cleaning ledger: {s['ledger_entries']['added']} entries added, "
                 f"{s['ledger_entries']['removed']} removed.</li>")
    lines.append(f"<li>Table 1: {s['table1_cells_changed']} cells changed.</li>")
    lines.append(f"<li>Effect estimates: {s['effects']} compared; the conclusion moved for "
                 f"{s['effects_conclusion_moved']} ({s['iv_vs_sc_conclusion_moved']} IV vs SC).</li>")

    effects = d.effects.copy()
    effects["old"] = [_ci(*v) for v in effects[["estimate_old", "lcl_old", "ucl_old"]].itertuples(index=False)]
    effects["new"] = [_ci(*v) for v in effects[["estimate_new", "lcl_new", "ucl_new"]].itertuples(index=False)]
    effect_cols = {"source": "Source", "outcome": "Outcome", "model": "Model", "method": "Method", "measure": "Measure",
                   "old": "Old (95% CI)", "new": "New (95% CI)", "ratio_new_to_old": "New / old",
                   "conclusion": "Conclusion moved"}
    moved = lambda r: "moved" if r["conclusion_moved"] else ""  # noqa: E731
    iv = effects[effects["iv_vs_sc"]]
    other = effects[~effects["iv_vs_sc"]]

    t1 = d.table1[d.table1["changed"]]
    smd = d.table1[d.table1["column"].eq("smd") & (d.table1["old"].fillna("").ne("") | d.table1["new"].fillna("").ne(""))]
    ledger = d.ledger[d.ledger["change"].ne(0)]
    sections = [
        "<h2>Summary</h2><ul>" + "".join(lines) + "</ul>",
        "<h2>Patients added and removed</h2>" + _table(
            p[p["change"].ne("changed")],
            {KEY: "Patient key", "change": "Change", "centre_old": "Centre (old)", "centre_new": "Centre (new)",
             "route_group_old": "Route (old)", "route_group_new": "Route (new)"}),
        "<h2>Patients changed</h2>" + _table(
            p[p["change"].eq("changed")], {KEY: "Patient key", "centre_new": "Centre", "route_group_old": "Route (old)",
                                           "route_group_new": "Route (new)", "fields_changed": "Fields changed"}),
        "<h3>Changed values</h3>" + _table(d.patient_fields, {KEY: "Patient key", "field": "Field", "old": "Old",
                                                               "new": "New"}),
        "<h3>Changed rows of the long tables</h3>" + _table(
            d.patient_rows, {KEY: "Patient key", "table": "Table", "status": "Row", "n": "n", "row": "Values"}),
        "<h2>Cleaning ledger</h2>" + _table(ledger, {"centre": "Centre", "file": "File", "rule": "Rule", "scope": "Scope",
                                                     "entries_old": "Old", "entries_new": "New", "change": "Change"},
                                            empty="no change in the ledger's counts")
        + "<h3>Entries in one delivery only</h3>" + _table(
            d.ledger_entries, {"status": "Entry", "centre": "Centre", "file": "File", "row": "Row", "column": "Column",
                               "value": "Value", "rule": "Rule", "scope": "Scope"}),
        "<h2>Attrition</h2>" + _table(d.attrition, {"step": "Step", "description": "Description",
                                                    "n_remaining_old": "Remaining (old)",
                                                    "n_remaining_new": "Remaining (new)", "change": "Change"},
                                      row_class=lambda r: "moved" if not pd.isna(r["change"]) and r["change"] != 0 else ""),
        "<h2>Effect estimates: IV vs SC</h2>" + _table(iv, effect_cols, row_class=moved),
        "<h2>Table 1: cells changed</h2>" + _table(t1, {"label": "Characteristic", "level": "Level", "column": "Column",
                                                        "old": "Old", "new": "New"}),
        "<h3>Standardised mean differences</h3>" + _table(smd, {"label": "Characteristic", "old": "SMD (old)",
                                                                  "new": "SMD (new)", "change": "Change"}),
        "<details><summary>Other model terms (adjustment covariates)</summary>"
        + _table(other, {"source": "Source", "outcome": "Outcome", "model": "Model", "method": "Method",
                         "term": "Term", "old": "Old (95% CI)", "new": "New (95% CI)", "conclusion": "Conclusion moved"},
                 row_class=moved) + "</details>",
    ]
    style = ("body{font-family:sans-serif;max-width:72em;margin:1em auto;padding:0 1em}table{border-collapse:collapse;"
             "margin:.5em 0}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;font-size:90%}"
             "tr.moved td{background:#fff3c4;font-weight:bold}.synthetic{background:#fde2e2;padding:4px}"
             ".none{color:#666;font-style:italic}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>What changed: {e(d.old)} to {e(d.new)}</title><style>{style}</style></head><body>{banner}"
        f"<h1>What changed between two deliveries</h1><p>Old run <code>{e(d.old)}</code>, new run "
        f"<code>{e(d.new)}</code>. Patients are named by their pseudonymous key only. A row is highlighted where a "
        "count changed or an estimate's 95% confidence interval now excludes 1 or no longer does.</p>"
        + "".join(sections) + "</body></html>\n"
    )
