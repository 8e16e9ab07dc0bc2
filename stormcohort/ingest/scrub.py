"""Direct identifiers typed into free text (a surname in a trigger detail, an NHS number in an
adverse-event description): found as the privacy scanner finds them, replaced by `[redacted]`.

A text holds an identifier when one of its tokens, or two or three adjacent tokens joined, is
one of the centre's identifier strings normalised as `stormcohort.privacy.identifier_set` does
(so `485 777 3456`, `SMITHSON` and `02/03/1970` are caught), or is shaped like an NHS number
(10 digits, or 3 + 3 + 4). Texts are checked once per distinct value.
"""

from __future__ import annotations

import re

import pandas as pd

SCRUBBED = "[redacted]"
WORD = re.compile(r"[A-Za-z0-9]+")  # privacy.TOKEN, on the text as written (spans stay aligned)
NHS_SHAPED = ((10,), (3, 3, 4))


def _spans(text: str, identifiers: set[str]) -> list[tuple[int, int]]:
    """Character spans of `text` holding an identifier (overlapping spans merged)."""
    tokens = [(m.start(), m.end(), m.group().lower()) for m in WORD.finditer(text)]
    hits = []
    for i in range(len(tokens)):
        for width in (1, 2, 3):
            part = tokens[i:i + width]
            if len(part) < width:
                break
            gram = "".join(t for _, _, t in part)
            shape = tuple(len(t) for _, _, t in part)
            if gram in identifiers or (gram.isdigit() and shape in NHS_SHAPED):
                hits.append((part[0][0], part[-1][1]))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(hits):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _scrub_one(text: str, identifiers: set[str]) -> str | None:
    """The text with identifiers replaced, or None when it holds none."""
    spans = _spans(text, identifiers)
    if not spans:
        return None
    for start, end in reversed(spans):
        text = text[:start] + SCRUBBED + text[end:]
    return text


def scrub(texts: pd.Series, identifiers: set[str]) -> tuple[pd.Series, pd.Series]:
    """(texts with identifiers replaced, mask of the texts that held one)."""
    distinct = texts.dropna().unique()
    changed = {t: s for t in distinct if (s := _scrub_one(str(t), identifiers)) is not None}
    if not changed:
        return texts, pd.Series(False, index=texts.index)
    hit = texts.isin(list(changed))
    return texts.mask(hit, texts.map(changed)), hit


def holds_identifier(values: pd.Series, identifiers: set[str]) -> pd.Series:
    """Mask of the values holding an identifier (for values quoted in the ledger)."""
    distinct = values.dropna().astype(str).unique()
    found = {v for v in distinct if _spans(v, identifiers)}
    return values.astype(str).isin(found) & values.notna() if found else pd.Series(False, index=values.index)
