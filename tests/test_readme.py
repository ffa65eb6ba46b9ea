"""README.md matches the code: every command (and the options it names), every setting with its default,
every topic of the registry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main
from pydantic import SecretStr

from schemas.registry import ALL_TOPICS
from streams.cli import app
from streams.settings import Settings
from streams.topics import CHANGELOGS, MODEL_SNAPSHOTS
from tests.conftest import ROOT

README = ROOT / "README.md"


def section(heading: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every body row of the Markdown tables in ``text`` (escaped pipes kept as |)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows.append(cells)
    return rows[1:] if rows else rows  # without the header


def commands() -> dict[str, Any]:
    """Every command of the CLI by its full name (``schemas export`` for a group's command)."""
    root: Any = typer.main.get_command(app)  # typer's own click: groups are recognised by their commands
    out: dict[str, Any] = {}
    for name, command in root.commands.items():
        if hasattr(command, "commands"):
            out.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            out[name] = command
    return out


def test_the_two_commands_come_first() -> None:
    text = README.read_text()
    two = text.index("## Two commands")
    assert two < text.index("## Commands") and "make run" in text[two:two + 400] and "make test" in text[two:two + 400]


def test_every_command_is_listed_with_options_it_really_has() -> None:
    listed: dict[str, str] = {}
    known = commands()
    groups = "|".join(sorted({name.split()[0] for name in known if " " in name}))
    for cells in table_rows(section("Commands")):
        match = re.match(r"`journey ((?:(?:" + groups + r") )?[a-z-]+)", cells[0])
        assert match, cells[0]
        listed[match[1]] = " ".join(cells)
    assert set(listed) == set(known), f"missing: {set(known) - set(listed)}, not commands: {set(listed) - set(known)}"
    for name, row in listed.items():
        options = {opt for param in known[name].params for opt in getattr(param, "opts", [])}
        named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", row))
        assert named <= options, f"journey {name} has no {sorted(named - options)} (it has {sorted(options)})"


def readme_default(value: object) -> str:
    """How the configuration table writes a default."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return str(value)
    return f"`{value}`"


def test_every_setting_is_in_the_configuration_table_with_its_default() -> None:
    rows = {cells[0].strip("`"): cells[1] for cells in table_rows(section("Configuration"))
            if cells[0].startswith("`")}
    fields = Settings.model_fields
    assert set(rows) == set(fields), (f"settings missing from README: {sorted(set(fields) - set(rows))}; "
                                      f"not settings: {sorted(set(rows) - set(fields))}")
    wrong = []
    for name, info in fields.items():
        default = info.default
        if default is None or isinstance(default, SecretStr):
            ok = rows[name].startswith("unset")  # may say what unset means: "unset: chdb://<data_dir>/clickhouse"
        else:
            ok = rows[name] == readme_default(str(default) if isinstance(default, Path) else default)
        if not ok:
            wrong.append(f"{name}: README {rows[name]!r}, Settings {default!r}")
    assert not wrong, "defaults differ:\n" + "\n".join(wrong)


def test_every_topic_is_in_the_topics_table() -> None:
    text = section("Topics and contracts")
    listed = {cells[0].strip("`") for cells in table_rows(text)}
    assert listed == set(ALL_TOPICS), f"missing: {set(ALL_TOPICS) - listed}, unknown: {listed - set(ALL_TOPICS)}"
    for internal in [*CHANGELOGS.values(), MODEL_SNAPSHOTS]:
        assert f"`{internal}`" in text, f"internal topic {internal} is not mentioned"
