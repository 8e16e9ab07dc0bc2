"""Link the centres' clean tables into one set.

Ingest already replaced identifiers by keyed hashes of the normalised NHS number, so the
same person at LDN and SHF carries the same `person_key`: linking is a union plus checks.
"""

from __future__ import annotations

import pandas as pd

from stormcohort.canonical import COLUMNS, TABLES


def link_centres(clean: dict[str, dict[str, pd.DataFrame]]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Union each canonical table over the centres; one patients row per person.

    Returns the linked tables and a summary (per centre: people, admissions, people also
    seen at another centre, sex disagreements between centres).
    """
    centres = list(clean)
    linked = {
        name: pd.concat([clean[c][name] for c in centres], ignore_index=True)[COLUMNS[name]]
        for name in TABLES
    }
    duplicated = linked["admissions"]["admission_key"].duplicated(keep=False)
    if duplicated.any():
        keys = ", ".join(sorted(linked["admissions"].loc[duplicated, "admission_key"].unique())[:5])
        raise ValueError(f"admission keys shared between centres ({keys}): "
                         "pseudonym collision or a centre delivered twice")

    by_person = linked["patients"].sort_values(["person_key", "centre"])
    sexes = by_person.dropna(subset=["sex"]).groupby("person_key")["sex"].nunique()
    per_person = by_person.groupby("person_key").agg(
        centres=("centre", lambda s: ";".join(s)),
        n_centres=("centre", "size"),
        sex=("sex", "first"),  # first recorded, centres in alphabetical order
    )
    per_person["sex_conflict"] = sexes.reindex(per_person.index, fill_value=0).gt(1)
    linked["patients"] = per_person.reset_index()

    multi = by_person.merge(per_person[["n_centres", "sex_conflict"]], left_on="person_key", right_index=True)
    admissions = linked["admissions"].groupby("centre").size()
    summary = (
        multi.groupby("centre")
        .agg(people=("person_key", "size"),
             people_also_at_another_centre=("n_centres", lambda s: int((s > 1).sum())),
             sex_conflicts=("sex_conflict", "sum"))
        .join(admissions.rename("admissions"))
        .reindex(centres)
        .fillna(0)
        .astype(int)
        .reset_index()
    )
    return linked, summary
