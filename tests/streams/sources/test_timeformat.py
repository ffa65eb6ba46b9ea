"""A column's time format is decided once from its values: real-world formats, ambiguity and mixes stop clearly."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from streams.sources.timeformat import SAMPLE_SIZE, TimeFormatError, decide, given, spread

LONDON = ZoneInfo("Europe/London")
UTC_ZONE = ZoneInfo("UTC")


def _read(values: list[str], zone: ZoneInfo = UTC_ZONE, time_format: str | None = None) -> list[datetime | None]:
    chosen = decide(values, "when", "shop.csv", time_format)
    return [chosen.read(v, zone) for v in values]


def test_compact_dates_are_dates_not_unix_seconds() -> None:
    """19970101 read as unix seconds is 1970-08-20 (a real purchase export landed there)."""
    assert _read(["19970101", "19970102", "19980630"], LONDON) == [
        datetime(1997, 1, 1, tzinfo=UTC), datetime(1997, 1, 2, tzinfo=UTC), datetime(1998, 6, 29, 23, tzinfo=UTC)]
    assert _read(["20240201103000", "20240201235959"]) == [datetime(2024, 2, 1, 10, 30, tzinfo=UTC),
                                                          datetime(2024, 2, 1, 23, 59, 59, tzinfo=UTC)]


def test_day_first_when_one_day_is_over_12() -> None:
    """Every row reads day-first once one value shows it: never month-first for the days <= 12."""
    assert _read(["01/02/2024", "05/03/2024", "13/02/2024"]) == [
        datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC), datetime(2024, 2, 13, tzinfo=UTC)]


def test_the_deciding_value_may_be_anywhere_in_the_file() -> None:
    """The sample cannot tell: every distinct value decides (the one day > 12 is not in the sample)."""
    values = [f"{d:02d}/{m:02d}/{y}" for y in range(2000, 2030) for m in range(1, 13) for d in range(1, 13)]
    values = [*values[:500], "25/12/2023", *values[500:999]]
    assert "25/12/2023" not in spread(values, SAMPLE_SIZE)
    chosen = decide(values, "when", "shop.csv")
    assert chosen.name == "%d/%m/%Y"
    assert chosen.read("01/02/2024", UTC_ZONE) == datetime(2024, 2, 1, tzinfo=UTC)


def test_an_ambiguous_column_stops_with_examples_and_the_option() -> None:
    with pytest.raises(TimeFormatError) as error:
        decide(["01/02/2024", "03/04/2024"], "Date", "shop.csv")
    message = str(error.value)
    assert "shop.csv" in message and "'Date'" in message and "'01/02/2024'" in message
    assert "--time-format" in message and "'%d/%m/%Y'" in message and "'%m/%d/%Y'" in message
    assert "\n" not in message
    assert _read(["01/02/2024", "03/04/2024"], time_format="%m/%d/%Y") == [datetime(2024, 1, 2, tzinfo=UTC),
                                                                          datetime(2024, 3, 4, tzinfo=UTC)]


def test_iso_with_a_space_and_tz_for_naive_times() -> None:
    assert _read(["2024-02-01 10:00", "2024-07-01 10:00"], LONDON) == [
        datetime(2024, 2, 1, 10, tzinfo=UTC), datetime(2024, 7, 1, 9, tzinfo=UTC)]
    assert _read(["2024-07-01T10:00:00+02:00", "2024-07-01T10:00:00Z"], LONDON) == [
        datetime(2024, 7, 1, 8, tzinfo=UTC), datetime(2024, 7, 1, 10, tzinfo=UTC)]


def test_unix_seconds_and_milliseconds() -> None:
    assert _read(["1700000000", "1700000060.5"], LONDON) == [
        datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), datetime(2023, 11, 14, 22, 14, 20, 500000, tzinfo=UTC)]
    assert _read(["1700000000123", "1700000060000"]) == [
        datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC), datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC)]


def test_numbers_out_of_a_plausible_range_are_not_unix_times() -> None:
    with pytest.raises(TimeFormatError, match="no value read as a time"):
        decide(["17", "42"], "when", "shop.csv")


def test_excel_style_month_first_with_am_pm() -> None:
    assert _read(["2/1/24 10:00 PM", "2/13/24 9:05 AM"], LONDON) == [
        datetime(2024, 2, 1, 22, tzinfo=UTC), datetime(2024, 2, 13, 9, 5, tzinfo=UTC)]
    with pytest.raises(TimeFormatError, match="ambiguous"):
        decide(["2/1/24 10:00 PM", "3/1/24 10:00 PM"], "when", "shop.csv")


def test_a_mix_of_formats_stops_with_examples() -> None:
    with pytest.raises(TimeFormatError) as error:
        decide(["2024-02-01 10:00", "13/02/2024 10:00", "2024-02-02 11:00"], "when", "shop.csv")
    message = str(error.value)
    assert "mixes time formats" in message and "'13/02/2024 10:00'" in message and "--time-format" in message


def test_unreadable_values_do_not_decide() -> None:
    """A few garbage values become dead letters; the rest are read."""
    assert _read(["13/02/2024", "soon", "01/03/2024"]) == [datetime(2024, 2, 13, tzinfo=UTC), None,
                                                          datetime(2024, 3, 1, tzinfo=UTC)]


def test_given_formats() -> None:
    assert given("unix-ms").read("1700000000123", UTC_ZONE) == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert given("%d %B %Y").read("1 March 2024", UTC_ZONE) == datetime(2024, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a strftime format"):
        given("dd/mm/yyyy")
