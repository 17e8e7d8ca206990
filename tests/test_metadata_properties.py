"""The metadata reader on anything a copy of the dataset may hold: random bytes, and valid files with bits
flipped, cut short, with bytes inserted or deleted, or switched to another encoding half-way. Decoding may
refuse a file (MetadataDecodeError) but nothing else may escape, and a whole ingest of a dataset whose
metadata files are such bytes completes and accounts for every file."""

from __future__ import annotations

import codecs
import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Settings
from core.data.catalog_build import open_catalog
from core.data.ingest.findings import FindingKind
from core.data.ingest.metadata import MetadataDecodeError, decode_metadata, parse_records, record_id
from tests.conftest import FixtureData
from tests.raw_fixture import _movies, _record_text

BOUNDED = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MOVIES = _movies()

# How a copy may be encoded; the names are Python codecs, with "-bom" adding the byte-order mark.
ENCODINGS = ["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "utf-16-le", "utf-16-be", "cp1252", "shift_jis"]
# Bytes that mean something to the reader: record starts and ends, BOMs, NULs, Mongo wrappers, a lone
# surrogate escape, nesting deeper than the parser recurses, a number longer than int() converts.
TOKENS = [
    b"{",
    b"}",
    b'"',
    b",",
    b":",
    b"\n{",
    b"\r",
    b"\x00",
    b"\xff\xfe",
    b"\xfe\xff",
    b"\xef\xbb\xbf",
    b'ObjectId("',
    b"NumberLong(",
    b'"\\ud800"',
    b"NaN",
    b"-Infinity",
    b"[" * 3000,
    b"9" * 5000,
    b'"imdbVotes" : "99999999999999999999",\n',
    b'"imdbID" : "tt0100001",\n',
]


def encode(text: str, encoding: str) -> bytes:
    bom = {"utf-8-bom": codecs.BOM_UTF8, "utf-16-le-bom": codecs.BOM_UTF16_LE, "utf-16-be-bom": codecs.BOM_UTF16_BE}
    codec = encoding.removesuffix("-bom")
    return bom.get(encoding, b"") + text.encode(codec, errors="replace")


# JSON values that have broken readers: more digits than int() converts, nesting deeper than the parser
# recurses, a lone surrogate escape, figures beyond a float or SQLite's 64-bit integers, not-a-number.
HOSTILE_JSON_VALUES = [
    "9" * 5000,
    "[" * 3000 + "]" * 3000,
    '"\\ud800 lone"',
    '"\\udfff"',
    '"99999999999999999999"',
    '"9' + "9" * 400 + ' min"',
    "1e400",
    "-1e400",
    "NaN",
    "null",
    "[]",
    '{"a": 1}',
    '""',
]
_FIELD = re.compile(r'^(\s*"[^"]+" : ).*?(,?)$', re.MULTILINE)


@st.composite
def valid_files(draw: st.DrawFn) -> bytes:
    """A metadata file as the authors' export looks: some fixture records, one encoding, one line ending,
    and maybe a few fields given hostile values."""
    movies = draw(st.lists(st.sampled_from(MOVIES), min_size=1, max_size=6))
    text = "".join(_record_text(movie, number) for number, movie in enumerate(movies))
    fields = list(_FIELD.finditer(text))
    for match in sorted(draw(st.lists(st.sampled_from(fields), max_size=3, unique_by=id)), key=lambda m: -m.start()):
        value = draw(st.sampled_from(HOSTILE_JSON_VALUES))
        text = text[: match.start()] + match.group(1) + value + match.group(2) + text[match.end() :]
    text = text.replace("\n", draw(st.sampled_from(["\n", "\r\n", "\r"])))
    return encode(text, draw(st.sampled_from(ENCODINGS)))


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    """A valid file after a few mutations: bit flips, truncation, insertions, deletions, encoding switches."""
    data = bytearray(draw(valid_files()))
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "switch"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=40)))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:  # from `at` on, the same text in another encoding: a file pasted together from two copies
            rest = bytes(data[at:]).decode("utf-8", errors="replace")
            data[at:] = encode(rest, draw(st.sampled_from(ENCODINGS)))
    return bytes(data)


@st.composite
def generated_records(draw: st.DrawFn) -> bytes:
    """Records with the dataset's field names and any values: text, huge and odd numbers, lists, nulls."""
    values = st.one_of(
        st.text(max_size=30),
        st.sampled_from(["N/A", "Drama, Comedy", "movie", "series"]),
        st.sampled_from(["a\ud800b", "\udfff", "\ud83d\ude00"]),  # lone and paired surrogates
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.none(),
        st.lists(st.text(max_size=5), max_size=3),
    )
    figures = st.one_of(  # what IMDb writes as numbers, and numbers no IMDb figure can be
        st.sampled_from(["99999999999999999999", "9" * 400 + " min", "1e400", "1,234", "7.5", "-0", "N/A"]),
        st.from_regex(r"-?[0-9,]{1,25}(\.[0-9]{1,5})?( min)?", fullmatch=True),
        values,
    )
    fields = {"Title": values, "Genre": values, "Type": values}
    fields |= dict.fromkeys(["imdbRating", "imdbVotes", "Runtime", "Metascore", "Year"], figures)
    ids = st.one_of(st.from_regex(r"tt[0-9]{7,8}", fullmatch=True), values)
    records = draw(st.lists(st.fixed_dictionaries({"imdbID": ids}, optional=fields), min_size=1, max_size=5))
    ascii_only = draw(st.booleans())
    text = "".join(json.dumps(record, indent=2, ensure_ascii=ascii_only) + "\n" for record in records)
    return encode(text, draw(st.sampled_from(ENCODINGS)))


any_metadata_file = st.one_of(st.binary(max_size=2000), valid_files(), mutated_files(), generated_records())


def read_metadata(raw: bytes) -> None:
    """Decode, parse and identify as ingest does; only MetadataDecodeError may come out."""
    try:
        decoded = decode_metadata(raw)
    except MetadataDecodeError as error:
        assert str(error)
        return
    lines = decoded.text.count("\n") + 1
    parsed = parse_records(decoded.text, "2001.txt")
    for record in parsed.records:
        assert 1 <= record.line <= lines
        imdb_id, problem = record_id(record)
        assert (imdb_id is None) != (problem is None)
        for key, value in record.fields.items():  # everything kept can be stored as UTF-8 text
            str(key).encode("utf-8")
            if isinstance(value, str):
                value.encode("utf-8")
    for finding in parsed.findings:
        assert finding.file == "2001.txt" and finding.line is not None and 1 <= finding.line <= lines
        assert finding.kind is FindingKind.UNPARSEABLE_RECORD and finding.reason


@BOUNDED
@given(raw=st.binary(max_size=4000))
def test_random_bytes_are_read_or_refused_with_a_decode_error(raw: bytes) -> None:
    read_metadata(raw)


@BOUNDED
@given(raw=mutated_files())
def test_mutated_metadata_files_are_read_or_refused_with_a_decode_error(raw: bytes) -> None:
    read_metadata(raw)


@BOUNDED
@given(raw=generated_records())
def test_records_with_any_values_are_read(raw: bytes) -> None:
    read_metadata(raw)


def test_the_mutations_reach_the_faults_they_are_meant_for() -> None:
    """The strategies above are not vacuous: these files hit each fault the reader must survive."""
    for raw, expected in [
        (b'{"imdbID": "tt0100001", "Votes": ' + b"9" * 5000 + b"}", "Exceeds the limit"),
        (b'{"imdbID": "tt0100001", "Genres": ' + b"[" * 3000 + b"]" * 3000 + b"}", "recursion"),
    ]:
        [finding] = parse_records(decode_metadata(raw).text, "x.txt").findings
        assert expected in finding.reason
    [record] = parse_records('{"imdbID": "tt0100001", "Title": "a\\ud800b"}', "x.txt").records
    assert record.fields["Title"] == "a\ufffdb"


# --- a whole ingest ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset_copy(fixture_data: FixtureData, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the generated dataset whose metadata files each example replaces."""
    work = tmp_path_factory.mktemp("metadata-properties")
    shutil.copytree(fixture_data.settings.data_dir, work / "movie-posters")
    return Settings(work / "movie-posters", work / "cache", work / "runs")


METADATA_NAMES = ["2001.txt", "2002.txt", "2003.txt", "2004.txt", "2010.txt", "notes.txt"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.dictionaries(st.sampled_from(METADATA_NAMES), any_metadata_file, min_size=1, max_size=4))
def test_an_ingest_of_any_metadata_completes_and_accounts_for_every_file(
    dataset_copy: Settings, files: dict[str, bytes]
) -> None:
    metadata_dir = dataset_copy.data_dir / "Movie_Poster_Metadata" / "groundtruth"
    shutil.rmtree(metadata_dir)
    metadata_dir.mkdir()
    for name, raw in files.items():
        (metadata_dir / name).write_bytes(raw)

    catalog = open_catalog(dataset_copy, rebuild=True)  # ingest, then every value stored in SQLite
    summary = catalog.summary()
    rows = catalog.metadata_files().set_index("file")
    folder = "Movie_Poster_Metadata/groundtruth"
    assert sorted(rows.index) == sorted(f"{folder}/{name}" for name in files)
    findings = catalog.findings()
    unreadable = set(findings.loc[findings["kind"] == str(FindingKind.UNREADABLE_METADATA_FILE), "file"])
    for file, row in rows.iterrows():
        error = row["error"] if isinstance(row["error"], str) else None
        assert row["size"] == len(files[Path(file).name])
        assert (file in unreadable) == bool(error), file
        assert error is None or row["records"] == 0
    assert int(rows["records"].sum()) == summary["records"] == summary["unique_movies"] + summary["duplicate_records"]
    posters = len(list((dataset_copy.data_dir / "Movie_Poster_Dataset").rglob("*.jpg")))
    assert summary["posters"] == posters == summary["posters_with_record"] + summary["posters_without_record"]
    # Every finding about a record names an existing metadata file and a line in it.
    for row in findings[findings["file"].str.startswith(folder)].itertuples():
        assert row.file in rows.index
        if row.kind != str(FindingKind.UNREADABLE_METADATA_FILE):
            assert row.line >= 1
