"""The TOML loader of every processor's parameters: typed defaults, overridden by a file.

A config is a frozen dataclass with one dataclass field per TOML section. A file naming an
unknown section or parameter, or giving a value of the wrong type (or a negative count or
duration), is refused with a :class:`ConfigError` that names the section and the key, so a typo
cannot silently keep a default. The trigger rules, scoring, messages and segments files all load
through here.
"""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A parameters file that cannot be used; the message names the file, or the section and the key."""


def _typed(section: str, key: str, value: Any, default: Any) -> Any:
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is tuple and isinstance(value, list):
        value = tuple(value)
    if type(value) is not expected:
        raise ConfigError(f"[{section}] {key}: expected {expected.__name__}, got {type(value).__name__}")
    if expected is int and value < 0:  # counts and durations; thresholds are floats and may be negative
        raise ConfigError(f"[{section}] {key}: must not be negative")
    return value


def merged(current: Any, body: Any, section: str) -> Any:
    """Dataclass ``current`` with the keys of TOML table ``body`` replaced (known keys, same types only)."""
    if not isinstance(body, dict):
        raise ConfigError(f"[{section}] must be a table")
    known = {f.name for f in dataclasses.fields(current)}
    changes = {}
    for key, value in body.items():
        if key not in known:
            raise ConfigError(f"[{section}] unknown parameter {key!r} (known: {', '.join(sorted(known))})")
        changes[key] = _typed(section, key, value, getattr(current, key))
    return dataclasses.replace(current, **changes)


def sections_from_dict(defaults: Any, data: dict[str, Any]) -> Any:
    """Config dataclass ``defaults`` (one dataclass field per TOML section) with the file's sections merged."""
    names = {f.name for f in dataclasses.fields(defaults)}
    sections = {}
    for name, body in data.items():
        if name not in names:
            raise ConfigError(f"unknown section [{name}] (known: {', '.join(sorted(names))})")
        sections[name] = merged(getattr(defaults, name), body, name)
    return dataclasses.replace(defaults, **sections)


def read_toml(path: Path | None, package: str, default_name: str) -> dict[str, Any]:
    """The parsed TOML of ``path``, or of the file shipped in ``package``."""
    text = path.read_text() if path else resources.files(package).joinpath(default_name).read_text()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path or default_name}: {exc}") from exc
