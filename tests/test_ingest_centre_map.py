"""Centre maps: the shipped maps are valid; a broken map stops the run naming the key."""

import pytest
import yaml

from stormcohort.errors import ExtractError
from stormcohort.ingest import load_centre_map
from stormcohort.ingest.centre_map import lab_uln, load_centre_maps
from tests.ingest_fixtures import ROOT


def shipped(centre: str) -> dict:
    return yaml.safe_load((ROOT / "config" / "centres" / f"{centre}.yaml").read_text(encoding="utf-8"))


def write(tmp_path, centre_map: dict) -> str:
    path = tmp_path / "X.yaml"
    path.write_text(yaml.safe_dump(centre_map, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("centre", ["LDN", "SHF", "BHM"])
def test_shipped_maps_are_valid(centre):
    assert load_centre_map(ROOT / "config" / "centres" / f"{centre}.yaml")["centre"] == centre


def test_unknown_key_is_named(tmp_path):
    m = shipped("LDN")
    m["date_format"] = ["%d/%m/%Y"]
    with pytest.raises(ExtractError, match=r"X\.yaml: .*'date_format'"):
        load_centre_map(write(tmp_path, m))


def test_field_that_a_role_does_not_have_is_named(tmp_path):
    m = shipped("LDN")
    m["sources"][3]["columns"]["Result"] = "reslt"
    with pytest.raises(ExtractError, match=r"labs.csv.*'reslt' is not a labs field"):
        load_centre_map(write(tmp_path, m))


def test_code_that_is_not_canonical_is_named(tmp_path):
    m = shipped("SHF")
    m["codes"]["route"]["intravenous"] = "IVI"
    with pytest.raises(ExtractError, match=r"codes\.route\.intravenous: 'IVI' is not canonical"):
        load_centre_map(write(tmp_path, m))


def test_yaml_boolean_code_key_is_refused(tmp_path):
    path = tmp_path / "X.yaml"
    text = (ROOT / "config" / "centres" / "SHF.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace('flags: {"Yes": true, "No": false}', "flags: {Yes: true, No: false}"),
                    encoding="utf-8")
    with pytest.raises(ExtractError, match=r"codes/flags"):
        load_centre_map(path)


def test_child_source_that_cannot_link_is_refused(tmp_path):
    m = shipped("LDN")
    del m["sources"][2]["columns"]["Admission_ID"]
    with pytest.raises(ExtractError, match=r"anakinra.csv.*'admission_id', needed to link"):
        load_centre_map(write(tmp_path, m))


def test_invalid_pattern_is_refused(tmp_path):
    m = shipped("LDN")
    m["patterns"]["term"]["rules"][0]["pattern"] = "(unclosed"
    with pytest.raises(ExtractError, match=r"patterns\.term\.rules\[0\]: invalid regular expression"):
        load_centre_map(write(tmp_path, m))


def test_missing_map_file(tmp_path):
    with pytest.raises(ExtractError, match=r"centre map not found"):
        load_centre_map(tmp_path / "nope.yaml")


def test_every_canonical_table_needs_a_source(tmp_path):
    m = shipped("BHM")
    m["sources"] = [s for s in m["sources"] if s["role"] != "adverse_events"]
    with pytest.raises(ExtractError, match=r"no adverse_events source"):
        load_centre_map(write(tmp_path, m))


def test_configured_centres_give_their_ulns():
    maps = load_centre_maps(["BHM", "LDN"], ROOT / "config" / "centres", uln_tests=["alt", "ast"])
    assert list(maps) == ["BHM", "LDN"]
    assert lab_uln(maps, ["ast"]) == {"BHM": {"ast": 50}, "LDN": {"ast": 40}}


def test_a_configured_centre_without_a_map_is_named(tmp_path):
    with pytest.raises(ExtractError, match=r"centre MAN: centre map .*MAN\.yaml not found.*remove MAN from `centres`"):
        load_centre_maps(["MAN"], tmp_path)


def test_a_map_filed_under_another_centre_is_refused(tmp_path):
    write(tmp_path, shipped("LDN")).rename(tmp_path / "MAN.yaml")
    with pytest.raises(ExtractError, match=r"MAN\.yaml: centre: 'LDN', but the file is the map of MAN"):
        load_centre_maps(["MAN"], tmp_path)


def test_ulns_of_unknown_tests_are_refused(tmp_path):
    m = shipped("LDN")
    m["lab_uln"]["alk_phos"] = 130
    with pytest.raises(ExtractError, match=r"lab_uln\.alk_phos: unknown test"):
        load_centre_map(write(tmp_path, m))
