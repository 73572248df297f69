"""The campaign servicer over a real in-process gRPC server: status codes, transitions, partners, deliveries,
the report with attribution from profile's orders, erasure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.campaign.v1 import campaign_pb2_grpc
from marksman.common.v1 import common_pb2

from services.campaign.store import Outcome, Reserved
from tests.support.rpc import rpc_error
from tests.unit.campaign.campaign_fakes import RunningCampaign, customer, running_campaign

NOW = datetime(2011, 12, 9, 12, 0, tzinfo=UTC)


Running = RunningCampaign


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    with running_campaign(tmp_path / "campaign.db", NOW) as started:
        yield started


def register(stub: campaign_pb2_grpc.CampaignServiceStub, name: str = "mailer") -> pb.RegisterPartnerResponse:
    response: pb.RegisterPartnerResponse = stub.RegisterPartner(pb.RegisterPartnerRequest(partner=pb.Partner(
        name=name, endpoint="http://127.0.0.1:9/messages", mode=pb.PARTNER_MODE_PUSH, channel=pb.CHANNEL_EMAIL)))
    return response


def campaign_spec(**fields: object) -> pb.CampaignSpec:
    values: dict[str, object] = {
        "name": "winter", "goal": pb.GOAL_RETENTION, "segment": "vips", "template": "Hi {name}", "currency": "GBP",
        "channels": [pb.ChannelRoute(channel=pb.CHANNEL_EMAIL, partner="mailer", cost_per_contact_minor=50)],
        "holdout_percent": 20.0,
    }
    return pb.CampaignSpec(**(values | fields))  # type: ignore[arg-type]


def test_partners(running: Running) -> None:
    registered = register(running.stub)
    assert registered.api_key.startswith("mkp_") and len(registered.secret) >= 16
    assert registered.partner.rate_limit_per_s == 100 and registered.partner.batch_size == 500
    assert rpc_error(lambda: register(running.stub)).code() == grpc.StatusCode.ALREADY_EXISTS
    bad = rpc_error(lambda: running.stub.RegisterPartner(pb.RegisterPartnerRequest(partner=pb.Partner(
        name="Bad Name", mode=pb.PARTNER_MODE_PUSH, channel=pb.CHANNEL_EMAIL), secret="short")))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    for part in ("name must be", "endpoint must be an http(s) URL", "secret must be at least 16"):
        assert part in (bad.details() or "")
    listed = running.stub.ListPartners(pb.ListPartnersRequest()).partners
    assert [p.name for p in listed] == ["mailer"]
    rotated = running.stub.RotatePartnerKey(pb.RotatePartnerKeyRequest(name="mailer")).api_key
    assert rotated != registered.api_key
    assert rpc_error(lambda: running.stub.RotatePartnerKey(pb.RotatePartnerKeyRequest(name="ghost"))).code() == \
        grpc.StatusCode.NOT_FOUND


def test_create_validates_and_round_trips(running: Running) -> None:
    register(running.stub)
    bad = rpc_error(lambda: running.stub.CreateCampaign(pb.CreateCampaignRequest(spec=campaign_spec(
        template="Hi {nam}", channels=[pb.ChannelRoute(channel=pb.CHANNEL_SMS, partner="mailer")]))))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "template field {nam} is unknown" in (bad.details() or "")
    unknown = rpc_error(lambda: running.stub.CreateCampaign(pb.CreateCampaignRequest(spec=campaign_spec(
        channels=[pb.ChannelRoute(channel=pb.CHANNEL_EMAIL, partner="nobody")]))))
    assert "channels[0].partner 'nobody' is not registered" in (unknown.details() or "")
    quiet = rpc_error(lambda: running.stub.CreateCampaign(pb.CreateCampaignRequest(spec=campaign_spec(
        quiet_hours=pb.QuietHours(start="9pm", end="08:00")))))
    assert "quiet_hours.start must be a local time HH:MM" in (quiet.details() or "")
    full = campaign_spec(budget=common_pb2.Money(amount_minor=10_000, currency="GBP"),
                         frequency_cap=pb.FrequencyCap(max_messages=2, per_days=7),
                         quiet_hours=pb.QuietHours(start="21:00", end="08:00"),
                         offer=pb.Offer(code="XMAS10", description="10% off"))
    created = running.stub.CreateCampaign(pb.CreateCampaignRequest(spec=full)).campaign
    assert created.id > 0 and created.state == pb.CAMPAIGN_STATE_DRAFT
    assert created.spec.frequency_cap.max_messages == 2 and created.spec.quiet_hours.start == "21:00"
    assert created.spec.budget.amount_minor == 10_000 and created.spec.attribution_days == 7
    got = running.stub.GetCampaign(pb.GetCampaignRequest(id=created.id)).campaign
    assert got.spec == created.spec
    updated = running.stub.UpdateCampaign(pb.UpdateCampaignRequest(id=created.id, spec=campaign_spec(name="spring")))
    assert updated.campaign.spec.name == "spring"
    assert rpc_error(lambda: running.stub.GetCampaign(pb.GetCampaignRequest(id=99))).code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(lambda: running.stub.GetCampaign(pb.GetCampaignRequest())).code() == \
        grpc.StatusCode.INVALID_ARGUMENT
    running.stub.DeleteCampaign(pb.DeleteCampaignRequest(id=created.id))
    assert running.stub.ListCampaigns(pb.ListCampaignsRequest()).campaigns == []


def test_launch_transitions_and_deliveries(running: Running) -> None:
    register(running.stub)
    running.segment.members["vips"] = [f"c{i}" for i in range(30)]
    created = running.stub.CreateCampaign(pb.CreateCampaignRequest(spec=campaign_spec())).campaign
    missing = running.stub.CreateCampaign(pb.CreateCampaignRequest(spec=campaign_spec(segment="nope"))).campaign
    assert rpc_error(lambda: running.stub.LaunchCampaign(pb.LaunchCampaignRequest(id=missing.id))).code() == \
        grpc.StatusCode.NOT_FOUND
    launched = running.stub.LaunchCampaign(pb.LaunchCampaignRequest(id=created.id)).campaign
    assert launched.state == pb.CAMPAIGN_STATE_RUNNING and launched.audience_version == 7
    assert launched.counts.targeted + launched.counts.holdout == 30 and launched.counts.pending == launched.counts.targeted
    again = rpc_error(lambda: running.stub.LaunchCampaign(pb.LaunchCampaignRequest(id=created.id)))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert again.details() == "cannot launch a campaign that is running; it must be draft"
    resume = rpc_error(lambda: running.stub.ResumeCampaign(pb.ResumeCampaignRequest(id=created.id)))
    assert resume.details() == "cannot resume a campaign that is running; it must be paused"
    paused = running.stub.PauseCampaign(pb.PauseCampaignRequest(id=created.id)).campaign
    assert paused.state == pb.CAMPAIGN_STATE_PAUSED
    assert running.stub.ResumeCampaign(pb.ResumeCampaignRequest(id=created.id)).campaign.state == \
        pb.CAMPAIGN_STATE_RUNNING
    listed = running.stub.ListDeliveries(pb.ListDeliveriesRequest(campaign_id=created.id, page_size=20))
    assert len(listed.deliveries) == 20 and listed.next_page_token
    rest = running.stub.ListDeliveries(pb.ListDeliveriesRequest(campaign_id=created.id, page_size=20,
                                                                page_token=listed.next_page_token))
    assert len(rest.deliveries) == 10 and rest.next_page_token == ""
    holdouts = running.stub.ListDeliveries(pb.ListDeliveriesRequest(campaign_id=created.id,
                                                                    state=pb.DELIVERY_STATE_HOLDOUT)).deliveries
    assert len(holdouts) == launched.counts.holdout
    keys = [d.idempotency_key for d in [*listed.deliveries, *rest.deliveries]]
    # Campaign, position in the launch, random tail: nothing of the customer.
    assert len(set(keys)) == 30 and all(re.fullmatch(rf"{created.id}-[0-9a-f]{{8}}-[0-9a-f]{{12}}", k) for k in keys)
    cancelled = running.stub.CancelCampaign(pb.CancelCampaignRequest(id=created.id)).campaign
    assert cancelled.state == pb.CAMPAIGN_STATE_CANCELLED and cancelled.counts.skipped == launched.counts.targeted
    final = rpc_error(lambda: running.stub.CancelCampaign(pb.CancelCampaignRequest(id=created.id)))
    assert final.details() == "cannot cancel a campaign that is cancelled; it must be draft, paused, running, scheduled"


def test_report_attributes_orders_in_the_window(running: Running) -> None:
    register(running.stub)
    ids = [f"c{i}" for i in range(40)]
    for cid in ids:
        running.profile.customers[cid] = customer(cid)
    running.segment.members["vips"] = ids
    created = running.stub.CreateCampaign(pb.CreateCampaignRequest(spec=campaign_spec())).campaign
    running.stub.LaunchCampaign(pb.LaunchCampaignRequest(id=created.id))
    # Send every targeted message by hand (dispatch has its own tests).
    mailer = running.store.partner("mailer")
    rows = running.store.claim("w", datetime.now(UTC) + timedelta(seconds=1), datetime.now(UTC) + timedelta(minutes=1),
                               100)
    running.store.settle("w", skipped={}, deferred={}, reserved=[Reserved(r.id, "email", mailer.id, 50) for r in rows],
                         budgets={created.id: -1})
    running.store.record("w", [Outcome(r.id, "sent") for r in rows], NOW)
    targeted = sorted(r.customer_id for r in rows)
    holdout = sorted(set(ids) - set(targeted))
    # Two targeted responders (one with two lines, one ordering twice: the first order counts), one holdout
    # responder, one order after the window and one before the launch.
    running.profile.order("o1", targeted[0], NOW + timedelta(days=1), 700, 300)
    running.profile.order("o2", targeted[1], NOW + timedelta(days=2), 500)
    running.profile.order("o3", targeted[1], NOW + timedelta(days=3), 9999)
    running.profile.order("o4", holdout[0], NOW + timedelta(days=1), 400)
    running.profile.order("o5", targeted[2], NOW + timedelta(days=8), 800)
    running.profile.order("o6", targeted[3], NOW - timedelta(days=1), 800)
    got = running.stub.GetCampaignReport(pb.GetCampaignReportRequest(id=created.id)).report
    assert (got.targeted, got.holdout, got.sent, got.responses, got.holdout_responses) == (
        len(targeted), len(holdout), len(targeted), 2, 1)
    assert got.revenue.amount_minor == 1500 and got.cost.amount_minor == 50 * len(targeted)
    assert got.response_rate == pytest.approx(2 / len(targeted))
    assert got.revenue_over_cost == pytest.approx(1500 / (50 * len(targeted)))
    assert got.net_roi == pytest.approx((1500 - 50 * len(targeted)) / (50 * len(targeted)))
    assert got.uplift == pytest.approx(2 / len(targeted) - 1 / len(holdout))
    assert got.uplift_ci_low < got.uplift < got.uplift_ci_high and got.attribution_days == 7


def test_erasure(running: Running) -> None:
    register(running.stub)
    running.segment.members["vips"] = ["keep", "gone"]
    created = running.stub.CreateCampaign(pb.CreateCampaignRequest(spec=campaign_spec(holdout_percent=0))).campaign
    running.stub.LaunchCampaign(pb.LaunchCampaignRequest(id=created.id))
    erased = running.stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="gone"))
    assert erased.erased and erased.records_deleted == 1
    assert not running.stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="gone")).erased
    customers = {d.customer_id for d in running.stub.ListDeliveries(
        pb.ListDeliveriesRequest(campaign_id=created.id)).deliveries}
    assert "gone" not in customers and "keep" in customers and len(customers) == 2
    bad = rpc_error(lambda: running.stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="a b")))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
