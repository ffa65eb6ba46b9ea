"""How ``journey query`` prints a result: a table that fits the terminal, or JSON lines, CSV or TSV.

The table is for reading: numbers rounded (``sinks.report.format_value``), and a result too wide
for the terminal is printed vertically (one ``column: value`` line per cell, like ClickHouse's
``Vertical`` format) instead of cutting every cell to ``tr…``. The machine formats keep full values.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from plumbing.terminal import header, json_line, markup_safe, text_of
from sinks.report import format_value

FORMATS = ("table", "json", "csv", "tsv")
#: Text the tool appends to the user's SQL (sinks.access asks for Parquet): never shown as theirs.
_ADDED_CLAUSE = re.compile(r"\s*FORMAT Parquet\b")
_POSITION = re.compile(r"\(line (\d+), col (\d+)\)")


def table_width(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> int:
    """Columns a rich table of these cells needs without cutting any (borders and padding included)."""
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    return sum(widths) + 3 * len(widths) + 1


def print_result(out: Console, columns: list[str], rows: Sequence[Sequence[Any]], fmt: str = "table",
                 vertical: bool = False) -> None:
    """Print ``rows`` in ``fmt``; a table wider than ``out`` (or ``vertical``) goes one cell per line."""
    if fmt == "json":
        for row in rows:
            out.file.write(json_line(dict(zip(columns, row, strict=True))) + "\n")
        return
    if fmt in ("csv", "tsv"):
        out.file.write(delimited(columns, rows, "," if fmt == "csv" else "\t"))
        return
    # Values from data: bytes decoded (invalid UTF-8 as \\xNN), control characters escaped (plumbing.terminal).
    cells = [["NULL" if v is None else text_of(v if isinstance(v, bytes) else format_value(v)) for v in row]
             for row in rows]
    if vertical or table_width(columns, cells) > out.width:
        name_width = max((len(c) for c in columns), default=0)
        for n, row in enumerate(cells, 1):
            out.print(f"[bold]Row {n}:[/]", soft_wrap=True)
            for column, cell in zip(columns, row, strict=True):
                out.print(f"{markup_safe(column).rjust(name_width)}: {escape(cell)}", soft_wrap=True, highlight=False)
        if not cells:
            out.print(f"no rows ({', '.join(columns)})")
        return
    table = Table(*map(header, columns))
    for column in table.columns:
        column.no_wrap = True
    for row, values in zip(cells, rows, strict=True):
        table.add_row(*(escape(c) for c in row))
        for column, value in zip(table.columns, values, strict=True):
            if isinstance(value, int | float) and not isinstance(value, bool):
                column.justify = "right"
    out.print(table)


def delimited(columns: list[str], rows: Sequence[Sequence[Any]], separator: str) -> str:
    """CSV (``,``, RFC 4180 quoting, empty for NULL) or TSV (``\\t``, ``\\N`` for NULL, as ClickHouse writes it)."""
    buffer = io.StringIO()
    rows = [[bytes(v).decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v for v in row]
            for row in rows]
    if separator == ",":
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        return buffer.getvalue()
    def cell(v: Any) -> str:
        if v is None:
            return "\\N"
        return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    lines = ["\t".join(columns), *("\t".join(cell(v) for v in row) for row in rows)]
    return "\n".join(lines) + "\n"


def explain_error(sql: str, message: str) -> str:
    """ClickHouse's error about ``sql``, with the clause the tool appended taken out, and for a syntax
    error the user's own line quoted with a caret under the position ClickHouse names."""
    message = _ADDED_CLAUSE.sub("", message).strip()
    position = _POSITION.search(message)
    if position is None:
        return message
    line_no, col = int(position.group(1)), int(position.group(2))
    lines = sql.splitlines() or [""]
    if not 1 <= line_no <= len(lines):
        return message
    text = lines[line_no - 1]
    where = f"line {line_no}, column {col} of your query:" if len(lines) > 1 else f"column {col} of your query:"
    # ClickHouse echoes the rest of the query after the position: the quote below replaces it.
    headline = re.sub(r"(\(line \d+, col \d+\)):.*?(\. Expected|\. \(|$)", r"\1\2", message, count=1, flags=re.S)
    headline, expected, rest = headline.partition(". Expected")
    quote = f"  at {where}\n    {text}\n    {' ' * max(col - 1, 0)}^"
    return f"{headline}.\n{quote}" + (f"\nExpected{rest}" if expected else "")
