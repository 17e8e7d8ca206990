"""A user's CSV with a stray quote, binary bytes, a giant header or ids in non-ASCII digits: each is a finding
of the report, at its line, and never a crash that stops the catalog from being built."""

from __future__ import annotations

from pathlib import Path

from core.config import Settings
from core.data.catalog_build import open_catalog
from core.data.ingest.csv_layouts import MANIFEST_COLUMNS
from core.data.ingest.csv_rows import read_csv
from core.data.ingest.findings import FindingKind
from tests.csv_fixture import _jpeg, _movies

HEADER = "id,title,year,genres,poster"


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")


def test_a_stray_quote_costs_its_own_row_named_by_its_line_and_the_rows_around_it_are_kept(tmp_path):
    rows = [f"m{number},Movie {number},2000,Drama,m{number}.jpg" for number in range(1, 21)]
    rows[9] = 'm10,"Movie 10,2000,Drama,m10.jpg'  # line 11: a quote that no later line closes
    path = tmp_path / "posters.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")

    read = read_csv(path, "posters.csv", MANIFEST_COLUMNS)

    [finding] = read.findings
    assert finding.kind is FindingKind.UNPARSEABLE_RECORD
    assert finding.line == 11 and "never closed" in finding.reason
    assert [row.values["id"] for row in read.rows] == [f"m{number}" for number in range(1, 21) if number != 10]


def test_a_quoted_field_over_several_lines_is_still_one_row(tmp_path):
    path = tmp_path / "posters.csv"
    path.write_text(f'{HEADER}\nm1,"Two\nlines, ""quoted""",2000,Drama,m1.jpg\nm2,After,2001,Drama,m2.jpg\n')

    read = read_csv(path, "posters.csv", MANIFEST_COLUMNS)

    assert not read.findings
    assert [(row.line, row.values["title"]) for row in read.rows] == [(2, 'Two\nlines, "quoted"'), (4, "After")]


def test_a_binary_file_or_a_giant_header_field_is_an_unreadable_file_finding_not_a_crash(tmp_path):
    contents = {
        "binary": b"\x00" * 200_000 + b"\n",
        "giant header": f"{HEADER},{'x' * 131_073}\nm1,One,2000,Drama,m1.jpg,x\n".encode(),
    }
    for name, content in contents.items():
        data = tmp_path / name / "data"
        data.mkdir(parents=True)
        (data / "posters.csv").write_bytes(content)

        catalog = open_catalog(_settings(tmp_path / name))

        findings = catalog.findings()
        [unreadable] = findings[findings["kind"] == "unreadable metadata file"].to_dict("records")
        assert unreadable["file"] == "posters.csv", name
        assert ("NUL bytes" if name == "binary" else "field larger than field limit") in unreadable["reason"]
        assert catalog.summary()["unique_movies"] == 0


def test_moviegenre_ids_are_ascii_digits_only_and_never_take_a_real_rows_place(tmp_path):
    data = tmp_path / "data"
    (data / "posters").mkdir(parents=True)
    [movie] = _movies(1, seed=1)
    (data / "posters" / "123.jpg").write_bytes(_jpeg(movie, 1))
    (data / "posters" / "²³.jpg").write_bytes(_jpeg(movie, 2))
    (data / "MovieGenre.csv").write_text(
        "imdbId,Title,Genre\n"
        "١٢٣,Arabic-Indic digits (1999),Drama\n"  # line 2: int() reads it as 123
        "²,A superscript (1999),Drama\n"  # line 3: isdigit() takes it, int() refuses it
        "123,The real one (1999),Comedy\n",  # line 4
        encoding="utf-8",
    )

    catalog = open_catalog(_settings(tmp_path))

    assert catalog.movie("tt0000123")["title"] == "The real one"
    findings = catalog.findings()
    without_id = findings[findings["kind"] == "record without id"]
    assert sorted(int(line) for line in without_id["line"]) == [2, 3]
    assert "posters/²³.jpg" in set(findings[findings["kind"] == "poster without record"]["file"])
    assert catalog.summary()["duplicate_records"] == 0
