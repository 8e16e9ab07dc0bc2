"""Linking: the same person at two centres is one patient; collisions are refused."""

import pytest

from stormcohort.link import link_centres
from tests.canonical_factory import World, key
from tests.test_cohort import split_by_centre


def test_person_at_two_centres_is_one_patient():
    w = World()
    w.admission("bob", "LDN", "2019-03-01", "2019-03-05", sex="M")
    w.admission("bob", "SHF", "2019-03-06", "2019-03-30", sex="F")
    w.admission("amy", "BHM", "2019-03-01", "2019-03-05")
    linked, summary = link_centres(split_by_centre(w.tables()))
    patients = linked["patients"].set_index("person_key")
    assert len(patients) == 2
    assert patients.loc[key("P", "bob"), "centres"] == "LDN;SHF"
    assert bool(patients.loc[key("P", "bob"), "sex_conflict"])
    assert len(linked["admissions"]) == 3
    s = summary.set_index("centre")
    assert s.loc["LDN", "people_also_at_another_centre"] == 1 and s.loc["BHM", "people_also_at_another_centre"] == 0
    assert s["admissions"].tolist() == [1, 1, 1]


def test_duplicate_admission_keys_across_centres_stop_the_run():
    w = World()
    w.admission("bob", "LDN", "2019-03-01", "2019-03-05")
    clean = split_by_centre(w.tables())
    clean["SHF"]["admissions"] = clean["LDN"]["admissions"].assign(centre="SHF")
    with pytest.raises(ValueError, match="admission keys shared"):
        link_centres(clean)

