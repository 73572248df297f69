"""The quote writer's group commit: waiting quotes share the next write; a failed write fails each of them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from services.gateway.pricing_writer import QuoteWriter
from services.gateway.store import NewQuote

NOW = datetime(2011, 12, 10, tzinfo=UTC)


def quote(n: int) -> NewQuote:
    return NewQuote(f"q-{n}", None, 1, NOW, NOW, (), b"{}")


def test_quotes_arriving_during_a_write_share_the_next_one() -> None:
    batches: list[list[str]] = []
    first_started = threading.Event()

    def save_many(quotes: Sequence[NewQuote]) -> None:
        first_started.set()
        time.sleep(0.05)
        batches.append([q.quote_id for q in quotes])

    async def run() -> None:
        writer = QuoteWriter(save_many, max_batch=3)
        first = asyncio.create_task(writer.save(quote(0)))
        await asyncio.to_thread(first_started.wait)
        await asyncio.gather(first, *(writer.save(quote(n)) for n in range(1, 6)))

    asyncio.run(run())
    assert batches == [["q-0"], ["q-1", "q-2", "q-3"], ["q-4", "q-5"]]


def test_a_failed_write_fails_every_quote_in_it_and_the_writer_goes_on() -> None:
    calls: list[int] = []

    def save_many(quotes: Sequence[NewQuote]) -> None:
        calls.append(len(quotes))
        if len(calls) == 1:
            raise RuntimeError("disk full")

    async def run() -> None:
        writer = QuoteWriter(save_many)
        with pytest.raises(RuntimeError, match="disk full"):
            await writer.save(quote(1))
        await writer.save(quote(2))

    asyncio.run(run())
    assert calls == [1, 1]
