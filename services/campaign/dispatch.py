"""Dispatch workers: claim due deliveries, decide at send time, push batches to partners, record each outcome.

At-least-once: a row is marked sent only after the partner answered for it, so a worker killed between
the two leaves it leased, and it is claimed again once the lease runs out; the partner sees the same
idempotency key again and ignores it as a duplicate. A worker prepares its next batch (claim, profile
lookup, decisions) while up to `in_flight` of its partner requests are out, each recorded by the thread
that sent it.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.campaign import backoff, metrics, planner, policy
from services.campaign.clients import Contacts, Recommendations
from services.campaign.pusher import FAILED, RETRY, SENT, Pusher, RateLimiter, Reply
from services.campaign.spec import Spec
from services.campaign.store import DEAD, PENDING, CampaignStore, Claimed, Outcome, PartnerInfo, Reserved
from services.common.errors import Unavailable

log = logging.getLogger(__name__)
PARTNERS_TTL_S = 5.0
HOUSEKEEPING_S = 1.0
# A profile outage holds a batch back this long (no attempt is counted).
PROFILE_RETRY_S = 5.0


@dataclass(frozen=True)
class DispatchSettings:
    claim_size: int = 1000
    lease_s: float = 60.0
    poll_s: float = 0.5
    max_attempts: int = 6
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0
    # Partner requests a worker has out while it prepares the next batch.
    in_flight: int = 4


@dataclass
class Batch:
    """A claimed batch whose send-time decisions are recorded: the requests still to post, by partner."""

    claimed: int
    rows: dict[int, Claimed] = field(default_factory=dict)
    messages: dict[int, dict[str, object]] = field(default_factory=dict)
    requests: list[tuple[PartnerInfo, list[Reserved]]] = field(default_factory=list)


# Specs of launched campaigns never change (only a draft can be edited), so each is read once.
SPEC_CACHE_MAX = 1024


def wall_clock() -> datetime:
    """Real time: leases, retries and queue order run on it even when the business clock is pinned."""
    return datetime.now(UTC)


class Dispatcher:
    """The send loop; `run_once` handles one claimed batch, `start` runs it in worker threads."""

    def __init__(self, store: CampaignStore, contacts: Contacts, recommendations: Recommendations, pusher: Pusher,
                 clock: Callable[[], datetime], settings: DispatchSettings,
                 wall: Callable[[], datetime] = wall_clock) -> None:
        self.store = store
        self.contacts = contacts
        self.recommendations = recommendations
        self.pusher = pusher
        self.clock = clock
        self.wall = wall
        self.settings = settings
        self._partners: dict[str, PartnerInfo] = {}
        self._partners_at = -PARTNERS_TTL_S
        self._limiters: dict[str, RateLimiter] = {}
        self._specs: dict[int, Spec] = {}
        self._guard = threading.Lock()
        # Customers with a message out at a partner and not yet recorded: the cap counts them as sent.
        self._in_flight: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._senders: ThreadPoolExecutor | None = None
        self._rng = random.Random()
        self.instance = f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    # ---- partners ----

    def partners(self, *, fresh: bool = False) -> dict[str, PartnerInfo]:
        """The registered partners by name, read again after PARTNERS_TTL_S or when `fresh`."""
        with self._guard:
            if fresh or time.monotonic() - self._partners_at > PARTNERS_TTL_S:
                self._partners = {p.name: p for p in self.store.partners()}
                self._partners_at = time.monotonic()
                for p in self._partners.values():
                    limiter = self._limiters.get(p.name)
                    if limiter is None or abs(limiter.interval - 1.0 / p.rate_limit_per_s) > 1e-12:
                        self._limiters[p.name] = RateLimiter(p.rate_limit_per_s)
            return self._partners

    def _claim_limit(self, partners: dict[str, PartnerInfo]) -> int:
        """No more than the slowest push partner can take in half a lease, counting the batches still out
        (a claim waits behind them), so a lease never runs out before its messages are sent."""
        rates = [p.rate_limit_per_s for p in partners.values() if p.mode != planner.PULL]
        if not rates:
            return self.settings.claim_size
        waiting = 1 + max(1, self.settings.in_flight)
        return max(1, min(self.settings.claim_size, int(min(rates) * self.settings.lease_s / 2 / waiting)))

    def _campaigns(self, campaign_ids: set[int]) -> dict[int, Spec]:
        """The specs of the claimed rows' campaigns, read from the store once per campaign."""
        with self._guard:
            known = {cid: self._specs[cid] for cid in campaign_ids if cid in self._specs}
        missing = campaign_ids - known.keys()
        if not missing:
            return known
        found = {cid: spec for cid, (spec, _state) in self.store.specs_of(missing).items()}
        with self._guard:
            if len(self._specs) + len(found) > SPEC_CACHE_MAX:
                self._specs.clear()
            self._specs.update(found)
        return known | found

    # ---- one batch ----

    def run_once(self, owner: str) -> int:
        """Claims one batch and sees it through; returns how many deliveries it claimed."""
        batch = self.prepare(owner)
        for partner, chunk in batch.requests:
            self.post(owner, batch, partner, chunk)
        return batch.claimed

    def prepare(self, owner: str) -> Batch:
        """Claims a batch, reads its customers, decides each row at send time and records the decisions
        (skips, deferrals, reservations) in one transaction; returns the partner requests left to post."""
        partners = self.partners()
        wall_now = self.wall()
        rows = self.store.claim(owner, wall_now, wall_now + timedelta(seconds=self.settings.lease_s),
                                self._claim_limit(partners))
        if not rows:
            return Batch(0)
        campaigns = self._campaigns({r.campaign_id for r in rows})
        if any(route.partner not in partners for spec in campaigns.values() for route in spec.routes):
            partners = self.partners(fresh=True)  # registered since the cache was filled
        try:
            contacts = self.contacts.lookup(sorted({r.customer_id for r in rows}),
                                            with_sales_channels=any(s.origin_channels for s in campaigns.values()))
        except Unavailable as error:
            log.warning("profile unavailable; batch held back", extra={"error": str(error), "rows": len(rows)})
            later = wall_now + timedelta(seconds=PROFILE_RETRY_S)
            self.store.settle(owner, skipped={}, deferred={r.id: (later, "profile_unavailable") for r in rows},
                              reserved=[], budgets={})
            return Batch(len(rows))
        business_now = self.clock()
        result = planner.plan(rows, campaigns, partners, contacts, self._sent_in_window(rows, campaigns, business_now),
                              self._items(rows, campaigns, contacts), business_now, wall_now)
        budgets = {cid: -1 if spec.budget_minor is None else spec.budget_minor for cid, spec in campaigns.items()}
        kept, over_budget = self.store.settle(owner, skipped=result.skipped, deferred=result.deferred,
                                              reserved=result.reserved, budgets=budgets)
        self._count_decisions(result, kept, over_budget, partners)
        batch = Batch(len(rows), {r.id: r for r in rows}, result.messages)
        by_partner: dict[int, list[Reserved]] = {}
        for item in kept:
            if item.payload is None:
                by_partner.setdefault(item.partner_id, []).append(item)
        names = {p.id: p for p in partners.values()}
        for partner_id, items in by_partner.items():
            partner = names[partner_id]
            batch.requests += [(partner, items[start : start + partner.batch_size])
                               for start in range(0, len(items), partner.batch_size)]
        with self._guard:
            # Each request's customers count until it is recorded (post); a batch planned meanwhile sees them.
            self._in_flight.update(batch.rows[i.id].customer_id for _partner, chunk in batch.requests for i in chunk)
        return batch

    def post(self, owner: str, batch: Batch, partner: PartnerInfo, chunk: list[Reserved]) -> None:
        """Sends one request's messages to their partner and records what it answered for each."""
        try:
            self._limiters[partner.name].acquire(len(chunk))
            started = time.perf_counter()
            reply = self.pusher.push(partner.endpoint, partner.secret, [batch.messages[i.id] for i in chunk])
            metrics.PUSH_SECONDS.labels(partner.name).observe(time.perf_counter() - started)
            metrics.PARTNER_REQUESTS.labels(partner.name).inc()
            if reply.error:
                metrics.PARTNER_ERRORS.labels(partner.name, reply.error).inc()
            self.store.record(owner, self._outcomes(chunk, reply, batch.rows, partner), self.clock())
        finally:
            self._landed([batch.rows[i.id].customer_id for i in chunk])

    def _landed(self, customers: list[str]) -> None:
        """These customers' messages are recorded (or were never reserved): the store counts them now."""
        with self._guard:
            self._in_flight.subtract(customers)
            for customer in customers:
                if self._in_flight[customer] <= 0:
                    del self._in_flight[customer]

    def _sent_in_window(self, rows: Sequence[Claimed], campaigns: dict[int, Spec],
                        now: datetime) -> dict[tuple[int, str], int]:
        """Messages each capped customer got within their campaign's cap window, from every campaign,
        counting those this process has out at a partner and not yet recorded."""
        counts: dict[tuple[int, str], int] = {}
        by_days: dict[int, list[Claimed]] = {}
        for row in rows:
            cap = campaigns[row.campaign_id].cap
            if cap is not None:
                by_days.setdefault(cap.per_days, []).append(row)
        for days, capped in by_days.items():
            sent = self.store.sent_since(sorted({r.customer_id for r in capped}), now - timedelta(days=days))
            with self._guard:
                out = {r.customer_id: self._in_flight.get(r.customer_id, 0) for r in capped}
            for row in capped:
                counts[(row.campaign_id, row.customer_id)] = sent.get(row.customer_id, 0) + out[row.customer_id]
        return counts

    def _items(self, rows: Sequence[Claimed], campaigns: dict[int, Spec],
               contacts: dict[str, policy.Contact | None]) -> dict[str, list[str]]:
        wanted: dict[int, list[str]] = {}
        for row in rows:
            spec = campaigns[row.campaign_id]
            if contacts.get(row.customer_id) is not None and "{recommended_items}" in spec.template + spec.subject:
                wanted.setdefault(spec.recommended_items, []).append(row.customer_id)
        found: dict[str, list[str]] = {}
        for k, customers in wanted.items():
            found.update(self.recommendations.items(sorted(set(customers)), k))
        return found

    def _outcomes(self, chunk: list[Reserved], reply: Reply, rows: dict[int, Claimed],
                  partner: PartnerInfo) -> list[Outcome]:
        outcomes: list[Outcome] = []
        wall_now = self.wall()
        for item, result in zip(chunk, reply.results, strict=True):
            attempts = rows[item.id].attempts + 1
            if result.outcome == SENT:
                outcomes.append(Outcome(item.id, "sent"))
            elif result.outcome == FAILED:
                outcomes.append(Outcome(item.id, "failed", result.reason))
            elif result.outcome == RETRY and attempts >= self.settings.max_attempts:
                outcomes.append(Outcome(item.id, DEAD, f"gave up after {attempts} attempts: {result.reason}"))
                metrics.DEAD_LETTERS.labels(partner.name).inc()
            else:
                delay = backoff.delay_s(attempts, self.settings.backoff_base_s, self.settings.backoff_max_s, self._rng)
                outcomes.append(Outcome(item.id, PENDING, result.reason, wall_now + timedelta(seconds=delay)))
            state = {SENT: "sent", FAILED: "failed"}.get(result.outcome) or outcomes[-1].state
            metrics.DELIVERIES.labels(partner.name, "retried" if state == PENDING else state).inc()
        return outcomes

    @staticmethod
    def _count_decisions(result: planner.Plan, kept: list[Reserved], over_budget: list[int],
                         partners: dict[str, PartnerInfo]) -> None:
        for reason in result.skipped.values():
            metrics.SKIPPED.labels(reason if reason in _REASONS else "partner_missing").inc()
        if over_budget:
            metrics.SKIPPED.labels(policy.SKIP_BUDGET).inc(len(over_budget))
        if result.deferred:
            metrics.DELIVERIES.labels("", "deferred").inc(len(result.deferred))
        names = {p.id: p.name for p in partners.values()}
        for item in kept:
            if item.payload is not None:
                metrics.DELIVERIES.labels(names.get(item.partner_id, ""), "queued").inc()

    # ---- housekeeping and threads ----

    def housekeeping(self) -> None:
        """Starts scheduled campaigns whose time has come, completes settled ones, updates the lag gauge."""
        now = self.clock()
        for campaign_id in self.store.start_due(now):
            log.info("campaign started", extra={"campaign_id": campaign_id})
        for campaign_id in self.store.complete_settled(now):
            log.info("campaign completed", extra={"campaign_id": campaign_id})
        metrics.DISPATCH_LAG.set(self.store.dispatch_lag_s(self.wall()))

    def _loop(self, number: int, senders: ThreadPoolExecutor) -> None:
        owner = f"{self.instance}-{number}"
        slots = threading.Semaphore(max(1, self.settings.in_flight))
        last_housekeeping = 0.0
        while not self._stop.is_set():
            try:
                if number == 0 and time.monotonic() - last_housekeeping > HOUSEKEEPING_S:
                    self.housekeeping()
                    last_housekeeping = time.monotonic()
                batch = self.prepare(owner)
                if batch.claimed == 0:
                    self._stop.wait(self.settings.poll_s)
                for partner, chunk in batch.requests:
                    slots.acquire()  # bounded: at most `in_flight` requests out, the next batch waits here
                    senders.submit(self._post_in_slot, slots, owner, batch, partner, chunk)
            except Exception:
                log.exception("dispatch worker error; retrying", extra={"worker": number})
                self._stop.wait(max(self.settings.poll_s, 1.0))

    def _post_in_slot(self, slots: threading.Semaphore, owner: str, batch: Batch, partner: PartnerInfo,
                      chunk: list[Reserved]) -> None:
        try:
            self.post(owner, batch, partner, chunk)
        except Exception:
            # Its rows stay leased to this worker and are sent again when the lease runs out.
            log.exception("dispatch send error", extra={"partner": partner.name, "rows": len(chunk)})
        finally:
            slots.release()

    def start(self, workers: int) -> None:
        self._senders = senders = ThreadPoolExecutor(max(1, workers * self.settings.in_flight),
                                                     thread_name_prefix="dispatch-send")
        for number in range(workers):
            thread = threading.Thread(target=self._loop, args=(number, senders), name=f"dispatch-{number}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Lets each worker finish its batch and its requests out (their claims would otherwise wait for their
        lease to run out)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        if self._senders is not None:
            self._senders.shutdown(wait=True)
            self._senders = None


_REASONS = frozenset({policy.SKIP_NO_CUSTOMER, policy.SKIP_NO_CONSENT, policy.SKIP_NO_CONTACT, policy.SKIP_CAP,
                      policy.SKIP_BUDGET, policy.SKIP_CANCELLED, policy.SKIP_ORIGIN_CHANNEL})
