"""Fake direct identifiers: realistic in form, obviously fake in content, unique.

- NHS numbers come from the 999 range, which NHS England reserves for test data, and carry
  a valid modulus-11 check digit.
- MRNs start with Z (no real trust or US hospital numbering uses it) and have 9 characters.
- Names come from lists of uncommon names that are not English words and not medical
  terms, so a privacy scan for a name can never be confused with ordinary text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SURNAMES = (
    "Abernethy", "Ackerley", "Ainsworth", "Albright", "Ashdown", "Atherton", "Babington", "Bannerman",
    "Barraclough", "Beauchamp", "Blackwood", "Blenkinsop", "Bostock", "Braithwaite", "Brocklehurst",
    "Buckingham", "Caldecott", "Carmichael", "Carrington", "Cavendish", "Chadwick", "Chetwynd",
    "Cholmondeley", "Coutts", "Cresswell", "Cuthbertson", "Dalrymple", "Delacroix", "Drummond",
    "Dunmore", "Eastwood", "Ellingham", "Entwistle", "Fairbairn", "Fairclough", "Farquharson",
    "Featherstone", "Fenwick", "Fitzwilliam", "Gallagher", "Garside", "Gillespie", "Glendinning",
    "Greenhalgh", "Grimshaw", "Hargreaves", "Hathersage", "Heathcote", "Hetherington", "Holroyd",
    "Horsfall", "Illingworth", "Inglethorpe", "Jarrold", "Kavanagh", "Kilbride", "Kinloch",
    "Kirkpatrick", "Lambourne", "Langstaff", "Ledbetter", "Lockhart", "Loughran", "Macaulay",
    "Mackintosh", "Marchbanks", "Merriweather", "Molyneux", "Montague", "Mulholland", "Nettleton",
    "Northcote", "Oakenshaw", "Ogilvie", "Ormerod", "Pemberton", "Pennington", "Polglase",
    "Postlethwaite", "Quartermaine", "Rathbone", "Ravenscroft", "Rawsthorne", "Rockingham",
    "Rowbotham", "Sackville", "Shackleton", "Sheringham", "Sowerbutts", "Stainthorpe",
    "Strickland", "Sutcliffe", "Tattersall", "Thistlethwaite", "Throckmorton", "Trelawney",
    "Tregenza", "Uttley", "Vavasour", "Wadsworth", "Wainwright", "Warburton", "Whitworth",
    "Wigglesworth", "Winstanley", "Witherspoon", "Wolstenholme", "Yardley", "Oyelaran", "Adebayo",
    "Okonkwo", "Chaudhry", "Ramaswamy", "Venkataraman", "Krishnamurthy", "Nakamura", "Takahashi",
    "Kowalczyk", "Wisniewski", "Papadakis", "Konstantinou", "Vasquez", "Echeverria", "Lindqvist",
    "Andersson", "Fitzgerald", "Ogundipe", "Szymanski", "Castellanos",
)
FORENAMES = {
    "F": ("Anwen", "Aurelia", "Beatrix", "Bronwen", "Cosima", "Cressida", "Delphine", "Dorothea", "Eleanora",
          "Fenella", "Gwendolyn", "Henrietta", "Imogen", "Isolde", "Juliana", "Lavinia", "Lucinda", "Mairead",
          "Marguerite", "Niamh", "Octavia", "Ottilie", "Perpetua", "Philippa", "Rosalind", "Saoirse", "Seraphina",
          "Siobhan", "Tabitha", "Theodora", "Ulrika", "Valentina", "Wilhelmina", "Xanthe", "Yevgenia", "Chidinma",
          "Priyanka", "Yusra", "Xiaoling", "Katarzyna", "Eleftheria", "Ximena", "Guadalupe", "Solveig",
          "Fionnuala", "Sigrid", "Evadne", "Hermione", "Ianthe", "Jemima", "Morwenna", "Rhiannon", "Zenobia",
          "Clementine"),
    "M": ("Alasdair", "Bartholomew", "Caspian", "Desmond", "Eamonn", "Evander", "Florian", "Hamish", "Horatio",
          "Jolyon", "Kenelm", "Leopold", "Montgomery", "Oisin", "Peregrine", "Ptolemy", "Rupert", "Tadeusz",
          "Thaddeus", "Zebedee", "Ignatius", "Oluwaseun", "Anirudh", "Siddharth", "Ayodele", "Kwabena", "Hiroshi",
          "Wojciech", "Anastasios", "Bjorn", "Ruaraidh", "Lachlan", "Casimir", "Gideon", "Leofric", "Odhran",
          "Tarquin", "Wenceslas", "Aloysius", "Benedikt", "Cuthbert", "Fergus", "Lorcan", "Mstislav"),
}

LONDON_DISTRICTS = ("E1", "E8", "E17", "N7", "N16", "NW3", "NW6", "SE5", "SE15", "SW9", "SW17", "W12", "WC1N", "EC1V")
# Letters allowed in the inward code of a UK postcode (C, I, K, M, O, V are never used).
POSTCODE_UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
# Birmingham, Alabama and its surroundings.
ZIP_PREFIXES = ("350", "351", "352", "354")

NHS_TEST_PREFIX = 999
NHS_WEIGHTS = np.arange(10, 1, -1)  # weights of the first nine digits in the modulus-11 check


def nhs_check_digit(first_nine: np.ndarray) -> np.ndarray:
    """Modulus-11 check digit of each row of an (n, 9) digit array; 10 means 'invalid number'."""
    check = 11 - (first_nine @ NHS_WEIGHTS) % 11
    return np.where(check == 11, 0, check)


def nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct valid NHS numbers (10-digit strings) from the 999 test range."""
    # Oversample the 6 free digits: about 1 in 11 draws has no valid check digit.
    bodies = rng.choice(1_000_000, size=min(1_000_000, int(n * 1.2) + 20), replace=False)
    nine = NHS_TEST_PREFIX * 1_000_000 + bodies
    digits = (nine[:, None] // 10 ** np.arange(8, -1, -1)) % 10
    check = nhs_check_digit(digits)
    valid = check < 10
    numbers = (nine * 10 + check)[valid][:n]
    if len(numbers) < n:
        raise ValueError(f"cannot make {n} distinct NHS test numbers (the 999 range holds about 909,000)")
    return numbers.astype(str)


def with_spaces(nhs: pd.Series) -> pd.Series:
    """NHS numbers as often printed: '999 123 4567'."""
    return nhs.str[:3] + " " + nhs.str[3:6] + " " + nhs.str[6:]


def mrns(rng: np.random.Generator, n: int, letter: str) -> np.ndarray:
    """n distinct hospital numbers 'Z' + centre letter + 7 digits."""
    numbers = rng.choice(10_000_000, size=n, replace=False)
    return np.char.add(f"Z{letter}", np.char.zfill(numbers.astype(str), 7))


def names(rng: np.random.Generator, sex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(surnames, forenames) matching each person's sex, every pair distinct; double-barrelled
    surnames only when the single ones run short (large deliveries)."""
    sex = np.asarray(sex)
    surname = np.empty(len(sex), dtype=object)
    forename = np.empty(len(sex), dtype=object)
    for s, given in FORENAMES.items():  # two sexes: forename lists are disjoint, so pairs stay distinct
        who = np.flatnonzero(sex == s)
        surname[who], forename[who] = _distinct_pairs(rng, len(who), np.array(given))
    return surname, forename


def _distinct_pairs(rng: np.random.Generator, n: int, given: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    families = np.array(SURNAMES)
    n_s, n_f = len(families), len(given)
    n_single = min(n, n_s * n_f // 2)
    picks = rng.choice(n_s * n_f, size=n_single, replace=False)
    surname, forename = families[picks // n_f], given[picks % n_f]
    if n_single < n:
        double = rng.choice(n_s * n_s * n_f, size=n - n_single, replace=False)
        first, rest = double // (n_s * n_f), double % (n_s * n_f)
        second = rest // n_f
        keep = second != first  # no 'Ashdown-Ashdown'; the few such draws take the next name
        second = np.where(keep, second, (second + 1) % n_s)
        barrelled = np.char.add(np.char.add(families[first], "-"), families[second])
        surname = np.concatenate([surname, barrelled])
        forename = np.concatenate([forename, given[rest % n_f]])
    return surname, forename


def uk_postcodes(rng: np.random.Generator, n: int, districts: tuple[str, ...]) -> np.ndarray:
    district = np.array(districts)[rng.integers(0, len(districts), n)]
    sector = rng.integers(1, 10, n).astype(str)
    letters = POSTCODE_UNIT_LETTERS[rng.integers(0, len(POSTCODE_UNIT_LETTERS), (n, 2))]
    return np.char.add(np.char.add(np.char.add(district, " "), sector), np.char.add(letters[:, 0], letters[:, 1]))


def us_zips(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = np.array(ZIP_PREFIXES)[rng.integers(0, len(ZIP_PREFIXES), n)]
    return np.char.add(prefix, np.char.zfill(rng.integers(0, 100, n).astype(str), 2))
