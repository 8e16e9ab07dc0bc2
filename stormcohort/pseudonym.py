"""Keyed pseudonyms: HMAC-SHA256 of a person's or an admission's identity under a secret key.

The same NHS number gives the same `person_key` at every centre (so a transfer between the
UK centres links); without an NHS number the key comes from the centre's own patient id.
Hashing runs once per distinct value, so the cost grows with people, not with rows.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

KEY_HEX_DIGITS = 12


def normalise_nhs(values: pd.Series) -> pd.Series:
    """NHS numbers as 10-digit strings (spaces, hyphens, an Excel `.0` removed); NA otherwise."""
    digits = (
        values.astype("string").str.strip()
        .str.replace(r"\.0$", "", regex=True)
        .str.replace(r"[\s-]", "", regex=True)
    )
    return digits.where(digits.str.fullmatch(r"\d{10}").fillna(False), pd.NA)


def _keyed_hash(messages: pd.Series, key: bytes, prefix: str) -> pd.Series:
    """`prefix` + the first hex digits of HMAC-SHA256(key, message), computed per distinct message."""
    if not key:
        raise ValueError("pseudonymisation key is empty")
    distinct = messages.dropna().unique()
    digests = {
        m: prefix + hmac.new(key, m.encode("utf-8"), hashlib.sha256).hexdigest()[:KEY_HEX_DIGITS]
        for m in distinct
    }
    return messages.astype(object).map(digests)


def person_key(nhs_number: pd.Series, centre: str, local_patient_id: pd.Series, key: bytes) -> pd.Series:
    """`P` + 12 hex: from the normalised NHS number when present, else from (centre, local patient id).

    NA where neither is present.
    """
    nhs = normalise_nhs(nhs_number)
    local = local_patient_id.astype("string").str.strip()
    messages = ("nhs:" + nhs).fillna(f"local:{centre}:" + local)
    return _keyed_hash(messages, key, "P")


def admission_key(centre: str, local_admission_id: pd.Series, key: bytes) -> pd.Series:
    """`A` + 12 hex from (centre, local admission id); NA where the local id is missing."""
    local = local_admission_id.astype("string").str.strip()
    return _keyed_hash(f"admission:{centre}:" + local, key, "A")
