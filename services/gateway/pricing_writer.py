"""Group commit of quotes: quotes that arrive while a write runs are stored together in the next transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool

from services.gateway.store import NewQuote

MAX_BATCH = 500


class QuoteWriter:
    """`await save(quote)` returns once the quote is committed; one transaction serves every waiting quote.

    With no write running a quote is written at once (no added wait); under load the quotes that
    queue behind a write share the next one, so a commit costs per batch rather than per quote.
    """

    def __init__(self, save_many: Callable[[Sequence[NewQuote]], None], max_batch: int = MAX_BATCH) -> None:
        self._save_many = save_many
        self._max_batch = max_batch
        self._pending: list[tuple[NewQuote, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def save(self, quote: NewQuote) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((quote, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                try:
                    await run_in_threadpool(self._save_many, [quote for quote, _ in batch])
                except Exception as error:  # every waiting request fails with the write
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                else:
                    for _, future in batch:
                        if not future.done():  # a request cancelled meanwhile (client gone)
                            future.set_result(None)
        finally:
            self._task = None
