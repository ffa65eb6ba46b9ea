"""Stored text for the terminal: never markup, never a control sequence, bytes that are not UTF-8 escaped."""

from __future__ import annotations

import io

import orjson
from rich.console import Console
from rich.table import Table

from plumbing.terminal import cell, header, json_line, markup_safe, text_of


def rendered(*renderables: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, force_terminal=False, color_system=None).print(*renderables)
    return out.getvalue()


def test_control_characters_are_shown_escaped_and_newline_and_tab_kept() -> None:
    assert text_of("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert text_of("\x1b]8;;http://x/\x1b\\link") == "\\x1b]8;;http://x/\\x1b\\link"
    assert text_of("a\x9bb\x7fc\x00d\re") == "a\\x9bb\\x7fc\\x00d\\x0de"
    assert text_of("line\n\ttab") == "line\n\ttab"
    assert text_of(b"\xff\xfeA") == "\\xff\\xfeA"


def test_markup_in_values_is_printed_as_written() -> None:
    table = Table(header("[/oops]"))
    table.add_row(cell("[bold red]x"))
    table.add_row(cell(None))
    out = rendered(table, f"[bold]customer {markup_safe('[/oops]')}[/]")
    assert "[/oops]" in out and "[bold red]x" in out and "NULL" in out and "customer [/oops]" in out


def test_json_lines_escape_c1_and_keep_the_values() -> None:
    value = {"a": "\x1b[31m\x9b", "b": b"\xff", "c": 1}
    line = json_line(value)
    assert "\x1b" not in line and "\x9b" not in line
    assert orjson.loads(line) == {"a": "\x1b[31m\x9b", "b": "\\xff", "c": 1}
