"""How far a consumer group has got: committed offsets against what the producer fed, and the
progress display of ``journey run``: what each stage produced (its outputs) first, the input
records it has read second, in lines that fit 80 columns."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from plumbing.produce import CLIENT_LOGGER
from plumbing.waiting import REQUEST_SECONDS, StallWatch, retry_until_stalled


def short_count(n: float) -> str:
    """A count in at most 7 characters: ``12,345``, ``178.4k``, ``2.40M``, ``12.35G``."""
    if n < 100_000:
        return f"{n:,.0f}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000_000:
        return f"{n / 1_000_000:.2f}M"
    return f"{n / 1_000_000_000:.2f}G"


class StageCounts(ProgressColumn):
    """``13,203 triggers · 178.4k/178.4k in``: a stage's outputs (when it has some), then its inputs read.

    Task fields: ``out`` (count or None), ``out_label`` (what it counts), ``in_label`` (``in``, or ``sent``
    for the feed), ``rate`` (text, optional).
    """

    def render(self, task: Task) -> Text:
        read, unit = short_count(task.completed), task.fields.get("in_label", "in")
        inputs = f"{read}/{short_count(task.total)} {unit}" if task.total is not None else f"{read} {unit}"
        out = task.fields.get("out")
        text = inputs if out is None else f"{short_count(out)} {task.fields.get('out_label', 'out')} · {inputs}"
        rate = task.fields.get("rate")
        return Text(f"{text} {rate}" if rate else text)


def progress_display(console: Console) -> Progress:
    """The run's progress: stage (16), bar (8), counts, elapsed; at most 80 columns with counts of millions."""
    return Progress(TextColumn("{task.description:<16.16}"), BarColumn(bar_width=8), StageCounts(),
                    TimeElapsedColumn(), console=console, transient=False)


class OutputCounter:
    """Records a stage has written to its output topics during this run (their ends now, less at the start).

    While a stage runs: the partitions' high watermarks, asked of one long-lived client at most once per
    ``every`` seconds (cheap; the embedded broker's can trail the true end by part of its newest batch).
    ``count(fresh=True)``, for the final number: the true end, read to partition EOF.
    """

    def __init__(self, kafka_config: dict[str, str], topics: list[str], every: float = 1.0) -> None:
        self.kafka_config, self.topics, self.every = kafka_config, topics, every
        self._consumer = Consumer({**kafka_config, "group.id": "journey-progress", "enable.auto.commit": False,
                                   "logger": CLIENT_LOGGER})
        metadata = self._consumer.list_topics(timeout=10)
        self._partitions = [TopicPartition(t, p) for t in topics for p in metadata.topics[t].partitions]
        self.start = sum(end_offsets_by_eof(kafka_config, topics, from_watermark=True).values())
        self._last = (0.0, 0)

    def count(self, fresh: bool = False) -> int:
        now = time.monotonic()
        if fresh:
            self._last = (now, sum(end_offsets_by_eof(self.kafka_config, self.topics, from_watermark=True).values())
                          - self.start)
        elif now - self._last[0] >= self.every:
            ends = sum(self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._partitions)
            self._last = (now, max(ends - self.start, self._last[1]))
        return self._last[1]

    def close(self) -> None:
        self._consumer.close()


class GroupProgress:
    """Reads a group's committed offsets without joining the group."""

    def __init__(self, kafka_config: dict[str, str], group_id: str) -> None:
        self.group_id = group_id
        self._consumer = Consumer({**kafka_config, "group.id": group_id, "enable.auto.commit": False,
                                   "logger": CLIENT_LOGGER})

    def committed(self, partitions: list[tuple[str, int]],
                  timeout: float = REQUEST_SECONDS) -> dict[tuple[str, int], int]:
        tps = [TopicPartition(topic, partition) for topic, partition in partitions]
        result = self._consumer.committed(tps, timeout=timeout)
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in result}

    def remaining(self, end_offsets: dict[tuple[str, int], int], stall: float | None = None) -> int:
        """Records fed but not yet committed by the group (0 when it has caught up).

        A request the broker does not answer in time is asked again, for up to the stall time."""
        return retry_until_stalled(f"committed offsets of {self.group_id}", lambda: self._remaining(end_offsets),
                                   (KafkaException,), stall)

    def try_remaining(self, end_offsets: dict[tuple[str, int], int]) -> int | None:
        """:meth:`remaining`, or None when the broker did not answer within one short request."""
        try:
            return self._remaining(end_offsets)
        except KafkaException:
            return None

    def _remaining(self, end_offsets: dict[tuple[str, int], int]) -> int:
        if not end_offsets:
            return 0
        committed = self.committed(list(end_offsets))
        return sum(max(end - committed.get(tp, 0), 0) for tp, end in end_offsets.items())

    def close(self) -> None:
        self._consumer.close()


def end_offsets_by_eof(kafka_config: dict[str, str], topics: list[str], from_watermark: bool = False,
                       stall: float | None = None,
                       between: Callable[[], None] | None = None) -> dict[tuple[str, int], int]:
    """The true end of each partition, found by reading to partition EOF.

    Slower than asking for the high watermark, but exact on every broker (the embedded
    broker's ListOffsets can be wrong when the newest batch holds several records: it
    reports one past that batch's first record). ``from_watermark`` reads only from the
    reported watermark on (never past the end), which is as exact and cheap on a long topic.
    No fixed deadline: it fails only when no record and no partition end arrived for
    the stall time (the ``stall_seconds`` setting); ``between`` runs about every second (e.g. to check the workers).
    """
    from confluent_kafka import OFFSET_BEGINNING

    from plumbing.restore import Ends, end_reader, read_until_end

    reader = end_reader(kafka_config, "journey-eof-reader", **{"fetch.queue.backoff.ms": 10})
    try:
        metadata = retry_until_stalled(f"metadata of {', '.join(topics)}",
                                       lambda: reader.list_topics(timeout=REQUEST_SECONDS), (KafkaException,),
                                       stall, between=between)
        tps = [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in metadata.topics[t].partitions]
        if from_watermark:
            for tp in tps:
                tp.offset = retry_until_stalled(
                    f"end offset of {tp.topic}[{tp.partition}]",
                    lambda tp=tp: reader.get_watermark_offsets(tp, timeout=REQUEST_SECONDS), (KafkaException,),
                    stall, between=between)[1]
        ends = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in tps}
        watch = StallWatch(f"reading {', '.join(topics)} to its end", stall)

        def watching(reading: Ends) -> None:
            watch.observe((len(reading.pending), sum(ends.values())))
            watch.check(f"partitions without an end yet: {sorted(reading.pending)}")
            if between is not None:
                between()

        def ended(msg: Message) -> None:
            ends[(msg.topic(), msg.partition())] = msg.offset() + 1

        read_until_end(reader, tps, ended, timeout=1.0, between=watching, errors="skip")
        return ends
    finally:
        reader.close()
