"""Reading the per-year metadata files: any of their encodings, any line ending, records that are not JSON.

The files are MongoDB shell exports (`"_id" : ObjectId("…")`), some in UTF-8 and most in UTF-16 with a BOM,
with CRLF line endings. A user's copy may also hold UTF-8 with a BOM, UTF-16 big-endian, bare CR endings,
broken records or bytes that are not text at all. Each record is parsed on its own, so one broken record
costs only itself, and every failure becomes a `Finding` that names the file and the line.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from core import config
from core.data.ingest.findings import Finding, FindingKind

IMDB_ID_PATTERN = re.compile(r"tt\d{7,8}")

# Mongo shell wrappers around a single value: ObjectId("…"), NumberLong(12), ISODate("…"), …
_MONGO_WRAPPER = re.compile(
    r"\b(?:ObjectId|NumberLong|NumberInt|NumberDecimal|ISODate|Date)\(\s*"
    r"(\"(?:[^\"\\]|\\.)*\"|-?\d+(?:\.\d+)?)\s*\)"
)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_RECORD_START = re.compile(r"^\{", re.MULTILINE)
# Control characters a text file does not hold: all below a space but tab, line feed, form feed and CR.
_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0e-\x1f]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# How a lone surrogate gets into a record: only a JSON escape can make one (strict decoding refuses them), so
# a block without such an escape is never cleaned field by field (most of a large file's parsing time).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class MetadataDecodeError(ValueError):
    """The bytes of a metadata file cannot be read as text in any encoding the dataset uses."""


@dataclass(frozen=True)
class DecodedText:
    text: str  # with line endings normalised to "\n"
    encoding: str
    line_endings: str


@dataclass(frozen=True)
class RawRecord:
    fields: dict[str, object]
    line: int


@dataclass
class ParsedFile:
    records: list[RawRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _guess_utf16_without_bom(raw: bytes) -> str | None:
    """UTF-16 text of mostly ASCII characters has a NUL in every other byte; that tells its byte order."""
    if len(raw) < 4 or len(raw) % 2:
        return None
    even_nuls = raw[0::2].count(0) / (len(raw) / 2)
    odd_nuls = raw[1::2].count(0) / (len(raw) / 2)
    if even_nuls > 0.3 and odd_nuls < 0.05:
        return "utf-16-be"
    if odd_nuls > 0.3 and even_nuls < 0.05:
        return "utf-16-le"
    return None


def _describe_line_endings(text: str) -> str:
    crlf = text.count("\r\n")
    lone_cr = text.count("\r") - crlf
    lone_lf = text.count("\n") - crlf
    kinds = [name for name, count in (("CRLF", crlf), ("CR", lone_cr), ("LF", lone_lf)) if count]
    if not kinds:
        return "none"
    return kinds[0] if len(kinds) == 1 else "mixed (" + ", ".join(kinds) + ")"


def decode_metadata(raw: bytes) -> DecodedText:
    """Decode a metadata file, trusting a BOM first, then the shape of the bytes, then UTF-8 and cp1252."""
    if not raw.strip():
        raise MetadataDecodeError("the file is empty" if not raw else "the file holds only whitespace")
    candidates: list[tuple[str, str]]  # (codec, name shown to the user)
    if raw.startswith(codecs.BOM_UTF8):
        candidates = [("utf-8-sig", "UTF-8 with BOM")]
    elif raw.startswith(codecs.BOM_UTF16_LE):
        candidates = [("utf-16", "UTF-16 LE with BOM")]
    elif raw.startswith(codecs.BOM_UTF16_BE):
        candidates = [("utf-16", "UTF-16 BE with BOM")]
    elif utf16 := _guess_utf16_without_bom(raw):
        candidates = [(utf16, f"{utf16.upper()} without BOM")]
    elif b"\x00" in raw:
        raise MetadataDecodeError("it holds NUL bytes but is not UTF-16: binary data, not text")
    else:
        candidates = [("utf-8", "UTF-8"), ("cp1252", "Windows-1252 (guessed)")]

    errors = []
    for codec, name in candidates:
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as error:
            errors.append(f"{name}: {error.reason} at byte {error.start}")
            continue
        control = len(_CONTROL_CHARACTER.findall(text))
        if control > max(2, len(text) // 100):
            errors.append(f"{name}: decodes to {control} control characters, so it is not text")
            continue
        line_endings = _describe_line_endings(text)
        normalised = text.replace("\r\n", "\n").replace("\r", "\n")
        return DecodedText(normalised, name, line_endings)
    raise MetadataDecodeError("it cannot be decoded (" + "; ".join(errors) + ")")


def _lenient_json(block: str) -> str:
    """Turn Mongo shell syntax and trailing commas into strict JSON; leave everything else to the parser."""
    return _TRAILING_COMMA.sub(r"\1", _MONGO_WRAPPER.sub(r"\1", block))


def _blocks(text: str) -> Iterator[tuple[int, str]]:
    """Cut the text at every line that starts with "{", so that a broken record cannot swallow the next."""
    begin = 0
    for match in _RECORD_START.finditer(text):
        if match.start() > 0:
            yield begin, text[begin : match.start()]
        begin = match.start()
    yield begin, text[begin:]


class _LineCounter:
    """The line number of each of a rising series of offsets into one text, every newline counted once:
    counting from the start of the text for each record made reading a file quadratic in its size."""

    def __init__(self, text: str, first_line: int = 1) -> None:
        self.text, self.offset, self.line = text, 0, first_line

    def at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _without_lone_surrogates(fields: dict[str, object]) -> dict[str, object]:
    """The record with U+FFFD for each lone UTF-16 surrogate a JSON escape such as "\\ud800" left in a name
    or a text field: no UTF-8 store or page can hold one."""

    def clean(value: object) -> object:
        return _LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value

    return {clean(key): clean(value) for key, value in fields.items()}


def _too_large(file: str, line: int, size: int) -> Finding:
    return Finding(
        FindingKind.RECORD_TOO_LARGE,
        file,
        f"the record is {size:,} characters long, past the {config.MAX_RECORD_CHARS:,} a record may have",
        line=line,
    )


def parse_records(text: str, file: str) -> ParsedFile:
    """Every record of a decoded metadata file, with a finding for each stretch that is not a record.

    Linear in the text's length: line numbers are counted as the reading moves on, never from the start.
    """
    parsed = ParsedFile()
    decoder = json.JSONDecoder()
    lines = _LineCounter(text)
    for offset, block in _blocks(text):
        body = block.strip().strip("[],").strip()
        if not body:
            continue
        lead = len(block) - len(block.lstrip().lstrip("[,").lstrip())
        line = lines.at(offset + lead)
        source = _lenient_json(body)
        escapes = _SURROGATE_ESCAPE.search(source) is not None
        source_lines = _LineCounter(source, line)
        position = 0
        while position < len(source):
            start_line = source_lines.at(position)
            try:
                value, end = decoder.raw_decode(source, position)
            except (ValueError, RecursionError) as error:
                # Besides JSONDecodeError: a number of more digits than int() converts (ValueError), or
                # brackets nested deeper than the parser recurses.
                preview = " ".join(source[position : position + 200].split())[:60]
                if isinstance(error, json.JSONDecodeError):
                    problem = f"{error.msg} at line {line + error.lineno - 1}, column {error.colno}"
                else:
                    problem = str(error).split(";")[0].split(" while ")[0]
                parsed.findings.append(
                    Finding(
                        FindingKind.UNPARSEABLE_RECORD,
                        file,
                        f"not a valid record: {problem}; the record starts with {preview!r}",
                        line=start_line,
                    )
                )
                break
            if end - position > config.MAX_RECORD_CHARS:
                parsed.findings.append(_too_large(file, start_line, end - position))
            elif isinstance(value, dict):
                parsed.records.append(RawRecord(_without_lone_surrogates(value) if escapes else value, start_line))
            else:
                parsed.findings.append(
                    Finding(
                        FindingKind.UNPARSEABLE_RECORD,
                        file,
                        f"a record must be an object, found {json.dumps(value)[:40]}",
                        line=line,
                    )
                )
            # Several records may share a block (JSON Lines, or "}{" on one line); skip separators.
            position = end
            while position < len(source) and source[position] in " \t\n,[]":
                position += 1
    return parsed


def record_id(record: RawRecord) -> tuple[str | None, str | None]:
    """The record's IMDb id, or None with the reason it has no usable one."""
    value = record.fields.get("imdbID")
    if value is None:
        return None, "the record has no imdbID field"
    if not isinstance(value, str) or not value.strip():
        return None, f"its imdbID is empty ({value!r})"
    if not IMDB_ID_PATTERN.fullmatch(value.strip()):
        return None, f"its imdbID {value!r} is not an IMDb id (tt followed by 7 or 8 digits)"
    return value.strip(), None
