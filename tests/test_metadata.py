"""The metadata reader: every encoding and line ending a copy may have, and records that are not JSON."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from core import config
from core.data.catalog_build import open_catalog
from core.data.ingest.findings import FindingKind
from core.data.ingest.metadata import MetadataDecodeError, RawRecord, decode_metadata, parse_records, record_id
from tests.conftest import make_settings

RECORD = '{\n  "_id" : ObjectId("56fb860e71a0651b0c306f55"),\n  "Title" : "Café $9.99",\n  "imdbID" : "tt0080684"\n}\n'


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (RECORD.encode("utf-8"), "UTF-8"),
        (codecs.BOM_UTF8 + RECORD.encode("utf-8"), "UTF-8 with BOM"),
        (codecs.BOM_UTF16_LE + RECORD.encode("utf-16-le"), "UTF-16 LE with BOM"),
        (codecs.BOM_UTF16_BE + RECORD.encode("utf-16-be"), "UTF-16 BE with BOM"),
        (RECORD.encode("utf-16-le"), "UTF-16-LE without BOM"),
        (RECORD.encode("utf-16-be"), "UTF-16-BE without BOM"),
        (RECORD.encode("cp1252"), "Windows-1252 (guessed)"),
    ],
)
def test_every_encoding_decodes_to_the_same_record(raw: bytes, encoding: str) -> None:
    decoded = decode_metadata(raw)
    assert decoded.encoding == encoding
    [record] = parse_records(decoded.text, "x.txt").records
    assert record.fields["Title"] == "Café $9.99"
    assert record.fields["_id"] == "56fb860e71a0651b0c306f55"  # Mongo's ObjectId(...) unwrapped


@pytest.mark.parametrize(("newline", "name"), [("\r\n", "CRLF"), ("\r", "CR"), ("\n", "LF")])
def test_line_endings_are_reported_and_line_numbers_stay_right(newline: str, name: str) -> None:
    text = (RECORD + RECORD.replace("tt0080684", "tt0080685")).replace("\n", newline)
    decoded = decode_metadata(text.encode("utf-8"))
    assert decoded.line_endings == name
    records = parse_records(decoded.text, "x.txt").records
    assert [r.line for r in records] == [1, 6]


def test_mixed_line_endings_are_named() -> None:
    assert decode_metadata(b"{}\r\n{}\n{}\r").line_endings == "mixed (CRLF, CR, LF)"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"  \n ", "whitespace"),
        (b"\x00\x01\xff\xfe\x00garbage" * 3 + b"\x07" * 50, "NUL bytes"),
        (codecs.BOM_UTF16_LE + b"\x00\xd8", "cannot be decoded"),  # a lone surrogate
        (bytes(range(1, 32)) * 10, "control characters"),
    ],
)
def test_undecodable_files_raise_a_clear_error(raw: bytes, reason: str) -> None:
    with pytest.raises(MetadataDecodeError, match=reason):
        decode_metadata(raw)


def test_a_broken_record_costs_only_itself_and_names_its_line() -> None:
    broken = '{\n  "Title" : "Broken"\n  "imdbID" : "tt0000002"\n}\n'
    text = RECORD + broken + RECORD.replace("tt0080684", "tt0000003")
    parsed = parse_records(text, "1999.txt")
    assert [record_id(r)[0] for r in parsed.records] == ["tt0080684", "tt0000003"]
    [finding] = parsed.findings
    assert finding.kind is FindingKind.UNPARSEABLE_RECORD
    assert (finding.file, finding.line) == ("1999.txt", 6)
    assert "delimiter" in finding.reason


def test_json_lines_trailing_commas_and_arrays_are_accepted() -> None:
    text = '[\n{"imdbID": "tt0000001", "Genre": "Drama",},\n{"imdbID": "tt0000002"}{"imdbID": "tt0000003"}\n]\n'
    parsed = parse_records(text, "x.txt")
    assert [r.fields["imdbID"] for r in parsed.records] == ["tt0000001", "tt0000002", "tt0000003"]
    assert parsed.findings == []


def test_text_that_is_no_record_is_reported() -> None:
    parsed = parse_records('garbage before\n{"imdbID": "tt0000001"}\n{"imdbID": [1, 2]} trailing\n', "x.txt")
    assert len(parsed.records) == 2
    assert [f.line for f in parsed.findings] == [1, 3]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"imdbID": "tt0080684"}, "tt0080684"),
        ({"imdbID": " tt12345678 "}, "tt12345678"),
        ({}, None),
        ({"imdbID": ""}, None),
        ({"imdbID": "../../etc/passwd"}, None),
        ({"imdbID": 80684}, None),
    ],
)
def test_record_ids_must_be_imdb_ids(fields: dict, expected: str | None) -> None:
    imdb_id, reason = record_id(RawRecord(fields, 1))
    assert imdb_id == expected
    assert (reason is None) == (expected is not None)


class ScannedText(str):
    """A text that adds up how many characters `str.count` scans in it."""

    scanned = 0

    def count(self, sub, start=0, end=None):  # type: ignore[override]
        end = len(self) if end is None else end
        ScannedText.scanned += max(0, end - start)
        return super().count(sub, start, end)


def test_reading_a_file_scans_its_text_for_line_numbers_once() -> None:
    """Finding each record's line by counting from the start made a 1.6 MB file take half a minute."""
    records = [RECORD.replace("tt0080684", f"tt{n:07d}") for n in range(2_000)]
    text = ScannedText("".join(records))
    ScannedText.scanned = 0
    parsed = parse_records(text, "x.txt")
    assert [r.line for r in parsed.records[:3]] == [1, 6, 11]
    assert parsed.records[-1].line == 5 * 1_999 + 1
    assert ScannedText.scanned <= 2 * len(text)


def test_a_record_past_the_size_limit_is_a_finding_and_its_neighbours_are_read(monkeypatch) -> None:
    monkeypatch.setattr(config, "MAX_RECORD_CHARS", 10_000)
    huge = '{\n  "imdbID" : "tt0000002",\n  "Plot" : "' + "x" * 20_000 + '"\n}\n'
    parsed = parse_records(RECORD + huge + RECORD.replace("tt0080684", "tt0000003"), "1999.txt")
    assert [record_id(r)[0] for r in parsed.records] == ["tt0080684", "tt0000003"]
    [finding] = parsed.findings
    assert (finding.kind, finding.file, finding.line) == (FindingKind.RECORD_TOO_LARGE, "1999.txt", 6)
    assert "20,0" in finding.reason and "10,000" in finding.reason


def test_a_200_mb_metadata_file_is_a_finding_and_is_not_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "Movie_Poster_Dataset" / "2001").mkdir(parents=True)
    metadata = data / "Movie_Poster_Metadata" / "groundtruth"
    metadata.mkdir(parents=True)
    (metadata / "2001.txt").write_text(RECORD)
    with (metadata / "2002.txt").open("wb") as huge:
        huge.truncate(200 * 1024**2)  # sparse: it takes no disk, but reading it would take 200 MB
    catalog = open_catalog(make_settings(data, tmp_path / "work"))
    assert catalog.summary()["records"] == 1
    [finding] = catalog.findings().query("kind == 'metadata file too large'").itertuples()
    assert finding.file == "Movie_Poster_Metadata/groundtruth/2002.txt"
    assert "209,715,200 bytes" in finding.reason
    files = catalog.metadata_files().set_index("file")
    assert files.loc[finding.file, "error"] == finding.reason
