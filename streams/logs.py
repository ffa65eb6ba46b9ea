"""Worker logging: text lines or one JSON object per line, with every configured secret masked.

Secrets are ``SecretStr`` in the settings and so never appear in their ``repr``; this is the
second guard: a log record whose text contains a configured password (a library echoing its
configuration, an error quoting a DSN) is written with ``***`` in its place.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from streams.settings import Settings

#: Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, pid, extras, exception."""

    def __init__(self, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.static = static or {}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            **self.static,
        }
        for name, value in vars(record).items():
            if name not in _STANDARD:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class RedactSecrets(logging.Filter):
    """Replaces each of ``secrets`` in a record's message (and exception text) with ``***``."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            cleaned = self._clean(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info:
                record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold, including a password written inside the ClickHouse DSN."""
    from urllib.parse import urlsplit

    values = [s.get_secret_value() for s in (settings.kafka_sasl_password, settings.kafka_ssl_key_password,
                                             settings.clickhouse_password) if s is not None]
    if settings.clickhouse_dsn:
        password = urlsplit(settings.clickhouse_dsn).password
        if password:
            values.append(password)
    return values


def configure(settings: Settings, role: str, stream: IO[str] | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr) at the configured level and format; returns the handler installed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter({"role": role}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactSecrets(secrets_of(settings)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return handler


def log_settings(settings: Settings, role: str) -> None:
    """One line with the effective settings (secrets masked), so an operator sees what a worker runs with."""
    logging.getLogger(f"journey.{role}").info("starting %s (pid %d) with settings %s", role, os.getpid(),
                                              orjson.dumps(settings.describe(), default=str).decode())
