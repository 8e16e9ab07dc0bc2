"""The identifier scan catches every written form of an identifier, and names no identifier."""

import pandas as pd

from stormcohort.privacy import identifier_set, scan

IDENTIFIERS = identifier_set({"485 777 3456", "Featherstonehaugh", "1985-03-02", "SW1A 1AA", "LDN0012345", "Al"})


def test_catches_each_form(tmp_path):
    forms = ["4857773456", "485 777 3456", "FEATHERSTONEHAUGH", "02/03/1985", "1985-03-02", "sw1a1aa", "LDN0012345"]
    for i, text in enumerate(forms):
        (tmp_path / f"f{i}.csv").write_text(f"a,b\n1,x {text} y\n")
    findings = scan(sorted(tmp_path.glob("*.csv")), IDENTIFIERS)
    assert len(findings) == len(forms)
    assert all(f.endswith("row 2, column b") for f in findings)
    assert not any("485" in f or "Feather" in f for f in findings)


def test_clean_files_and_short_strings_pass(tmp_path):
    (tmp_path / "ok.csv").write_text("patient_key,age\nP0123456789ab,48\nAl,1985\n")
    assert scan([tmp_path / "ok.csv"], IDENTIFIERS) == []


def test_text_files_line_by_line_without_embedded_images(tmp_path):
    page = tmp_path / "report.html"
    page.write_text('<p>ok</p>\n<img src="data:image/png;base64,AAAA+LDN0012345/BBBB">\n<p>Featherstonehaugh</p>\n')
    assert scan([page], IDENTIFIERS) == [f"{page}: line 3"]


def test_identifier_in_a_csv_header_is_found(tmp_path):
    (tmp_path / "h.csv").write_text("a,LDN0012345\n1,2\n")
    assert scan([tmp_path / "h.csv"], IDENTIFIERS) == [f"{tmp_path / 'h.csv'}: row 1, column LDN0012345"]


def test_parquet_values_are_scanned(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"k": ["a", "b"], "dob": pd.to_datetime(["1990-01-01", "1985-03-02"])}).to_parquet(path)
    assert len(scan([path], IDENTIFIERS)) == 1


def test_parquet_columns_are_scanned_by_type(tmp_path):
    # an NHS number stored as a number is found, in an int or a float column, at its row; the
    # digits of a fraction, infinities and booleans are not identifiers
    path = tmp_path / "typed.parquet"
    pd.DataFrame({"nhs_int": [1, 4857773456, 2], "nhs_float": [4857773456.0, 0.5, float("nan")],
                  "value": [0.4857773456, float("inf"), -1e300], "flag": [True, False, True],
                  "text": ["x", "y", "LDN0012345"]}).to_parquet(path)
    assert scan([path], IDENTIFIERS) == [f"{path}: row 3, column nhs_int", f"{path}: row 2, column nhs_float",
                                         f"{path}: row 4, column text"]


def test_short_bare_numbers_are_not_searched():
    # A 5-digit ZIP cannot be told from a lab value; a ZIP+4 or a 7-digit MRN can.
    assert identifier_set({"35109", "35109-1234", "1234567"}) == {"351091234", "1234567"}


def test_numbers_are_not_joined_into_dates():
    # Coordinates or table cells such as "06 03 1985" spaced apart are not a date of birth;
    # written date and NHS forms are.
    svg_like = "M 06 03 L 1985 20"
    ids = identifier_set({"1985-03-06", "485 777 3456"})
    assert scan_text(svg_like, ids) == set()
    assert scan_text("born 06/03/1985", ids) and scan_text("nhs 485-777-3456", ids)


def scan_text(text, ids):
    from stormcohort.privacy import _grams
    return _grams(text) & ids


def test_date_shaped_non_dates_do_not_break_the_scan():
    assert identifier_set({"9999-99-99"}) == {"99999999"}
