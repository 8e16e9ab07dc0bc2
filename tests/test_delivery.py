"""The delivery: its shape, and the content fingerprint that decides reruns."""

import os

import pytest

from stormcohort.delivery import content_sha256, read_delivery
from stormcohort.errors import ExtractError


def test_content_fingerprint_ignores_mtime_and_sees_content(tmp_path):
    f = tmp_path / "LDN" / "labs.csv"
    f.parent.mkdir()
    f.write_text("a,b\n1,2\n")
    before = content_sha256([f], tmp_path)
    os.utime(f, (1, 1))
    assert content_sha256([f], tmp_path) == before
    f.write_text("a,b\n1,3\n")
    assert content_sha256([f], tmp_path) != before


def test_missing_centre_folder_names_it(tmp_path):
    (tmp_path / "delivery.yaml").write_text("extract_date: 2020-06-30\nsynthetic: true\n")
    with pytest.raises(ExtractError, match="LDN"):
        read_delivery(tmp_path, ["LDN"])


def test_extract_date_must_be_a_date(tmp_path):
    (tmp_path / "delivery.yaml").write_text("extract_date: soon\nsynthetic: true\n")
    with pytest.raises(ExtractError, match="extract_date"):
        read_delivery(tmp_path, ["LDN"])
