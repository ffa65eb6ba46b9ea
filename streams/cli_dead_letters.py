"""``journey dead-letters``: the dead-letter commands (a sub-app of streams/cli.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from streams.settings import SettingsFileMissing, load_settings

app = typer.Typer(no_args_is_help=True, help="Dead letters: redrive them once their cause is fixed.")
console = Console()


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("redrive")
def redrive(reason: Annotated[str | None, typer.Option("--reason", help="Only letters with this reason, e.g. "
                                                       "delivery_failed or future_timestamp.")] = None,
            since: Annotated[str | None, typer.Option("--since", help="Only letters received at or after this "
                                                      "ISO 8601 time (UTC when no offset is given).")] = None) -> None:
    """Put dead letters back on their topic (messages are sent once: the ledger); redriving twice sends nothing."""
    from streams.redrive import redrive as run_redrive

    moment = _since(since)
    try:
        settings = load_settings()
    except (ValidationError, SettingsFileMissing) as exc:
        console.print(f"[red]invalid settings:[/] {exc}")
        raise typer.Exit(2) from None
    if settings.embedded_broker:
        console.print("[red]cannot redrive:[/] no broker configured (JOURNEY_KAFKA_BOOTSTRAP); the embedded "
                      "broker of `journey run` keeps nothing after the run")
        raise typer.Exit(2)
    stats = run_redrive(settings.kafka_config(), settings.group_prefix, reason, moment)
    redriven = ", ".join(f"{topic}={n:,}" for topic, n in sorted(stats.redriven.items())) or "none"
    console.print(f"redriven: {sum(stats.redriven.values()):,} ({redriven})")
    for why, n in sorted(stats.skipped.items()):
        note = {"truncated": "the letter kept only part of an oversized original: it cannot be redriven",
                "redacted": "personal data was redacted from the original: it is not the record any more",
                "already_redriven": "redriven before", "unknown_topic": "not a topic the pipeline reads"}.get(why, "")
        console.print(f"skipped {why}: {n:,}" + (f" ({note})" if note else ""))
    if stats.filtered:
        console.print(f"left out by --reason/--since: {stats.filtered:,}")
