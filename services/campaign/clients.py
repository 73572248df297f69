"""The other services campaign calls: profile (contacts, consent), segment (audiences), recommend (items)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import grpc
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc
from marksman.recommend.v1 import recommend_pb2, recommend_pb2_grpc
from marksman.segment.v1 import segment_pb2, segment_pb2_grpc

from services.campaign.convert import ts
from services.campaign.policy import Contact
from services.common import protoenums as pe
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.common.ids import is_valid_id

log = logging.getLogger(__name__)
MEMBERS_PAGE = 10_000
# Profile's GetCustomers answers at most this many ids per call.
GET_CUSTOMERS_MAX = 1000


class Contacts(Protocol):
    def lookup(self, customer_ids: Sequence[str], with_sales_channels: bool = False) -> dict[str, Contact | None]: ...

    def revoke(self, customer_id: str, channels: Sequence[str], at: datetime) -> None: ...


class Audiences(Protocol):
    def members(self, segment: str) -> tuple[int, list[str]]: ...


class ScoredAudiences(Protocol):
    def scored_members(self, segment: str) -> tuple[int, list[str], list[float]]: ...


class Recommendations(Protocol):
    def items(self, customer_ids: Sequence[str], k: int) -> dict[str, list[str]]: ...


def contact_of(customer: profile_pb2.Customer, sales_channel: int = 0) -> Contact:
    consents = {pe.to_name(pe.CONTACT_CHANNEL, c.channel) or "": c.granted for c in customer.consents}
    consents.pop("", None)
    return Contact(customer.customer_id, customer.name, customer.email, customer.phone, customer.push_token,
                   customer.time_zone, consents, pe.to_name(pe.SALES_CHANNEL, sales_channel) or "")


def _gather(calls: Sequence[tuple[str, Any]]) -> Iterator[tuple[str, Any, grpc.RpcError | None]]:
    """Waits for started calls (grpc futures), yielding (key, result or None, error or None)."""
    for key, future in calls:
        try:
            yield key, future.result(), None
        except grpc.RpcError as error:
            yield key, None, error


@dataclass
class ProfileContacts:
    """Reads customers at send time with GetCustomers, one call per `batch` ids, the calls in flight at once
    (the channel round-robins them, and successive batches, over every profile process)."""

    stub: profile_pb2_grpc.ProfileServiceStub
    timeout_s: float
    batch: int = GET_CUSTOMERS_MAX

    def lookup(self, customer_ids: Sequence[str], with_sales_channels: bool = False) -> dict[str, Contact | None]:
        """customer id -> contact, None for a customer profile does not know (erased, never created); with
        `with_sales_channels`, each contact carries the sales channel the customer came from.
        Raises Unavailable when profile cannot answer: the batch waits rather than going out unchecked."""
        found: dict[str, Contact | None] = {}
        wanted = []
        for cid in dict.fromkeys(customer_ids):
            if is_valid_id(cid):
                wanted.append(cid)
            else:
                found[cid] = None  # profile could never hold it, and it would fail the whole call
        calls = [(str(start), self.stub.GetCustomers.future(
                    profile_pb2.GetCustomersRequest(customer_ids=wanted[start : start + self.batch],
                                                    with_sales_channels=with_sales_channels),
                    timeout=self.timeout_s)) for start in range(0, len(wanted), self.batch)]
        for _start, response, error in _gather(calls):
            if error is not None:
                raise Unavailable(f"profile did not answer GetCustomers: {error.code().name}")
            found.update((customer.customer_id, contact_of(customer, response.sales_channels.get(customer.customer_id, 0)))
                         for customer in response.customers)
            found.update((cid, None) for cid in response.not_found)
        return found

    def revoke(self, customer_id: str, channels: Sequence[str], at: datetime) -> None:
        """Withdraws consent on the channels (an unsubscribe); a customer profile no longer knows is fine."""
        request = profile_pb2.UpdateConsentRequest(customer_id=customer_id, consents=[
            profile_pb2.Consent(channel=pe.to_number(pe.CONTACT_CHANNEL, channel), granted=False, changed_at=ts(at))
            for channel in channels])
        try:
            self.stub.UpdateConsent(request, timeout=self.timeout_s)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise Unavailable(f"profile did not answer UpdateConsent: {error.code().name}") from None


@dataclass
class SegmentAudiences:
    stub: segment_pb2_grpc.SegmentServiceStub
    timeout_s: float

    def members(self, segment: str) -> tuple[int, list[str]]:
        """The segment's current version number and its members (the audience a launch freezes)."""
        version, members, _ = self.scored_members(segment)
        return version, members

    def scored_members(self, segment: str) -> tuple[int, list[str], list[float]]:
        """The current version, its members, and their model scores (empty for a rule segment)."""
        version, members, scores = 0, list[str](), list[float]()
        request = segment_pb2.StreamMembersRequest(name=segment, version=0, page_size=MEMBERS_PAGE)
        try:
            for page in self.stub.StreamMembers(request, timeout=self.timeout_s):
                version = version or page.version
                members.extend(page.customer_ids)
                scores.extend(page.scores)
        except grpc.RpcError as error:
            message = f"segment {segment!r}: {error.details() or error.code().name}"
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(message) from None
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise FailedPrecondition(message) from None
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(message) from None
            raise Unavailable(message) from None
        return version, members, scores


@dataclass
class RecommendItems:
    """Top items per customer; any failure leaves that customer's list empty (the message still goes)."""

    stub: recommend_pb2_grpc.RecommendServiceStub
    timeout_s: float
    concurrency: int = 64

    def items(self, customer_ids: Sequence[str], k: int) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        failures = 0
        for start in range(0, len(customer_ids), self.concurrency):
            part = customer_ids[start : start + self.concurrency]
            calls = [(cid, self.stub.Recommend.future(recommend_pb2.RecommendRequest(customer_id=cid, k=k),
                                                       timeout=self.timeout_s)) for cid in part]
            for cid, response, error in _gather(calls):
                if error is None:
                    found[cid] = [item.sku for item in response.items]
                else:
                    failures += 1
        if failures:
            log.warning("recommend failed for some customers; their {recommended_items} is empty",
                        extra={"failed": failures, "asked": len(customer_ids)})
        return found


class NoRecommendations:
    """Recommend is not deployed: {recommended_items} renders empty."""

    def items(self, customer_ids: Sequence[str], k: int) -> dict[str, list[str]]:
        return {}
