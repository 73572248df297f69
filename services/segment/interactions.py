"""Order and refund lines from profile's ExportInteractions as the line frame the models read, kept in memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import grpc
import numpy as np
import pandas as pd
from marksman.profile.v1 import profile_pb2

from services.common.errors import Unavailable, rpc_failure
from services.segment.predict import LINE_COLUMNS

Export = Callable[[profile_pb2.ExportInteractionsRequest], Iterable[profile_pb2.ExportInteractionsResponse]]
ORDER = profile_pb2.EVENT_TYPE_ORDER
REFUND = profile_pb2.EVENT_TYPE_REFUND
# The retail loader's name for a product it cannot place; a line without a category gets it too.
UNKNOWN_CATEGORY = "Other"


def empty_lines() -> pd.DataFrame:
    return lines_from_interactions([])


def lines_from_interactions(items: Iterable[profile_pb2.Interaction]) -> pd.DataFrame:
    """The order and refund lines among `items` as predict's line frame (LINE_COLUMNS).

    An event is one order (its event_id is the order id: profile exports one line per product of
    the event, each carrying it). Refund lines carry what was paid back as a positive amount;
    here it is negative, as predict expects. Views and carts are left out.
    """
    customers: list[str] = []
    orders: list[str] = []
    nanos: list[int] = []
    amounts: list[int] = []
    categories: list[str] = []
    refunds: list[bool] = []
    for item in items:
        kind = item.type
        if kind != ORDER and kind != REFUND:
            continue
        refund = kind == REFUND
        customers.append(item.customer_id)
        orders.append(item.event_id)
        stamp = item.occurred_at
        nanos.append(stamp.seconds * 1_000_000_000 + stamp.nanos)
        amounts.append(-item.amount_minor if refund else item.amount_minor)
        categories.append(item.category or UNKNOWN_CATEGORY)
        refunds.append(refund)
    frame = pd.DataFrame({
        "customer_id": pd.array(customers, dtype="str"),
        "order_id": pd.array(orders, dtype="str"),
        "occurred_at": pd.to_datetime(np.asarray(nanos, dtype="int64"), unit="ns", utc=True),
        "amount_minor": np.asarray(amounts, dtype="int64"),
        "category": pd.array(categories, dtype="str"),
        "is_refund": np.asarray(refunds, dtype=bool),
    })
    return frame[list(LINE_COLUMNS)]


class InteractionCache:
    """The line frame of every order and refund, pulled from profile: all of it at first and again
    when older than `max_age_s`, only what was exported after the last cursor in between.

    The full pull now and then is what catches changes that do not move profile's cursor (an
    identity merge gives old events a customer); erasure is applied at once through erase().
    """

    def __init__(self, export: Export, *, page_size: int = 5000, max_age_s: float = 900.0) -> None:
        self.export = export
        self.page_size = page_size
        self.max_age_s = max_age_s
        self._lines = empty_lines()
        self._cursor = ""
        self._pulled_at: float | None = None
        # One pull at a time; the guard covers the frame and the erasures seen during a pull.
        self._pull_lock = threading.Lock()
        self._guard = threading.Lock()
        self._erased_during_pull: set[str] = set()

    def lines(self) -> pd.DataFrame:
        """The current lines, after pulling what profile exported since the last pull."""
        with self._pull_lock:
            full = self._pulled_at is None or time.monotonic() - self._pulled_at > self.max_age_s
            started = time.monotonic()
            with self._guard:
                self._erased_during_pull = set()
            fresh, cursor = self._pull("" if full else self._cursor)
            with self._guard:
                if self._erased_during_pull:
                    fresh = fresh[~fresh["customer_id"].isin(self._erased_during_pull)]
                if full:
                    self._lines = fresh.reset_index(drop=True)
                elif len(fresh):
                    self._lines = pd.concat([self._lines, fresh], ignore_index=True)
                self._cursor = cursor or self._cursor
                if full:
                    self._pulled_at = started
                return self._lines

    def _pull(self, cursor: str) -> tuple[pd.DataFrame, str]:
        request = profile_pb2.ExportInteractionsRequest(since_cursor=cursor, page_size=self.page_size)
        frames = [empty_lines()]
        try:
            for page in self.export(request):
                frames.append(lines_from_interactions(page.interactions))
                cursor = page.next_cursor or cursor
        except grpc.RpcError as error:
            # Nothing of a failed pull is kept: the next one starts from the same cursor.
            raise Unavailable(f"profile's interaction export failed ({rpc_failure(error)})") from None
        return pd.concat(frames, ignore_index=True), cursor

    def erase(self, customer_id: str) -> int:
        """Drops the customer's lines now (and from a pull running now); returns how many went."""
        with self._guard:
            self._erased_during_pull.add(customer_id)
            mine = self._lines["customer_id"] == customer_id
            count = int(mine.sum())
            if count:
                self._lines = self._lines[~mine].reset_index(drop=True)
        return count
