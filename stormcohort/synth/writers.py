"""Writing the delivery's files byte-for-byte reproducibly.

The workbook is written as SpreadsheetML directly rather than through openpyxl: building
each column's cell XML with vectorised string operations is ~20 times faster at 100,000
patients, and nothing in the file depends on the clock (document times and zip entry times
are the export date). Strings are inline, dates are serial numbers with a dd/mm/yyyy format,
as Excel itself stores a date cell.
"""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from stormcohort.synth.centres import SHF_TITLE, Table
from stormcohort.synth.formats import MONTHS

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
DATE_STYLE = 1  # index into cellXfs below


def write_csv(table: Table, path: Path) -> None:
    text = table.frame.drop(columns="_key").to_csv(index=False, lineterminator=table.newline)
    path.write_bytes(text.encode(table.encoding))  # 'utf-8-sig' writes the byte-order mark


def write_workbook(tables: list[Table], path: Path, export_date: datetime) -> None:
    """One sheet per table, each with the registry's two title lines above its header row."""
    title_date = f"Export date: {export_date.day:02d}-{MONTHS[export_date.month - 1]}-{export_date.year}"
    sheets = [_sheet_xml(t.frame.drop(columns="_key"), [SHF_TITLE, title_date]) for t in tables]
    names = [t.sheet for t in tables]
    stamp = export_date.strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = {
        "[Content_Types].xml": _content_types(len(sheets)),
        "_rels/.rels": _rels([("officeDocument", "xl/workbook.xml"),
                              ("package/2006/relationships/metadata/core-properties", "docProps/core.xml"),
                              ("extended-properties", "docProps/app.xml")]),
        "docProps/app.xml": XML_HEAD + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
                            'extended-properties"><Application>Microsoft Excel</Application></Properties>',
        "docProps/core.xml": XML_HEAD + (
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>SHF registry</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'),
        "xl/workbook.xml": XML_HEAD + f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets>' + "".join(
            f'<sheet name="{escape(n)}" sheetId="{i}" r:id="rId{i}"/>' for i, n in enumerate(names, 1))
        + "</sheets></workbook>",
        "xl/_rels/workbook.xml.rels": _rels([("worksheet", f"worksheets/sheet{i}.xml")
                                             for i in range(1, len(names) + 1)] + [("styles", "styles.xml")]),
        "xl/styles.xml": XML_HEAD + _STYLES,
        **{f"xl/worksheets/sheet{i}.xml": xml for i, xml in enumerate(sheets, 1)},
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            entry = zipfile.ZipInfo(name, date_time=export_date.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, text.encode("utf-8"))


def _column_letters(n: int) -> list[str]:
    letters = []
    for i in range(n):
        name, i = "", i + 1
        while i:
            i, rem = divmod(i - 1, 26)
            name = chr(65 + rem) + name
        letters.append(name)
    return letters


def _cells(values: pd.Series, ref: pd.Series) -> pd.Series:
    """Cell XML for one column: numbers, dates (serial + date style), inline strings; '' if empty."""
    kind = values.map(type)
    out = pd.Series("", index=values.index, dtype=object)
    text = kind.eq(str)
    date = kind.eq(pd.Timestamp)
    number = values.notna() & ~text & ~date
    if text.any():
        escaped = values[text].map(escape)
        out[text] = '<c r="' + ref[text] + '" t="inlineStr"><is><t>' + escaped + "</t></is></c>"
    if date.any():
        serial = ((pd.to_datetime(values[date]) - EXCEL_EPOCH) / pd.Timedelta(days=1)).map("{:.10g}".format)
        out[date] = '<c r="' + ref[date] + f'" s="{DATE_STYLE}"><v>' + serial + "</v></c>"
    if number.any():
        out[number] = '<c r="' + ref[number] + '"><v>' + values[number].map(repr_number) + "</v></c>"
    return out


def repr_number(value) -> str:
    return str(int(value)) if isinstance(value, (int, np.integer)) else repr(float(value))


def _sheet_xml(frame: pd.DataFrame, titles: list[str]) -> str:
    letters = _column_letters(frame.shape[1])
    head = [[t] for t in titles] + [list(frame.columns)]
    rows = pd.concat([pd.DataFrame(head, columns=range(len(head[-1]))).set_axis(frame.columns, axis=1),
                      frame.astype(object)], ignore_index=True)
    rows = rows.where(rows.notna(), None)
    numbers = pd.Series(np.arange(1, len(rows) + 1).astype(str), dtype=object)
    xml = pd.Series("", index=rows.index, dtype=object)
    for letter, column in zip(letters, rows.columns):
        xml = xml + _cells(rows[column].reset_index(drop=True), letter + numbers)
    body = ('<row r="' + numbers + '">' + xml + "</row>").str.cat()
    dimension = f"A1:{letters[-1]}{len(rows)}"
    return XML_HEAD + (f'<worksheet xmlns="{MAIN_NS}"><dimension ref="{dimension}"/>'
                       f'<sheetData>{body}</sheetData></worksheet>')


def _rels(targets: list[tuple[str, str]]) -> str:
    base = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    items = "".join(
        f'<Relationship Id="rId{i}" Type="{_rel_type(kind, base)}" '
        f'Target="{target}"/>' for i, (kind, target) in enumerate(targets, 1))
    return XML_HEAD + f'<Relationships xmlns="{PKG_REL_NS}">{items}</Relationships>'


def _rel_type(kind: str, base: str) -> str:
    return "http://schemas.openxmlformats.org/" + kind if kind.startswith("package/") else base + kind


def _content_types(n_sheets: int) -> str:
    sml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = [("/xl/workbook.xml", f"{sml}.sheet.main+xml"), ("/xl/styles.xml", f"{sml}.styles+xml"),
                 ("/docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"),
                 ("/docProps/app.xml", "application/vnd.openxmlformats-officedocument.extended-properties+xml")]
    overrides += [(f"/xl/worksheets/sheet{i}.xml", f"{sml}.worksheet+xml") for i in range(1, n_sheets + 1)]
    return XML_HEAD + (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides) + "</Types>")


_STYLES = (
    f'<styleSheet xmlns="{MAIN_NS}"><numFmts count="1"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/></numFmts>'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)
