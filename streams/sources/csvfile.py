"""Reading a shop's CSV export as it is written: encoding, BOM, delimiter, quoted line breaks, line numbers.

- Encoding: ``encoding`` when given (``utf-8`` also drops a UTF-8 BOM); otherwise a UTF-16 or
  UTF-32 BOM names it, and the rest is UTF-8 (with or without its BOM). A byte the encoding
  cannot read stops with the line and ``--encoding`` (e.g. ``latin-1``) named.
- Delimiter: ``delimiter`` when given, otherwise sniffed from the first rows: of ``, ; TAB |``
  the one that splits the header into the most columns and the rows into as many.
- Each row comes with its raw text (several lines when a quoted field holds a line break, for
  the event id) and the number of its first line. A row with fewer or more fields than the
  header comes as a :class:`BadRow` (a dead letter, never a row with missing values).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Delimiters the sniffer chooses from.
DELIMITERS = (",", ";", "\t", "|")
#: Characters read to sniff the delimiter.
SNIFF_CHARS = 64 * 1024
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be read as the header's columns: why, for its dead letter."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One row: its raw text, the number of its first line, and its cells by column (or why it is bad)."""

    content: bytes
    line: int
    cells: dict[str, str] | BadRow


def encoding_of(path: Path, encoding: str | None) -> str:
    """The codec to read ``path`` with (see the module docstring); LookupError's message names a bad one."""
    if encoding is not None:
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252, utf-16)") from None
        return "utf-8-sig" if name == "utf-8" else name
    with path.open("rb") as handle:
        start = handle.read(4)
    return next((name for bom, name in _BOMS if start.startswith(bom)), "utf-8-sig")


def sniff_delimiter(sample: str) -> str:
    """The delimiter of ``sample`` (the file's first characters): see the module docstring. ``,`` when unsure."""
    lines = sample.splitlines()[:50]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of the sample may be cut short
    best, best_columns = ",", 1
    for delimiter in DELIMITERS:
        rows = [r for r in csv.reader(lines, delimiter=delimiter) if r]
        if not rows:
            continue
        columns = len(rows[0])
        agreeing = sum(len(r) == columns for r in rows)
        if columns > best_columns and agreeing * 2 > len(rows):
            best, best_columns = delimiter, columns
    return best


class _LineTap:
    """Hands a file's lines to ``csv.reader`` and keeps those it took, so each row's raw text and line are known."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.taken: list[str] = []
        self.lines_read = 0

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.taken.append(line)
        self.lines_read += 1
        return line

    def row_text(self) -> bytes:
        """The raw text of the row just read (several lines when a quoted field spans lines)."""
        text = "".join(self.taken).rstrip("\r\n")
        self.taken.clear()
        return text.encode()


def csv_rows(path: Path, columns: set[str], delimiter: str | None = None,
             encoding: str | None = None) -> Iterator[CsvRow]:
    """Every row of ``path`` after its header (blank lines skipped); ValueError when a mapped column is missing."""
    codec = encoding_of(path, encoding)
    try:
        with path.open(newline="", encoding=codec) as handle:
            if delimiter is None:
                delimiter = sniff_delimiter(handle.read(SNIFF_CHARS))
                handle.seek(0)
            yield from _rows(path, handle, columns, delimiter)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not {codec.removesuffix('-sig')} text (byte {exc.object[exc.start]:#04x} cannot be "
                         "read); pass --encoding with the file's encoding (e.g. --encoding latin-1)") from None


def _rows(path: Path, handle: io.TextIOBase, columns: set[str], delimiter: str) -> Iterator[CsvRow]:
    tap = _LineTap(iter(handle))
    reader = csv.reader(tap, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path}: empty file (a CSV replay needs a header row)")
    header = [name.strip() for name in header]
    missing = sorted(columns - set(header))
    if missing:
        hint = ""
        if len(header) == 1:
            hint = (f"; the header was read as one column split by {delimiter!r}: pass --delimiter with the file's "
                    "delimiter (e.g. --delimiter ';')")
        raise ValueError(f"{path}: no column {missing[0]!r} in the header; columns are: {', '.join(header)}{hint}")
    tap.row_text()
    for row in reader:
        line = tap.lines_read - len(tap.taken) + 1
        content = tap.row_text()
        if not row:
            continue  # csv gives [] for a blank line: not a row
        if len(row) != len(header):
            more_or_fewer = "more" if len(row) > len(header) else "fewer"
            yield CsvRow(content, line, BadRow("wrong_field_count", (
                f"{path.name} line {line}: {len(row)} fields, {more_or_fewer} than the header's {len(header)}")))
            continue
        yield CsvRow(content, line, dict(zip(header, row, strict=True)))
