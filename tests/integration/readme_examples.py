"""The shell examples of README.md, read from its ```bash blocks, and grouped the way a user runs them.

Nothing here copies a command: a new example in the README is a new example here. Read-only commands
(`journey query`, `models`, `report`, `dashboard`, `customer`) read what a run stored, so each joins
the nearest run above it in the README (`make run` is the `journey run` its Makefile recipe runs);
every other `journey` command gets a fresh directory of its own.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

#: Commands that only read what a run stored.
READ_ONLY = frozenset({"query", "models", "report", "dashboard", "customer"})
#: How the README calls the CLI from a clone (`make run` installs it there) or from an installed package.
JOURNEY = frozenset({".venv/bin/journey", "journey"})
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class Command:
    """One command line of a README example: where it is, its environment assignments, its words."""

    line: int
    text: str
    env: dict[str, str]
    words: list[str]
    background: bool = False

    @property
    def is_journey(self) -> bool:
        return self.words[0] in JOURNEY

    @property
    def args(self) -> list[str]:
        """What follows `journey`."""
        return self.words[1:]

    @property
    def subcommand(self) -> str:
        return self.args[0] if self.args else ""


@dataclass
class Block:
    """A ```bash block: its first line in the README, its `export`s and its commands."""

    line: int
    exports: dict[str, str] = field(default_factory=dict)
    commands: list[Command] = field(default_factory=list)


def bash_blocks(readme: str) -> list[Block]:
    """Every ```bash block of ``readme``: continuation lines joined, comments dropped."""
    blocks = []
    for match in _BLOCK.finditer(readme):
        if match[1] != "bash":
            continue
        first = readme.count("\n", 0, match.start(2)) + 1
        block = Block(first)
        lines = match[2].split("\n")
        index = 0
        while index < len(lines):
            start, text = index, lines[index]
            while text.rstrip().endswith("\\") and index + 1 < len(lines):
                index += 1
                text = text.rstrip()[:-1] + " " + lines[index].strip()
            index += 1
            words = shlex.split(text, comments=True)
            if not words:
                continue
            if words[0] == "export":
                block.exports.update(w.split("=", 1) for w in words[1:])  # type: ignore[misc]
                continue
            env = {}
            while words and _ASSIGNMENT.match(words[0]):
                name, value = words.pop(0).split("=", 1)
                env[name] = value
            background = words[-1] == "&"
            if background:
                words = words[:-1]
            block.commands.append(Command(first + start, shlex.join(shlex.split(text, comments=True)), env, words,
                                          background))
        blocks.append(block)
    return blocks


def make_run_args(makefile: str) -> list[str]:
    """The arguments of `journey` in the Makefile's `run` recipe (what `make run` runs)."""
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M)
    if recipe is None:
        raise ValueError("the Makefile has no run target")
    calls = [shlex.split(line) for line in recipe[1].splitlines()]
    journeys = [words for words in calls if words and words[0].endswith("/journey")]
    if len(journeys) != 1:
        raise ValueError(f"make run should run one `journey` command, not {recipe[1]!r}")
    return journeys[0][1:]


@dataclass
class Scenario:
    """Commands that share one fresh clone directory and data dir, run in this order."""

    commands: list[Command]

    @property
    def name(self) -> str:
        return f"L{self.commands[0].line}: " + " ; ".join(" ".join(c.args) for c in self.commands)


def scenarios(commands: list[Command]) -> list[Scenario]:
    """Group the README's runnable `journey` commands: each read-only one after the run above it."""
    out: list[Scenario] = []
    last_run: Scenario | None = None
    for command in commands:
        if command.subcommand in READ_ONLY:
            if last_run is None:
                raise ValueError(f"README line {command.line}: `{command.text}` reads a run's data, but no run "
                                 "comes before it")
            last_run.commands.append(command)
            continue
        scenario = Scenario([command])
        out.append(scenario)
        if command.subcommand == "run" and "--check" not in command.args:
            last_run = scenario
    return out


def as_make_run(command: Command, makefile: str) -> Command:
    """`make run` as the `journey` command its recipe runs (so the two cannot drift apart)."""
    return Command(command.line, command.text, command.env, ["journey", *make_run_args(makefile)])


def replace_makefile_runs(blocks: list[Block], makefile: str) -> list[Block]:
    """The blocks with every `make run` replaced by its `journey run`."""
    for block in blocks:
        block.commands = [as_make_run(c, makefile) if c.words[:2] == ["make", "run"] and len(c.words) == 2 else c
                          for c in block.commands]
    return blocks
