"""The rows of a CSV file by header name, read so that no one bad line costs the others.

Each physical line is decoded on its own, as UTF-8 or else as Windows-1252 (a `row not UTF-8` finding),
because the real `MovieGenre.csv` mixes both; a line neither can read makes its row an unparseable record.
Apart from the layouts (`core.data.ingest.csv_layouts`), which say what a row means, because this part
only knows CSV text: records spanning lines, a header, rows of the wrong width.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.data.ingest.findings import Finding, FindingKind
from core.data.ingest.layout import DataNotFoundError

# A NUL among the first bytes marks a binary file, as git and grep decide it.
_BINARY_SNIFF_BYTES = 8000


class CsvLayoutError(DataNotFoundError):
    """The CSV cannot be read as its layout at all (no header, a required column missing); says which."""


@dataclass(frozen=True)
class CsvRow:
    line: int  # 1-based line of the file where the row starts
    values: dict[str, str]


@dataclass(frozen=True)
class CsvRead:
    """A CSV file's rows by header name, and what stood in the way of reading the others."""

    rows: list[CsvRow]
    findings: list[Finding]
    encoding: str
    line_endings: str
    error: str | None = None  # why no row at all could be read, when none could


def _decode_line(raw: bytes) -> tuple[str | None, bool]:
    """(text, was_cp1252); text None when neither UTF-8 nor Windows-1252 can read the bytes."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), True
    except UnicodeDecodeError:
        return None, False


def _records(raw: bytes, relative: str, findings: list[Finding]) -> Iterator[tuple[int, str]]:
    """(first line, text) of each record, a record spanning lines while a quoted field is open.

    A line with an odd number of quotes opens a field that the next such line closes, so the lines' counts,
    taken once, say where each record ends: re-counting the open record at each line made one stray quote
    cost time quadratic in the lines after it. A quote opened on the last line with an odd count can never
    close; that line alone is skipped, and the lines after it are read as rows of their own.
    """
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    # A quote is the byte 0x22 in UTF-8 and in Windows-1252 alike, so the bytes can be counted before decoding.
    odd = [line.count(b'"') % 2 == 1 for line in lines]
    last_odd = max((index for index, is_odd in enumerate(odd) if is_odd), default=-1)
    pending: list[str] = []
    start = 0
    for index, line in enumerate(lines):
        number = index + 1
        text, fallback = _decode_line(line)
        if text is None:
            findings.append(
                Finding(
                    FindingKind.UNPARSEABLE_RECORD,
                    relative,
                    "the line is neither UTF-8 nor Windows-1252 text; the row is skipped",
                    line=start or number,
                )
            )
            pending, start = [], 0
            continue
        if fallback:
            findings.append(Finding(FindingKind.ROW_NOT_UTF8, relative, "not UTF-8; read as Windows-1252", line=number))
        if not pending and index == last_odd:
            reason = "a quoted field opened on this line is never closed; the row is skipped"
            findings.append(Finding(FindingKind.UNPARSEABLE_RECORD, relative, reason, line=number))
            continue
        if not pending:
            start = number
        pending.append(text.rstrip("\r"))
        # An open record began on an odd line and ends on the next odd one; an even line alone is a record.
        if (len(pending) == 1 and not odd[index]) or (len(pending) > 1 and odd[index]):
            yield start, "\n".join(pending)
            pending, start = [], 0


def _shortened(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _unreadable(relative: str, why: str, line_endings: str, findings: list[Finding] | None = None) -> CsvRead:
    """A file none of whose rows can be read, as the year folders' unreadable metadata file: a finding, no rows."""
    finding = Finding(FindingKind.UNREADABLE_METADATA_FILE, relative, f"unreadable: {why}; none of its rows is read")
    return CsvRead([], [*(findings or []), finding], "unknown", line_endings, why)


def read_csv(path: Path, relative: str, required: tuple[str, ...]) -> CsvRead:
    """Rows of a comma-separated file with a header, by column name; bad rows become findings."""
    raw = path.read_bytes()
    encoding = "UTF-8"
    if raw.startswith(b"\xef\xbb\xbf"):
        raw, encoding = raw[3:], "UTF-8 with BOM"
    line_endings = "CRLF" if b"\r\n" in raw else "LF"
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
        # No CSV text holds a NUL; a binary file (or UTF-16 text) would only yield garbage rows.
        return _unreadable(relative, "it holds NUL bytes: binary data or UTF-16, not UTF-8 CSV text", line_endings)
    findings: list[Finding] = []
    records = _records(raw, relative, findings)
    header: list[str] | None = None
    for line, text in records:
        if text.strip():
            try:
                header = [name.strip() for name in next(csv.reader([text]))]
            except csv.Error as error:
                return _unreadable(relative, f"its header (line {line}) is not CSV: {error}", line_endings, findings)
            break
    if header is None:
        raise CsvLayoutError(f"{relative} is empty: it needs a header row with {', '.join(required)}")
    missing = [name for name in required if name not in header]
    if missing:
        raise CsvLayoutError(
            f"{relative} has no column {', '.join(repr(name) for name in missing)} "
            f"(its header: {_shortened(', '.join(header)) or 'nothing'}); expected {', '.join(required)}"
        )
    rows = []
    for line, text in records:
        if not text.strip():
            continue
        try:
            values = next(csv.reader(text.splitlines(keepends=True)))
        except csv.Error as error:
            findings.append(Finding(FindingKind.UNPARSEABLE_RECORD, relative, f"not CSV: {error}", line=line))
            continue
        if len(values) != len(header):
            reason = f"{len(values)} fields where the header has {len(header)}; the row is skipped"
            findings.append(Finding(FindingKind.UNPARSEABLE_RECORD, relative, reason, line=line))
            continue
        rows.append(CsvRow(line, dict(zip(header, values, strict=True))))
    if any(f.kind is FindingKind.ROW_NOT_UTF8 for f in findings):
        encoding += ", some rows Windows-1252"
    return CsvRead(rows, findings, encoding, line_endings)
