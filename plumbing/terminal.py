"""Stored text on the terminal: shown as text, never obeyed.

Values from the data (a category id, a chat message, a dead letter's original bytes, an
error that quotes them) reach the command line's output. Two things must not happen:
rich must not read them as markup (``[/oops]`` raised a MarkupError, ``[bold red]`` styled
the output), and the terminal must not receive their control characters (an ANSI CSI
sequence recolours or moves the cursor, an OSC-8 sequence makes a hidden hyperlink).

So every value from data goes through :func:`cell` (a rich ``Text``: never parsed as markup)
or :func:`markup_safe` (for an f-string inside our own markup), and control characters
(C0 except newline and tab, DEL, C1) are shown escaped as ``\\xNN``: the reader sees that they
were there, the terminal gets only printable text. Bytes that are not UTF-8 are shown
escaped the same way (``\\xff``) by :func:`text_of`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from rich.markup import escape
from rich.table import Column
from rich.text import Text

#: C0 controls except tab and newline, DEL, and C1 controls (U+0080-U+009F: 0x9B is a one-byte CSI).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def text_of(value: Any) -> str:
    """``value`` as printable text: bytes decoded (invalid UTF-8 escaped), control characters escaped."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(_escaped, str(value))


def cell(value: Any, null: str = "NULL") -> Text:
    """A table cell or header from data: printable text that rich never reads as markup."""
    return Text(null if value is None else text_of(value))


def header(value: Any) -> Column:
    """A table column whose header comes from data (a query's column name): shown as text."""
    return Column(header=cell(value, null=""))


def markup_safe(value: Any) -> str:
    """``value`` for an f-string inside rich markup: printable, with its brackets escaped."""
    return escape(text_of(value))


def json_line(value: Any) -> str:
    """One JSON line for stdout: bytes as text (invalid UTF-8 escaped), C1 and DEL escaped (orjson escapes C0)."""
    line = orjson.dumps(value, default=_json_default).decode()
    return re.sub("[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", line)


def _json_default(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)
