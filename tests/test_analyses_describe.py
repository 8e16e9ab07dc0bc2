"""The describe rule's tables, the data dictionary's coverage, and write_outputs."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from stormcohort.analyses.competing import competing_risks_analysis
from stormcohort.analyses.describe import EXPOSURE_COLUMNS, FOLLOW_UP_COLUMNS, describe_analysis
from stormcohort.analyses.dictionary import TABLES, undocumented
from stormcohort.analyses.result import AnalysisResult, write_outputs
from stormcohort.analyses.survival import survival_analysis
from tests.config_defaults import schema_defaults
from tests.test_analyses_binary import cohort_tables

# rule output key -> the tables/<name>.csv it is written to
TABLE_OF = {"km": "km", "km_risk": "km_risk", "logrank": "logrank", "cox": "cox", "ph_test": "ph_test",
            "cif": "cif", "cif_summary": "cif_summary", "cif_risk": "cif_risk", "cif_tests": "cif_tests",
            "table1": "table1",
            "exposure": "exposure", "follow_up": "follow_up", "dictionary": "data_dictionary"}


@pytest.fixture(scope="module")
def tables():
    t = cohort_tables()
    return t["dataset"], t["anakinra"]


def test_describe_tables(tables):
    dataset, anakinra = tables
    r = describe_analysis(dataset, anakinra)
    assert list(r.tables) == ["table1", "exposure", "follow_up", "dictionary"]
    assert list(r.tables["exposure"].columns) == EXPOSURE_COLUMNS
    fu = r.tables["follow_up"].set_index("group")
    assert list(r.tables["follow_up"].columns) == FOLLOW_UP_COLUMNS and list(fu.index) == ["overall", "IV", "SC"]
    t = dataset["time_to_death_days"]
    assert fu.loc["overall", "patients"] == len(dataset) and fu.loc["overall", "person_days"] == int(t.sum())
    assert fu.loc["overall", "median"] == pytest.approx(np.percentile(t, 50))
    early = dataset["death_90d"].eq(0) & t.lt(90)
    assert fu.loc["overall", "ended_alive_before_horizon"] == early.sum()
    assert fu.loc["IV", "ended_alive_before_horizon"] == early[dataset["route_group"].eq("IV")].sum()


def test_dictionary_documents_every_column(tables):
    dataset, anakinra = tables
    results = [describe_analysis(dataset, anakinra),
               survival_analysis(dataset, schema_defaults("survival"), 90),
               competing_risks_analysis(dataset, schema_defaults("competing_risks"))]
    for r in results:
        for key, table in r.tables.items():
            assert TABLE_OF[key] in TABLES and not undocumented(TABLE_OF[key], table.columns), key
    assert undocumented("km", ["surv_45", "surv_45_lcl", "surv_x"]) == ["surv_x"]
    d = results[0].tables["dictionary"]
    assert not d.duplicated(["table", "column"]).any() and d["description"].str.len().gt(0).all()


def test_write_outputs_writes_each_table_by_key(tmp_path, caplog):
    out = {"a": str(tmp_path / "a.csv"), "model": str(tmp_path / "m.json")}
    r = AnalysisResult(tables={"a": pd.DataFrame({"x": [1.0]})}, model={"k": 1}, notes=("careful",))
    with caplog.at_level(logging.WARNING):
        write_outputs(r, out, logging.getLogger("t"))
    assert (tmp_path / "a.csv").read_text() == "x\n1\n" and "careful" in caplog.text
    with pytest.raises(KeyError, match="'b'"):
        write_outputs(AnalysisResult(tables={"b": pd.DataFrame()}), out)
    with pytest.raises(TypeError):
        r.tables["c"] = pd.DataFrame()  # frozen


def test_every_declared_result_table_is_in_the_dictionary():
    """Each tables/<name>.csv an analysis rule declares (stormcohort.outputs) has its columns described."""
    import re

    from stormcohort.outputs import ANALYSES, OUTPUTS

    declared = {m.group(1) for rule in ANALYSES for p in OUTPUTS[rule].values()
                if (m := re.fullmatch(r"tables/(\w+)\.csv", p))}
    assert {"protocol", "balance", "weights", "overlap", "effect", "sensitivity", "evalues"} <= declared
    assert not declared - set(TABLES)


def test_the_comparison_contract_is_documented():
    from tests import comparison_fixtures as X

    for name, table in {"protocol": X.PROTOCOL, "balance": X.BALANCE, "weights": X.WEIGHTS, "overlap": X.OVERLAP,
                        "effect": X.EFFECT, "sensitivity": X.SENSITIVITY, "evalues": X.EVALUES}.items():
        assert list(TABLES[name]) == list(table.columns), name
