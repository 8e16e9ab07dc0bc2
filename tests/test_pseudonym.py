"""Pseudonyms: NHS number normalisation and keyed, stable, centre-independent person keys."""

import hashlib
import hmac
import re

import pandas as pd

from stormcohort import pseudonym
from stormcohort.pseudonym import admission_key, normalise_nhs, person_key

PERSON = re.compile(r"^P[0-9a-f]{12}$")
ADMISSION = re.compile(r"^A[0-9a-f]{12}$")


def test_normalise_nhs_accepts_the_ways_a_number_is_written():
    written = pd.Series(["485 777 3456", "485-777-3456", " 4857773456 ", 4857773456, 4857773456.0, "4857773456.0"],
                        dtype=object)
    assert normalise_nhs(written).tolist() == ["4857773456"] * 6


def test_normalise_nhs_rejects_what_is_not_ten_digits():
    bad = pd.Series(["485 777 345", "48577734560", "485777345X", "", None, float("nan")], dtype=object)
    assert normalise_nhs(bad).isna().all()


def test_person_key_from_nhs_number_is_the_same_at_every_centre():
    ldn = person_key(pd.Series(["485 777 3456"]), "LDN", pd.Series(["L001"]), b"k")
    shf = person_key(pd.Series([4857773456], dtype=object), "SHF", pd.Series(["S100"]), b"k")
    assert ldn.iloc[0] == shf.iloc[0]
    assert PERSON.match(ldn.iloc[0])


def test_person_key_without_nhs_number_depends_on_centre_and_local_id():
    nhs = pd.Series([None, None, None], dtype=object)
    keys = person_key(nhs, "BHM", pd.Series(["M1", "M2", "M1"]), b"k")
    other_centre = person_key(nhs, "LDN", pd.Series(["M1", "M2", "M1"]), b"k")
    assert keys.iloc[0] == keys.iloc[2] != keys.iloc[1]
    assert not set(keys) & set(other_centre)
    assert all(PERSON.match(k) for k in keys)


def test_person_key_is_missing_when_nothing_identifies_the_person():
    keys = person_key(pd.Series([None], dtype=object), "LDN", pd.Series([None], dtype=object), b"k")
    assert keys.isna().all()


def test_keys_are_stable_under_the_same_secret_and_change_with_it():
    ids = pd.Series(["ADM1", "ADM2"])
    assert admission_key("LDN", ids, b"secret").tolist() == admission_key("LDN", ids, b"secret").tolist()
    assert not set(admission_key("LDN", ids, b"secret")) & set(admission_key("LDN", ids, b"other"))
    assert not set(admission_key("LDN", ids, b"secret")) & set(admission_key("SHF", ids, b"secret"))
    assert all(ADMISSION.match(k) for k in admission_key("LDN", ids, b"secret"))


def test_the_key_is_a_keyed_hash_not_a_plain_digest():
    key = admission_key("LDN", pd.Series(["ADM1"]), b"secret").iloc[0]
    plain = hashlib.sha256(b"admission:LDN:ADM1").hexdigest()[:12]
    assert key[1:] != plain


def test_hashing_runs_once_per_distinct_value(monkeypatch):
    calls = []
    real = hmac.new
    monkeypatch.setattr(pseudonym.hmac, "new", lambda *a, **k: calls.append(1) or real(*a, **k))
    ids = pd.Series(["ADM1", "ADM2"] * 500)
    keys = admission_key("LDN", ids, b"secret")
    assert len(calls) == 2
    assert keys.nunique() == 2 and len(keys) == 1000
